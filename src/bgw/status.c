/*-------------------------------------------------------------------------
 *
 * status.c
 *	  SQL functions that report what the workers are doing.
 *
 * IDENTIFICATION
 *	  src/bgw/status.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "access/htup_details.h"
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

PG_FUNCTION_INFO_V1(hubsync_quota_status);

/*
 * hubsync_quota_status -- one row: the shared HubSpot budget (10-second
 * window, day, search second: used and left), when sending may resume
 * after a 429, and request counters by outcome since server start.
 */
Datum
hubsync_quota_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	HubsyncQuotaSnapshot s;
	Datum		values[17];
	bool		nulls[17];
	int			i = 0;

	hubsync_require_shmem();
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	hubsync_quota_snapshot(&s);
	memset(nulls, 0, sizeof(nulls));

	values[i++] = Int32GetDatum(s.window_used);
	values[i++] = Int32GetDatum(s.window_limit);
	values[i++] = Int32GetDatum(Max(s.window_limit - s.window_used, 0));
	values[i++] = Int64GetDatum(s.daily_used);
	values[i] = Int64GetDatum(s.daily_limit);
	nulls[i++] = (s.daily_limit == 0);
	values[i] = Int64GetDatum(Max(s.daily_limit - s.daily_used, 0));
	nulls[i++] = (s.daily_limit == 0);
	values[i++] = Int32GetDatum(s.search_used);
	values[i++] = Int32GetDatum(s.search_limit);
	values[i++] = Int32GetDatum(Max(s.search_limit - s.search_used, 0));
	/* ms since the Unix epoch to a timestamptz */
	values[i] = TimestampTzGetDatum((TimestampTz) (s.blocked_until -
												   ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000)) * 1000);
	nulls[i++] = (s.blocked_until == 0);
	values[i++] = Int64GetDatum(s.requests);
	values[i++] = Int64GetDatum(s.responses_2xx);
	values[i++] = Int64GetDatum(s.responses_4xx);
	values[i++] = Int64GetDatum(s.responses_5xx);
	values[i++] = Int64GetDatum(s.transport_errors);
	values[i++] = Int64GetDatum(s.throttled_429);
	values[i++] = Int64GetDatum(s.retries);
	Assert(i == 17);
	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
