/*-------------------------------------------------------------------------
 *
 * push_worker.c
 *	  Main loop of the "hubsync push" worker: outbox to HubSpot.
 *
 * The loop keeps up to hubsync.max_inflight batch requests in flight:
 *
 *	1. claim (short transaction): hubsync._claim() leases pending changes,
 *	   coalesced per record, and says what to send; they are grouped into
 *	   batches per object type and kind, up to hubsync.batch_size.  Up to
 *	   max_inflight batches wait claimed ahead of the quota; a claim runs
 *	   once half of them have left, or at once after new commits;
 *	2. send (no transaction open): each batch waits for the shared quota,
 *	   then goes out through libcurl's multi interface;
 *	3. record (short transaction): each finished request's plain successes
 *	   are booked in one statement, every other outcome record by record,
 *	   each in its own subtransaction, so one bad record never stops the
 *	   rest (push_outcome.c).
 *
 * A crash between 1 and 3 leaves leases that run out (or are released when
 * the worker starts), and the changes are sent again; creates go through
 * batch upsert keyed by the unique hubsync_id property, so a resent create
 * never duplicates a record.  Committing backends set our latch, so
 * changes leave within milliseconds of commit.
 *
 * IDENTIFICATION
 *	  src/push/push_worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "storage/ipc.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "hubspot/api_paths.h"
#include "hubspot/hubspot_api.h"
#include "push/push.h"
#include "bgw/worker.h"
#include "hubspot/settings.h"
#include "push/settings.h"

PGDLLEXPORT void hubsync_push_worker_main(Datum main_arg) pg_attribute_noreturn();

#define IDLE_WAIT_MS 10000
#define LEASE_CHECK_MS 30000

static MemoryContext push_cxt = NULL;	/* lives as long as the worker */
static List *ready_batches = NIL;	/* claimed, waiting for quota */
static bool outbox_drained = false;	/* last claim found nothing more */
static bool commits_since_claim = true; /* changes may have been committed */
static long idle_wait_ms = IDLE_WAIT_MS;
static bool assoc_due = true;	/* an association round may find work */
static double bulk_tokens = 0;	/* bulk batches that may leave now */
static TimestampTz bulk_tokens_at = 0;

/*
 * BULK_BURST -- bulk batches that may leave at once.  Bulk work is sent at
 * the window's sustained rate, not in bursts: a window filled in one
 * burst frees nothing for ten seconds, and a real-time change would wait
 * that long; sent evenly, a place frees every window / limit, and the
 * real-time lane takes the next one.  The burst lets a worker that was
 * held up (a slow claim on a busy machine) catch up on the time lost, at
 * the price of a gap of at most this many places (16 x 53 ms at 190 per
 * 10 s) for the real-time lane.
 */
#define BULK_BURST 16

/*
 * bulk_wait_ms -- 0 when a bulk batch may leave now (taking its token),
 * else ms until it may
 */
static long
bulk_wait_ms(void)
{
	TimestampTz now = GetCurrentTimestamp();
	double		rate = hubsync_quota_rate() / 1000.0;	/* per ms */

	if (bulk_tokens_at == 0)
		bulk_tokens = BULK_BURST;
	else
		bulk_tokens = Min(BULK_BURST,
						  bulk_tokens + (double) (now - bulk_tokens_at) / 1000.0 * rate);
	bulk_tokens_at = now;
	if (bulk_tokens >= 1.0)
		return 0;
	return (long) ((1.0 - bulk_tokens) / Max(rate, 0.0001)) + 1;
}

static TimestampTz last_assoc_round = 0;

/* lease_seconds -- how long a claim holds its rows */
static int
lease_seconds(void)
{
	return hubsync_request_timeout / 1000 * 3 + 60;
}

/* new_batch -- an empty batch for records of one object type and kind */
static PushBatch *
new_batch(PushRecord *r)
{
	PushBatch  *b = MemoryContextAllocZero(r->cxt, sizeof(PushBatch));

	b->cxt = r->cxt;
	b->kind = r->kind;
	b->object_type = r->object_type;
	b->api_name = r->api_name;
	b->solo = r->solo;
	b->realtime = r->realtime;
	return b;
}

/* copy_record -- a claimed row, copied into its batch's memory */
static PushRecord *
copy_record(MemoryContext cxt, HeapTuple tup, TupleDesc td)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	PushRecord *r = palloc0(sizeof(PushRecord));
	char	   *kind;
	bool		isnull;

	r->hubsync_id = SPI_getvalue(tup, td, 1);
	r->object_type = SPI_getvalue(tup, td, 2);
	r->api_name = SPI_getvalue(tup, td, 3);
	kind = SPI_getvalue(tup, td, 4);
	r->kind = strcmp(kind, "upsert") == 0 ? PUSH_UPSERT :
		strcmp(kind, "update") == 0 ? PUSH_UPDATE : PUSH_ARCHIVE;
	r->hs_object_id = SPI_getvalue(tup, td, 5);
	r->props = SPI_getvalue(tup, td, 6);
	r->outbox_ids = SPI_getvalue(tup, td, 7);
	r->attempts = DatumGetInt32(SPI_getbinval(tup, td, 8, &isnull));
	r->first_created = DatumGetTimestampTz(SPI_getbinval(tup, td, 9, &isnull));
	r->solo = DatumGetBool(SPI_getbinval(tup, td, 10, &isnull));
	r->realtime = DatumGetBool(SPI_getbinval(tup, td, 11, &isnull));
	MemoryContextSwitchTo(old);
	return r;
}

/*
 * claim_batches -- lease pending changes and group them into batches.
 * Returns the number of records claimed.
 */
static int
claim_batches(void)
{
	int			limit = hubsync_batch_size *
		Max(hubsync_max_inflight - list_length(ready_batches), 1);
	Datum		args[2];
	List	   *open = NIL;
	uint64		i;
	int			claimed;

	if (!hubsync_worker_begin_xact("claiming changes"))
	{
		hubsync_worker_end_xact();
		return 0;
	}
	SPI_connect();
	args[0] = Int32GetDatum(limit);
	args[1] = Int32GetDatum(lease_seconds());
	if (SPI_execute_with_args("SELECT * FROM hubsync._claim($1, $2)", 2,
							  (Oid[]) {INT4OID, INT4OID}, args, NULL,
							  false, 0) != SPI_OK_SELECT)
		elog(ERROR, "hubsync._claim() failed");
	claimed = (int) SPI_processed;

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		char	   *kind = SPI_getvalue(tup, td, 4);
		char	   *type = SPI_getvalue(tup, td, 2);
		bool		isnull;
		bool		solo = DatumGetBool(SPI_getbinval(tup, td, 10, &isnull));
		bool		realtime = DatumGetBool(SPI_getbinval(tup, td, 11, &isnull));
		PushBatch  *b = NULL;
		ListCell   *lc;

		foreach(lc, open)
		{
			PushBatch  *cand = lfirst(lc);

			if (!solo && !cand->solo && cand->nrecords < hubsync_batch_size &&
				cand->realtime == realtime &&
				strcmp(cand->object_type, type) == 0 &&
				strcmp(push_kind_paths[cand->kind], kind) == 0)
			{
				b = cand;
				break;
			}
		}
		if (b == NULL)
		{
			/* the batch lives in its own context, with its first record */
			MemoryContext cxt = AllocSetContextCreate(push_cxt, "hubsync push batch",
													  ALLOCSET_SMALL_SIZES);
			PushRecord *first = copy_record(cxt, tup, td);
			MemoryContext old;

			first->cxt = cxt;
			b = new_batch(first);
			b->records[b->nrecords++] = first;
			old = MemoryContextSwitchTo(push_cxt);
			open = lappend(open, b);
			MemoryContextSwitchTo(old);
			continue;
		}
		b->records[b->nrecords++] = copy_record(b->cxt, tup, td);
	}

	/*
	 * When the outbox is empty, sleep until the earliest retry is due.  A
	 * paused type's changes are not due, however old: they would have the
	 * worker spin; each type's rows are found by the (object_type,
	 * priority, id) index (a row comparison, which no plan answers from the
	 * primary key), with no JIT start-up.  The transaction ends right after, with its settings.
	 */
	idle_wait_ms = IDLE_WAIT_MS;
	if (claimed == 0)
	{
		(void) SPI_execute("SELECT set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)",
						   false, 1);
		if (SPI_execute("SELECT greatest(0, ceil(extract(epoch FROM min(w.next_at) - now()) * 1000))::bigint "
						"FROM hubsync.object_types t CROSS JOIN LATERAL "
						"(SELECT min(o.next_attempt_at) AS next_at FROM hubsync.outbox o "
						" WHERE (o.object_type, o.priority, o.id) > (t.object_type, -32768, 0) "
						"   AND o.object_type <= t.object_type "
						"   AND o.state = 'pending') w "
						"WHERE NOT t.paused", false, 1) == SPI_OK_SELECT &&
			SPI_processed == 1)
		{
			bool		isnull;
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			if (!isnull)
				idle_wait_ms = Min((long) DatumGetInt64(d) + 1, IDLE_WAIT_MS);
		}
	}
	SPI_finish();
	hubsync_worker_end_xact();

	{
		MemoryContext old = MemoryContextSwitchTo(push_cxt);
		List	   *rt = NIL;
		List	   *bulk = NIL;
		ListCell   *lc;

		/*
		 * The real-time lane goes first: its batches go ahead of every
		 * bulk batch already waiting for the quota (after real-time ones
		 * claimed before), so a single-row commit waits for at most the
		 * next free request, not for a backlog.
		 */
		foreach(lc, open)
		{
			PushBatch  *b = lfirst(lc);

			if (b->realtime)
				rt = lappend(rt, b);
			else
				bulk = lappend(bulk, b);
		}
		if (rt != NIL)
		{
			List	   *merged = NIL;

			foreach(lc, ready_batches)
				if (((PushBatch *) lfirst(lc))->realtime)
					merged = lappend(merged, lfirst(lc));
			merged = list_concat(merged, rt);
			foreach(lc, ready_batches)
				if (!((PushBatch *) lfirst(lc))->realtime)
					merged = lappend(merged, lfirst(lc));
			list_free(ready_batches);
			ready_batches = merged;
		}
		ready_batches = list_concat(ready_batches, bulk);
		list_free(open);
		list_free(rt);
		list_free(bulk);
		MemoryContextSwitchTo(old);
	}
	outbox_drained = (claimed < limit);
	commits_since_claim = false;
	return claimed;
}

/*
 * claim_wanted -- whether to claim now.  Fewer than max_inflight batches
 * wait for the quota; claim once half of them have left, so that a claim
 * (a dozen statements, one of them planned afresh each time) fills
 * several batches, not one; and at once after new commits, so that a
 * real-time change never waits behind the bulk batches' pacing.
 */
static bool
claim_wanted(void)
{
	int			ready = list_length(ready_batches);

	if (outbox_drained || hubsync_auth_blocked() || ready >= hubsync_max_inflight)
		return false;
	return ready <= hubsync_max_inflight / 2 || commits_since_claim;
}

/* start_batch -- build and send a batch's request */
static void
start_batch(PushBatch *b)
{
	MemoryContext old = MemoryContextSwitchTo(b->cxt);
	HubsyncHttpRequest *req = &b->req;

	req->method = "POST";
	req->url = hubsync_api_url(hubsync_path_objects(b->api_name,
												  psprintf("/batch/%s", push_kind_paths[b->kind])));
	req->body = push_build_body(b);
	req->bearer = hubsync_access_token();
	req->owner = b;
	hubsync_http_start(req);
	MemoryContextSwitchTo(old);
	{
		char		activity[NAMEDATALEN * 2];

		snprintf(activity, sizeof(activity), "sending %d %s to HubSpot (batch/%s)",
				 b->nrecords, b->api_name, push_kind_paths[b->kind]);
		pgstat_report_activity(STATE_RUNNING, activity);
	}
}

/*
 * send_ready_batches -- start batches while slots and quota allow.
 * Returns ms until the quota allows the next one (0 if not waiting).
 */
static long
send_ready_batches(void)
{
	while (ready_batches != NIL &&
		   hubsync_http_inflight() < hubsync_max_inflight &&
		   !hubsync_auth_blocked())
	{
		PushBatch  *b = linitial(ready_batches);
		long		wait;
		long		status = 200;

		if (b->kind == PUSH_UPSERT)
			status = hubsync_ensure_id_property(b->api_name);
		if (status == HUBSYNC_ID_PROPERTY_NOT_UNIQUE)
		{
			/*
			 * hubsync_id exists in HubSpot but is not unique: every upsert
			 * would be refused, and waiting does not fix it.  Dead-letter
			 * the batch with the reason (that also sends the dead_letter
			 * alert) instead of sending it.
			 */
			char	   *why = MemoryContextStrdup(b->cxt,
												  psprintf("the HubSpot property hubsync_id of %s is not unique (hasUniqueValue false): "
														   "delete or rename it in HubSpot, then retry these dead letters",
														   b->object_type));

			for (int i = 0; i < b->nrecords; i++)
			{
				PushRecord *r = b->records[i];

				r->outcome.kind = OUTCOME_DEAD;
				r->outcome.status = 0;
				r->outcome.category = "HUBSYNC_ID_NOT_UNIQUE";
				r->outcome.message = why;
			}
			ready_batches = list_delete_first(ready_batches);
			push_record_outcomes(b);
			MemoryContextDelete(b->cxt);
			continue;
		}
		if (status != 200)
		{
			/* cannot create the hubsync_id property yet: retry later */
			int			i;

			for (i = 0; i < b->nrecords; i++)
			{
				PushRecord *r = b->records[i];

				r->outcome.kind = OUTCOME_RETRY;
				r->outcome.delay_ms = (status == 401) ? 0 : 10000;
				r->outcome.count_attempt = false;
				r->outcome.status = (int) status;
				r->outcome.message = "could not prepare the hubsync_id property in HubSpot";
			}
			ready_batches = list_delete_first(ready_batches);
			push_record_outcomes(b);
			MemoryContextDelete(b->cxt);
			continue;
		}
		if (!b->realtime && (wait = bulk_wait_ms()) > 0)
			return wait;
		wait = hubsync_quota_acquire(HUBSYNC_QUOTA_REALTIME);
		if (wait > 0)
			return wait;
		if (!b->realtime)
			bulk_tokens -= 1.0;
		ready_batches = list_delete_first(ready_batches);
		start_batch(b);
	}
	return 0;
}

/* finish_requests -- record the outcomes of every finished request */
static void
finish_requests(void)
{
	HubsyncHttpRequest *req;

	while ((req = hubsync_http_next_done()) != NULL)
	{
		PushBatch  *b = (PushBatch *) req->owner;
		MemoryContext old = MemoryContextSwitchTo(b->cxt);

		hubsync_observe_response(req);
		push_classify(b);
		push_resolve_conflicts(b);
		MemoryContextSwitchTo(old);
		/* commit to HubSpot's answer, for each change HubSpot took */
		for (int i = 0; i < b->nrecords; i++)
			if (b->records[i]->outcome.kind == OUTCOME_DONE)
				hubsync_metrics_observe_push_latency(req->finished_at -
													 b->records[i]->first_created);
		push_record_outcomes(b);
		assoc_due = true;		/* new HubSpot ids may free associations */
		/* anything sent back to the queue may be due at once */
		for (int i = 0; i < b->nrecords; i++)
			if (b->records[i]->outcome.kind != OUTCOME_DONE &&
				b->records[i]->outcome.kind != OUTCOME_DEAD &&
				b->records[i]->outcome.kind != OUTCOME_GONE)
				outbox_drained = false;
		hubsync_http_release(req);
		MemoryContextDelete(b->cxt);
	}
}

/*
 * push_loop -- the push worker's loop (see the file header)
 */
static void
push_loop(void)
{
	bool		ready = false;
	TimestampTz last_ready_check = 0;
	TimestampTz last_lease_check = 0;
	bool		recovered = false;

	push_cxt = AllocSetContextCreate(TopMemoryContext, "hubsync push",
									 ALLOCSET_DEFAULT_SIZES);
	hubsync_http_init();

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();
		long		timeout = IDLE_WAIT_MS;
		long		quota_wait;
		bool		woken;

		hubsync_worker_handle_interrupts();

		/*
		 * Is there anything to do here?  While idle, asked on every wake-up
		 * and every 5 s; while running, at most once a second.
		 */
		if (!ready || TimestampDifferenceExceeds(last_ready_check, now, 1000))
		{
			ready = hubsync_worker_check_ready();
			last_ready_check = now;
			if (!ready)
			{
				/* commits cannot make us ready: only an alert or 5 s can */
				hubsync_worker_pause(5000);
				recovered = false;
				continue;
			}
		}

		if (!recovered)
		{
			/* one push worker: every lease is from our predecessor */
			hubsync_release_leases(true);
			recovered = true;
			outbox_drained = false;
		}
		else if (TimestampDifferenceExceeds(last_lease_check, now, LEASE_CHECK_MS))
		{
			hubsync_release_leases(false);
			last_lease_check = now;
		}

		hubsync_refresh_credentials();

		/*
		 * Send what is claimed first, then claim ahead: keep up to
		 * max_inflight batches claimed ahead of the quota, so a slot that
		 * frees never waits for a claim, and the claim runs while requests
		 * are in flight.
		 */
		quota_wait = send_ready_batches();
		if (claim_wanted())
		{
			claim_batches();
			quota_wait = send_ready_batches();
		}

		/*
		 * Associations leave once the record outbox is drained, so that
		 * their records' creates have gone first; retries are looked at
		 * every few seconds.
		 */
		if (outbox_drained && ready_batches == NIL && hubsync_http_inflight() == 0 &&
			!hubsync_auth_blocked() &&
			(assoc_due || TimestampDifferenceExceeds(last_assoc_round, now, 2000)))
		{
			assoc_due = hubsync_push_associations();
			last_assoc_round = GetCurrentTimestamp();
			if (assoc_due)
				outbox_drained = false; /* come straight back */
		}
		if (quota_wait > 0)
			timeout = quota_wait;
		else if (claim_wanted())
			timeout = 0;		/* more to claim */
		else if (ready_batches == NIL && outbox_drained)
			timeout = idle_wait_ms;
		if (hubsync_auth_blocked())
			timeout = hubsync_auth_wait_ms(IDLE_WAIT_MS);

		/* pg_stat_activity says why changes wait */
		if (hubsync_auth_blocked() && !outbox_drained)
			pgstat_report_activity(STATE_RUNNING,
								   "waiting: no valid HubSpot credentials (see hubsync.set_credentials)");
		else if (quota_wait > 0)
			pgstat_report_activity(STATE_RUNNING, "waiting for the HubSpot request budget");

		if (hubsync_http_inflight() > 0 || timeout > 0)
		{
			TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout);
			bool		idle = (hubsync_http_inflight() == 0 && ready_batches == NIL &&
								outbox_drained);

			/* only an idle worker asks committers for a signal */
			if (idle && !hubsync_worker_begin_sleep())
				timeout = 0;
			if (idle)
				pgstat_report_activity(STATE_IDLE, NULL);
			(void) hubsync_http_wait(timeout);
			if (idle)
				hubsync_worker_end_sleep();
			CHECK_FOR_INTERRUPTS();
			woken = hubsync_worker_consume_wake();
			if (woken)
			{
				assoc_due = true;
				commits_since_claim = true;
				/* new commits: let a batch fill for batch_linger */
				if (idle && hubsync_batch_linger > 0)
					hubsync_worker_pause(hubsync_batch_linger);
				outbox_drained = false;
			}
			else if (ready_batches == NIL && GetCurrentTimestamp() >= deadline)
				outbox_drained = false; /* slept it out: a retry may be due */
		}
		else if (hubsync_worker_consume_wake())
		{
			outbox_drained = false;
			commits_since_claim = true;
		}
		finish_requests();
	}
}

/*
 * hubsync_push_worker_main -- the push worker's entry point, registered by
 * name (bgw_function_name): the common start-up, then its loop.
 */
void
hubsync_push_worker_main(Datum main_arg)
{
	hubsync_worker_start(HUBSYNC_WORKER_PUSH);
	push_loop();
	/* the loop never returns; if it did, let the postmaster restart us */
	proc_exit(1);
}
