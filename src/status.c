/*-------------------------------------------------------------------------
 *
 * status.c
 *	  SQL functions that report what the workers are doing.
 *
 * IDENTIFICATION
 *	  src/status.c
 *
 *-------------------------------------------------------------------------
 */
#include "hubsync.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(hubsync_worker_status);

/*
 * hubsync_worker_status -- one row per worker: name, pid, state and start
 * time, read from shared memory.
 */
Datum
hubsync_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	hubsync_require_shmem();
	InitMaterializedSRF(fcinfo, 0);

	for (i = 0; i < HUBSYNC_NUM_WORKERS; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		HubsyncWorkerSlot copy;

		SpinLockAcquire(&hubsync_shared->mutex);
		copy.pid = hubsync_shared->workers[i].pid;
		copy.state = hubsync_shared->workers[i].state;
		copy.started_at = hubsync_shared->workers[i].started_at;
		SpinLockRelease(&hubsync_shared->mutex);

		values[0] = CStringGetTextDatum(hubsync_worker_names[i]);
		values[1] = Int32GetDatum(copy.pid);
		nulls[1] = (copy.pid == 0);
		values[2] = CStringGetTextDatum(hubsync_worker_state_name(copy.state));
		values[3] = TimestampTzGetDatum(copy.started_at);
		nulls[3] = (copy.pid == 0);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(hubsync_auth_state);

/*
 * hubsync_auth_state -- 'refused' after HubSpot answered 401 to our
 * credentials, 'refresh_failed' after it refused the OAuth refresh token
 * (sync has stopped until the credentials change), 'ok' otherwise; NULL
 * when the library is not preloaded.
 */
Datum
hubsync_auth_state(PG_FUNCTION_ARGS)
{
	uint32		state;

	if (!hubsync_shmem_available())
		PG_RETURN_NULL();
	state = pg_atomic_read_u32(&hubsync_shared->auth_failed);
	PG_RETURN_TEXT_P(cstring_to_text(state == HUBSYNC_AUTH_REFUSED ? "refused" :
									 state == HUBSYNC_AUTH_REFRESH_FAILED ?
									 "refresh_failed" : "ok"));
}
