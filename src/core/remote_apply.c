/*-------------------------------------------------------------------------
 *
 * remote_apply.c
 *	  Whether this process is applying HubSpot's changes to the mirror.
 *
 * The workers set hubsync_applying_remote around the writes that bring
 * HubSpot's changes into the mirror tables (and the push worker around
 * writing back hs_object_id); the capture triggers skip what is written
 * meanwhile, so a change from HubSpot is never pushed back.  It is a C
 * variable: no SQL can set it.  hubsync._applying_remote() lets the SQL
 * association trigger read it.
 *
 * IDENTIFICATION
 *	  src/core/remote_apply.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "fmgr.h"
#include "core/remote_apply.h"

PG_FUNCTION_INFO_V1(hubsync_applying_remote_fn);

bool		hubsync_applying_remote = false;

/* hubsync_applying_remote_fn -- SQL hubsync._applying_remote() */
Datum
hubsync_applying_remote_fn(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(hubsync_applying_remote);
}
