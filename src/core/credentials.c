/*-------------------------------------------------------------------------
 *
 * credentials.c
 *	  Signalling credential changes to the workers.
 *
 * Secrets live in hubsync._credentials, a table only the extension owner
 * can read; hubsync.set_credentials() writes it and then calls
 * hubsync._credentials_changed(), which bumps a version counter in shared
 * memory and wakes every worker.  A worker re-reads the secrets when the
 * version moves, so a new token takes effect at once, without a restart,
 * and work that a 401 had stopped resumes.
 *
 * IDENTIFICATION
 *	  src/core/credentials.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "access/xact.h"
#include "fmgr.h"

PG_FUNCTION_INFO_V1(hubsync_credentials_changed);

static bool callback_registered = false;
static bool credentials_dirty = false;

/*
 * credentials_xact_callback -- at commit of a transaction that changed the
 * credentials, tell the workers; at abort, do nothing (the old credentials
 * still stand).
 */
static void
credentials_xact_callback(XactEvent event, void *arg)
{
	if (!credentials_dirty)
		return;
	if (event == XACT_EVENT_COMMIT)
	{
		pg_atomic_fetch_add_u64(&hubsync_shared->credentials_version, 1);
		pg_atomic_write_u32(&hubsync_shared->auth_failed, 0);
		hubsync_wake_all_workers();
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT)
		credentials_dirty = false;
}

/*
 * hubsync_credentials_changed -- arrange for the workers to reload their
 * credentials when the calling transaction commits.  Harmless when the
 * library is not preloaded: there are no workers to tell.
 */
Datum
hubsync_credentials_changed(PG_FUNCTION_ARGS)
{
	if (!hubsync_shmem_available())
		PG_RETURN_VOID();
	if (!callback_registered)
	{
		RegisterXactCallback(credentials_xact_callback, NULL);
		callback_registered = true;
	}
	credentials_dirty = true;
	PG_RETURN_VOID();
}

/* hubsync_credentials_version -- the current version, for the workers */
uint64
hubsync_credentials_version(void)
{
	return pg_atomic_read_u64(&hubsync_shared->credentials_version);
}
