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
 * A BEFORE trigger of the application may also change other columns of
 * the very row hubsync writes ("deal closed won -> amount_category
 * 'won'").  So that those columns are pushed and HubSpot's are not, the
 * apply statements register what they mean to write, row by row, through
 * hubsync._intend() (push/capture.c), as the statement computes it and so
 * before any BEFORE trigger runs; the capture trigger of that row takes
 * the intent and pushes the columns whose final value differs from it.
 * The intents live from hubsync_remote_apply_begin() to _end().
 *
 * IDENTIFICATION
 *	  src/core/remote_apply.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "access/xact.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "core/remote_apply.h"

PG_FUNCTION_INFO_V1(hubsync_applying_remote_fn);
PG_FUNCTION_INFO_V1(hubsync_capture_origin_fn);

bool		hubsync_applying_remote = false;

/* trigger depth when the flag was set (hubsync's statements run there) */
static int	remote_apply_depth = 0;

/* An intent: the row hubsync's statement computed for one mirror row */
typedef struct IntentKey
{
	Oid			relid;
	pg_uuid_t	hubsync_id;
} IntentKey;

typedef struct IntentEntry
{
	IntentKey	key;
	HeapTupleHeader row;		/* in intent_cxt */
	SubTransactionId subid;		/* registered in this subtransaction */
} IntentEntry;

static MemoryContext intent_cxt = NULL;
static HTAB *intents = NULL;
static bool intent_callback_registered = false;

/*
 * intents_subxact_callback -- when a subtransaction aborts (an event whose
 * apply failed), the intents its statements registered name writes that
 * never happened: drop them, so no later write of the row is compared
 * with them.  Intents are taken at the end of their statement, so those
 * still here from an aborting subtransaction (or its children, which have
 * higher ids) are exactly the ones to drop.
 */
static void
intents_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	HASH_SEQ_STATUS status;
	IntentEntry *entry;

	if (event != SUBXACT_EVENT_ABORT_SUB || intents == NULL)
		return;
	hash_seq_init(&status, intents);
	while ((entry = hash_seq_search(&status)) != NULL)
		if (entry->subid >= mySubid)
			(void) hash_search(intents, &entry->key, HASH_REMOVE, NULL);
}

/*
 * forget_intents -- drop every intent (at the start and the end of an
 * application of HubSpot's changes, errors included).
 */
static void
forget_intents(void)
{
	if (intent_cxt != NULL)
		MemoryContextDelete(intent_cxt);
	intent_cxt = NULL;
	intents = NULL;
}

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
	forget_intents();
	remote_apply_depth = trigger_depth();
	hubsync_applying_remote = true;
}

/* hubsync_remote_apply_end -- back to ordinary, captured writes */
void
hubsync_remote_apply_end(void)
{
	hubsync_applying_remote = false;
	forget_intents();
}

/*
 * hubsync_remote_intend -- remember row as what hubsync's statement is
 * about to write to the mirror row (relid, hubsync_id).  Only while
 * applying HubSpot's changes; a later intent for the row replaces it.
 */
void
hubsync_remote_intend(Oid relid, const pg_uuid_t *hubsync_id, HeapTupleHeader row)
{
	IntentKey	key;
	IntentEntry *entry;
	bool		found;
	uint32		len = HeapTupleHeaderGetDatumLength(row);

	if (!hubsync_applying_remote)
		return;
	if (!intent_callback_registered)
	{
		RegisterSubXactCallback(intents_subxact_callback, NULL);
		intent_callback_registered = true;
	}
	if (intents == NULL)
	{
		HASHCTL		ctl;

		intent_cxt = AllocSetContextCreate(TopMemoryContext, "hubsync intents",
										   ALLOCSET_DEFAULT_SIZES);
		ctl.keysize = sizeof(IntentKey);
		ctl.entrysize = sizeof(IntentEntry);
		ctl.hcxt = intent_cxt;
		intents = hash_create("hubsync intents", 256, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memset(&key, 0, sizeof(key));
	key.relid = relid;
	memcpy(&key.hubsync_id, hubsync_id, sizeof(pg_uuid_t));
	entry = hash_search(intents, &key, HASH_ENTER, &found);
	if (found)
		pfree(entry->row);
	entry->row = MemoryContextAlloc(intent_cxt, len);
	memcpy(entry->row, row, len);
	entry->subid = GetCurrentSubTransactionId();
}

/*
 * hubsync_remote_intent_take -- the intent registered for the mirror row
 * (relid, hubsync_id), removed from the set (it serves one write), or NULL
 * if hubsync's statement registered none.  Valid until the application of
 * HubSpot's changes ends.
 */
HeapTupleHeader
hubsync_remote_intent_take(Oid relid, const pg_uuid_t *hubsync_id)
{
	IntentKey	key;
	IntentEntry *entry;
	HeapTupleHeader row;

	if (intents == NULL)
		return NULL;
	memset(&key, 0, sizeof(key));
	key.relid = relid;
	memcpy(&key.hubsync_id, hubsync_id, sizeof(pg_uuid_t));
	entry = hash_search(intents, &key, HASH_FIND, NULL);
	if (entry == NULL)
		return NULL;
	row = entry->row;
	(void) hash_search(intents, &key, HASH_REMOVE, NULL);
	return row;
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
