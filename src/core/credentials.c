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

#include "fmgr.h"
#include "core/at_commit.h"

PG_FUNCTION_INFO_V1(hubsync_credentials_changed);

/*
 * credentials_committed -- the credentials changed: tell the workers (at
 * commit only; after an abort the old credentials still stand).
 */
static void
credentials_committed(void)
{
	pg_atomic_fetch_add_u64(&hubsync_shared->credentials_version, 1);
	pg_atomic_write_u32(&hubsync_shared->auth_failed, 0);
	hubsync_wake_all_workers();
}

/*
 * hubsync_credentials_changed -- arrange for the workers to reload their
 * credentials when the calling transaction commits.  Harmless when the
 * library is not preloaded: there are no workers to tell.
 */
Datum
hubsync_credentials_changed(PG_FUNCTION_ARGS)
{
	hubsync_at_commit(credentials_committed);
	PG_RETURN_VOID();
}

/* hubsync_credentials_version -- the current version, for the workers */
uint64
hubsync_credentials_version(void)
{
	return pg_atomic_read_u64(&hubsync_shared->credentials_version);
}
