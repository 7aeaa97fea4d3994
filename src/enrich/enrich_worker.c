/*-------------------------------------------------------------------------
 *
 * enrich_worker.c
 *	  Main loop of the "hubsync enrich" background worker: calls the
 *	  enrichment providers for the jobs queued in hubsync.enrichment_jobs
 *	  and hands their answers to SQL, which writes the mirror.
 *
 * Two lanes.  Real-time jobs are queued by the hubsync_enrich trigger on a
 * mirror table in the writer's own transaction, which wakes this worker
 * at commit (enrich.c); each becomes one provider call at once, several
 * in flight together.  Batch jobs wait for the next run of the batch lane,
 * every hubsync.enrichment_batch_interval, and go out in as few calls as
 * the provider allows (hubsync.enrichment_providers.batch_size per call
 * when it accepts batches).
 *
 * What to send is decided in SQL (hubsync._enrich_claim: budget, back-off,
 * request bodies); what the answer means too (hubsync._enrich_result: data
 * quality rules, writes with origin 'enrichment' that the capture trigger
 * sends on to HubSpot).  This file only moves bytes: no transaction is
 * open while a request is in flight, and the provider's API key lives in
 * this process only while its request is being started.
 *
 * IDENTIFICATION
 *	  src/enrich/enrich_worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "storage/ipc.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "hubspot/http.h"
#include "bgw/worker.h"
#include "enrich/settings.h"

PGDLLEXPORT void hubsync_enrich_worker_main(Datum main_arg) pg_attribute_noreturn();

/* how long an idle worker sleeps when nothing wakes it */
#define ENRICH_IDLE_MS 1000
/* how often the mirror triggers are checked (restored dumps lack them) */
#define ENRICH_TRIGGER_CHECK_MS 10000

/* One provider call in flight */
typedef struct EnrichCall
{
	HubsyncHttpRequest req;		/* first: req->owner points back here */
	MemoryContext cxt;
	bool		batch;
	Datum		job_ids;		/* bigint[] */
} EnrichCall;

static List *calls = NIL;		/* in TopMemoryContext */
static SPIPlanPtr claim_plan = NULL;
static SPIPlanPtr result_plan = NULL;
static SPIPlanPtr triggers_plan = NULL;

/*
 * start_call -- begin one provider call described by a row of
 * hubsync._enrich_claim (provider, endpoint, api_key, timeout_ms, batch,
 * job_ids, body).  Runs inside the claim transaction; everything kept is
 * copied into the call's own context.
 */
static void
start_call(HeapTuple tup, TupleDesc td)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "hubsync enrich call",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	EnrichCall *call = palloc0(sizeof(EnrichCall));
	bool		isnull;
	char	   *key;

	call->cxt = cxt;
	call->req.method = "POST";
	call->req.url = SPI_getvalue(tup, td, 2);
	key = SPI_getvalue(tup, td, 3);
	call->req.timeout_ms = DatumGetInt32(SPI_getbinval(tup, td, 4, &isnull));
	call->batch = DatumGetBool(SPI_getbinval(tup, td, 5, &isnull));
	call->job_ids = datumCopy(SPI_getbinval(tup, td, 6, &isnull), false, -1);
	call->req.body = SPI_getvalue(tup, td, 7);
	call->req.bearer = key;
	call->req.owner = call;
	MemoryContextSwitchTo(old);

	PG_TRY();
	{
		hubsync_http_start(&call->req);
	}
	PG_FINALLY();
	{
		/* curl copied the header; the key leaves this process's memory */
		if (key)
			explicit_bzero(key, strlen(key));
		call->req.bearer = NULL;
	}
	PG_END_TRY();

	old = MemoryContextSwitchTo(TopMemoryContext);
	calls = lappend(calls, call);
	MemoryContextSwitchTo(old);
}

/*
 * claim_and_start -- claim the next calls of a lane (at most `room`) and
 * start them.  Returns how many started.
 */
static int
claim_and_start(const char *lane, int room)
{
	Datum		args[2];
	int			n = 0;
	uint64		i;

	if (room <= 0)
		return 0;
	if (!hubsync_worker_begin_xact(lane[0] == 'r' ? "enrichment: claiming real-time jobs" :
								   "enrichment: claiming batch jobs"))
	{
		hubsync_worker_end_xact();
		return 0;
	}
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	args[0] = CStringGetTextDatum(lane);
	args[1] = Int32GetDatum(room);
	if (SPI_execute_plan(hubsync_keep_plan(&claim_plan,
										   "SELECT provider, endpoint, api_key, timeout_ms, batch, job_ids, body "
										   "FROM hubsync._enrich_claim($1, $2)",
										   2, (Oid[]) {TEXTOID, INT4OID}),
						 args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not claim enrichment jobs");
	for (i = 0; i < SPI_processed; i++)
	{
		start_call(SPI_tuptable->vals[i], SPI_tuptable->tupdesc);
		n++;
	}
	SPI_finish();

	/*
	 * The claim (calls counted against the budget, jobs leased) commits
	 * before any answer is processed; a crash before that leaves leases
	 * that run out and are claimed again.
	 */
	hubsync_worker_end_xact();
	return n;
}

/*
 * hubsync_enrich_record_result -- hand a finished call (job ids, lane,
 * HTTP outcome and answer) to hubsync._enrich_result(), which parses the
 * answer in SQL.  SPI must be connected.  Shared by the worker and
 * hubsync._parse_probe(), so the fuzzed path is the worker's.
 */
void
hubsync_enrich_record_result(Datum job_ids, bool batch, HubsyncHttpRequest *req)
{
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	args[0] = job_ids;
	args[1] = BoolGetDatum(batch);
	args[2] = Int32GetDatum((int32) req->status);
	if (req->response != NULL)
		args[3] = CStringGetTextDatum(req->response);
	else
		nulls[3] = 'n';
	args[4] = CStringGetTextDatum(req->error);
	args[5] = BoolGetDatum(req->timed_out);
	args[6] = Int32GetDatum((int32) Min(req->retry_after_s, 86400));
	if (SPI_execute_plan(hubsync_keep_plan(&result_plan,
										   "SELECT hubsync._enrich_result($1, $2, $3, $4, $5, $6, $7)",
										   7, (Oid[]) {INT8ARRAYOID, BOOLOID, INT4OID, TEXTOID,
										   TEXTOID, BOOLOID, INT4OID}),
						 args, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not record an enrichment result");
}

/* finish_call -- record a finished call's outcome in SQL, then free it */
static void
finish_call(EnrichCall *call)
{
	HubsyncHttpRequest *req = &call->req;

	if (hubsync_worker_begin_xact("enrichment: recording a provider's answer"))
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		hubsync_enrich_record_result(call->job_ids, call->batch, req);
		SPI_finish();
	}
	hubsync_worker_end_xact();
	hubsync_http_release(req);
	MemoryContextDelete(call->cxt);
}

/* finish_done_calls -- process every call that completed */
static void
finish_done_calls(void)
{
	HubsyncHttpRequest *req;

	while ((req = hubsync_http_next_done()) != NULL)
	{
		EnrichCall *call = (EnrichCall *) req->owner;
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		calls = list_delete_ptr(calls, call);
		MemoryContextSwitchTo(old);
		finish_call(call);
	}
}

/*
 * sync_triggers -- make sure exactly the mirror tables with enabled rules
 * carry the hubsync_enrich trigger (a restored dump has the rules but not
 * the triggers).
 */
static void
sync_triggers(void)
{
	if (hubsync_worker_begin_xact("enrichment: checking mirror triggers"))
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_plan(hubsync_keep_plan(&triggers_plan,
											   "SELECT hubsync._enrich_sync_triggers()",
											   0, NULL),
							 NULL, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not check the enrichment triggers");
		SPI_finish();
	}
	hubsync_worker_end_xact();
}

/*
 * enrich_loop -- the enrich worker's loop: claim real-time jobs
 * whenever woken, batch jobs every hubsync.enrichment_batch_interval,
 * keep up to hubsync.enrichment_max_inflight calls in flight, record
 * answers as they arrive.  Never returns.
 */
static void
enrich_loop(void)
{
	MemoryContext loop_cxt = AllocSetContextCreate(TopMemoryContext,
												   "hubsync enrich loop",
												   ALLOCSET_DEFAULT_SIZES);
	bool		ready = false;
	int64		last_ready_check = 0;
	int64		last_trigger_check = 0;
	int64		next_batch = 0;
	bool		realtime_due = true;

	hubsync_http_init();

	for (;;)
	{
		int64		now = hubsync_now_ms();
		long		timeout;
		int			room;

		hubsync_worker_handle_interrupts();
		MemoryContextSwitchTo(loop_cxt);

		if (!ready || now - last_ready_check >= 1000)
		{
			ready = hubsync_worker_check_ready();
			last_ready_check = now;
			if (!ready)
			{
				MemoryContextSwitchTo(TopMemoryContext);
				MemoryContextReset(loop_cxt);
				hubsync_worker_pause(5000);
				realtime_due = true;
				last_trigger_check = 0;
				continue;
			}
		}
		if (now - last_trigger_check >= ENRICH_TRIGGER_CHECK_MS)
		{
			sync_triggers();
			last_trigger_check = now;
		}

		room = hubsync_enrichment_max_inflight - list_length(calls);
		if (realtime_due && room > 0)
		{
			int			started = claim_and_start("realtime", room);

			/* a full claim may have left more behind: look again at once */
			realtime_due = (started >= room);
			room -= started;
		}
		if (now >= next_batch && room > 0)
		{
			int			started = claim_and_start("batch", room);

			if (started < room)
				next_batch = now + (int64) hubsync_enrichment_batch_interval * 1000;
		}

		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(loop_cxt);

		/*
		 * Wait for answers, a wake-up from a committing backend, the next
		 * batch run or, now and then, retries that came due.
		 */
		room = hubsync_enrichment_max_inflight - list_length(calls);
		timeout = ENRICH_IDLE_MS;
		if (room > 0)
		{
			/* a free slot: go on at once if work is due, else sleep */
			if (realtime_due)
				timeout = 0;
			else if (next_batch - hubsync_now_ms() < timeout)
				timeout = Max(next_batch - hubsync_now_ms(), 0);
		}
		if (timeout > 0)
		{
			bool		sleeping = hubsync_worker_begin_sleep();

			if (!sleeping)
				timeout = 0;
			if (calls == NIL)
				pgstat_report_activity(STATE_IDLE, NULL);
			(void) hubsync_http_wait(timeout);
			if (sleeping)
				hubsync_worker_end_sleep();
		}
		else if (calls != NIL)
			(void) hubsync_http_wait(0);
		CHECK_FOR_INTERRUPTS();
		if (hubsync_worker_consume_wake())
			realtime_due = true;
		else if (timeout >= ENRICH_IDLE_MS)
			realtime_due = true;	/* a retry may have come due */

		finish_done_calls();
	}
}

/*
 * hubsync_enrich_worker_main -- the enrich worker's entry point, registered by
 * name (bgw_function_name): the common start-up, then its loop.
 */
void
hubsync_enrich_worker_main(Datum main_arg)
{
	hubsync_worker_start(HUBSYNC_WORKER_ENRICH);
	enrich_loop();
	/* the loop never returns; if it did, let the postmaster restart us */
	proc_exit(1);
}
