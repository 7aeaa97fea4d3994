/*-------------------------------------------------------------------------
 *
 * remote_apply.c
 *	  Whether a write is hubsync's own application of HubSpot's changes.
 *
 * The workers call hubsync_remote_apply_begin() around the writes that
 * bring HubSpot's changes into the mirror tables (and the push worker
 * around writing back hs_object_id); the capture triggers skip those
 * writes, so a change from HubSpot is never pushed back.  It is C state:
 * no SQL can set it.
 *
 * Only hubsync's own statements are skipped, not what the application's
 * triggers write meanwhile ("deal closed won -> company becomes
 * customer"): hubsync's statements run at the trigger depth the flag was
 * set at, so their capture trigger fires one level deeper; a write a
 * user trigger makes fires capture deeper still, and is captured with
 * the origin "trigger".  hubsync._applying_remote() gives the SQL
 * association trigger the same answer.
 *
 * IDENTIFICATION
 *	  src/core/remote_apply.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "core/remote_apply.h"

PG_FUNCTION_INFO_V1(hubsync_applying_remote_fn);
PG_FUNCTION_INFO_V1(hubsync_capture_origin_fn);

bool		hubsync_applying_remote = false;

/* trigger depth when the flag was set (hubsync's statements run there) */
static int	remote_apply_depth = 0;

/* trigger_depth -- PostgreSQL's pg_trigger_depth(), from C */
static int
trigger_depth(void)
{
	LOCAL_FCINFO(fcinfo, 0);

	InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	return DatumGetInt32(pg_trigger_depth(fcinfo));
}

/*
 * hubsync_remote_apply_begin -- from here on, the statements this process
 * runs (at the current trigger depth) apply HubSpot's changes.
 */
void
hubsync_remote_apply_begin(void)
{
	remote_apply_depth = trigger_depth();
	hubsync_applying_remote = true;
}

/* hubsync_remote_apply_end -- back to ordinary, captured writes */
void
hubsync_remote_apply_end(void)
{
	hubsync_applying_remote = false;
}

/*
 * hubsync_remote_write -- called from a row trigger of a mirror table (or
 * of hubspot.associations): HUBSYNC_WRITE_REMOTE when the row was written
 * by hubsync's own statement applying HubSpot's changes (not captured),
 * HUBSYNC_WRITE_TRIGGER when it was written by a trigger fired meanwhile
 * (captured, origin "trigger"), HUBSYNC_WRITE_LOCAL otherwise.
 */
HubsyncWriteKind
hubsync_remote_write(void)
{
	if (!hubsync_applying_remote)
		return HUBSYNC_WRITE_LOCAL;
	if (trigger_depth() <= remote_apply_depth + 1)
		return HUBSYNC_WRITE_REMOTE;
	return HUBSYNC_WRITE_TRIGGER;
}

/*
 * hubsync_applying_remote_fn -- SQL hubsync._applying_remote(), for the
 * association trigger: whether the row that fired it is hubsync's own
 * write of HubSpot's changes.
 */
Datum
hubsync_applying_remote_fn(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(hubsync_remote_write() == HUBSYNC_WRITE_REMOTE);
}

/*
 * hubsync_capture_origin_fn -- SQL hubsync._capture_origin(), for the
 * association trigger: the origin of the write that fired it, "trigger"
 * for a trigger's write while hubsync applies HubSpot's changes, else the
 * session's hubsync.origin.
 */
Datum
hubsync_capture_origin_fn(PG_FUNCTION_ARGS)
{
	const char *origin;

	if (hubsync_remote_write() == HUBSYNC_WRITE_TRIGGER)
		PG_RETURN_TEXT_P(cstring_to_text(HUBSYNC_TRIGGER_ORIGIN));
	origin = GetConfigOption("hubsync.origin", true, false);
	PG_RETURN_TEXT_P(cstring_to_text(origin ? origin : "app"));
}
