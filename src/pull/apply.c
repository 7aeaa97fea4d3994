/*-------------------------------------------------------------------------
 *
 * apply.c
 *	  The inbox processor of the "hubsync pull" worker: applies pending
 *	  webhook events to the mirror in occurredAt order.
 *
 * One round:
 *	 1. a short transaction reads the next pending events and which records
 *		they need read from HubSpot (creations, restores, merge survivors,
 *		property changes of records not in the mirror);
 *	 2. with no transaction open, those records are fetched with batch
 *		read, ids coalesced, at most 100 per call, within the shared quota;
 *	 3. a second transaction (committed without waiting for the WAL
 *		flush: see hubsync_apply_inbox) first applies, set-based, the plain
 *		property changes (hubsync._apply_fast: events grouped by record, one
 *		UPDATE per record with newest-wins per property, all in one
 *		subtransaction; if that fails, nothing of it stays), then every
 *		event still pending in its own internal subtransaction
 *		(hubsync._apply_event), so a poison event is marked failed with its
 *		error and the others go on.  The rules themselves (newest wins per
 *		property, echoes, ownership, merges...) live in SQL next to the
 *		tables they touch.
 *
 * While events are applied hubsync_applying_remote is true, so the capture
 * trigger enqueues nothing for the rows hubsync writes: a change that came
 * from HubSpot is never pushed back.  What the application's triggers
 * write meanwhile is captured (origin "trigger", core/remote_apply.c).
 * It is reset on every path, errors included.
 *
 * IDENTIFICATION
 *	  src/pull/apply.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "pull/apply.h"
#include "core/remote_apply.h"
#include "hubspot/api_paths.h"
#include "hubspot/hubspot_api.h"
#include "hubspot/hubspot_read.h"
#include "hubspot/http.h"
#include "util/json_util.h"
#include "util/text_array.h"
#include "core/quota.h"
#include "bgw/worker.h"

#define HUBSYNC_BATCH_READ_MAX 100

/* Records one object type needs read from HubSpot */
typedef struct FetchPlan
{
	char	   *object_type;
	char	   *api_name;
	int			nids;
	int64	   *ids;
	int			nprops;
	char	  **props;
	bool		failed;			/* the read failed: every record of the type */
	List	   *failed_ids;		/* records a 207 says were not read (char *) */
} FetchPlan;

static SPIPlanPtr apply_plan = NULL;
static SPIPlanPtr failed_plan = NULL;
static SPIPlanPtr map_plan = NULL;
static SPIPlanPtr fast_plan = NULL;
static SPIPlanPtr pending_plan = NULL;
static bool http_ready = false;

/* ids_array -- an int8[] datum of n event ids */
static Datum
ids_array(const int64 *ids, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		elems[i] = Int64GetDatum(ids[i]);
	return PointerGetDatum(construct_array(elems, n, INT8OID, 8, FLOAT8PASSBYVAL,
										   TYPALIGN_DOUBLE));
}

/*
 * read_round -- the ids of the next pending events and the fetch plan,
 * copied into the caller's context.  Returns the number of events; 0 as
 * well when the extension is gone.
 */
static int
read_round(int limit, int64 **ids, List **plans)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			n = 0;
	uint64		i;
	char		sql[256];

	*plans = NIL;
	if (!hubsync_worker_begin_xact("reading the hubsync inbox"))
	{
		hubsync_worker_end_xact();
		return 0;
	}
	SPI_connect();
	snprintf(sql, sizeof(sql), "SELECT hubsync._inbox_next(%d)", limit);
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the hubsync inbox");
	if (SPI_processed > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		Oid			argtypes[1] = {INT8ARRAYOID};
		Datum		args[1];

		*ids = palloc(sizeof(int64) * SPI_processed);
		MemoryContextSwitchTo(old);
		for (i = 0; i < SPI_processed; i++)
		{
			bool		isnull;

			(*ids)[n++] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													  SPI_tuptable->tupdesc, 1, &isnull));
		}
		args[0] = ids_array(*ids, n);
		if (SPI_execute_with_args("SELECT object_type, api_name, ids, properties "
								  "FROM hubsync._inbox_fetch_plan($1)",
								  1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not plan record reads for the hubsync inbox");
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			Datum		d;
			MemoryContext old = MemoryContextSwitchTo(cxt);
			FetchPlan  *p = palloc0(sizeof(FetchPlan));

			p->object_type = SPI_getvalue(tup, desc, 1);
			p->api_name = SPI_getvalue(tup, desc, 2);
			d = SPI_getbinval(tup, desc, 3, &isnull);
			if (!isnull)
			{
				Datum	   *elems;
				bool	   *nulls;
				int			k;

				deconstruct_array(DatumGetArrayTypeP(d), INT8OID, 8, FLOAT8PASSBYVAL,
								  TYPALIGN_DOUBLE, &elems, &nulls, &p->nids);
				p->ids = palloc(sizeof(int64) * Max(p->nids, 1));
				for (k = 0; k < p->nids; k++)
					p->ids[k] = DatumGetInt64(elems[k]);
			}
			d = SPI_getbinval(tup, desc, 4, &isnull);
			if (!isnull)
				p->nprops = hubsync_text_array(d, &p->props);
			*plans = lappend(*plans, p);
			MemoryContextSwitchTo(old);
		}
	}
	SPI_finish();
	hubsync_worker_end_xact();
	return n;
}

/*
 * fetch_records -- batch-read the planned records; returns a JSON array
 * of {"t": object_type, "r": response} (raw HubSpot responses).  A type
 * whose read fails is marked failed: its events wait for a later round.
 */
static char *
fetch_records(List *plans)
{
	StringInfoData out;
	ListCell   *lc;
	bool		first = true;

	initStringInfo(&out);
	appendStringInfoChar(&out, '[');
	if (plans != NIL)
	{
		if (!http_ready)
		{
			hubsync_http_init();
			http_ready = true;
		}
		hubsync_refresh_credentials();
	}
	foreach(lc, plans)
	{
		FetchPlan  *p = lfirst(lc);
		int			start;

		for (start = 0; start < p->nids && !p->failed; start += HUBSYNC_BATCH_READ_MAX)
		{
			int			end = Min(start + HUBSYNC_BATCH_READ_MAX, p->nids);
			StringInfoData body;
			HubsyncHttpRequest *req;
			Jsonb	   *answer;
			bool		answered;
			int			k;

			if (hubsync_auth_blocked())
			{
				p->failed = true;
				break;
			}
			initStringInfo(&body);
			/* propertiesWithHistory: empty, but required by HubSpot's spec */
			appendStringInfoString(&body, "{\"propertiesWithHistory\":[],\"properties\":[");
			for (k = 0; k < p->nprops; k++)
			{
				if (k > 0)
					appendStringInfoChar(&body, ',');
				hubsync_json_escape(&body, p->props[k]);
			}
			appendStringInfoString(&body, "],\"inputs\":[");
			for (k = start; k < end; k++)
				appendStringInfo(&body, "%s{\"id\":\"" INT64_FORMAT "\"}",
								 k > start ? "," : "", p->ids[k]);
			appendStringInfoString(&body, "]}");

			req = hubsync_request_send(HUBSYNC_QUOTA_REALTIME, "POST",
									   hubsync_api_url(hubsync_path_objects(p->api_name, "/batch/read")),
									   body.data, NULL);
			answered = (req->status == 200 || req->status == 207) && req->response;
			answer = answered ? hubsync_json_parse(req->response, req->response_len) : NULL;
			if (answered && !hubsync_read_answer_usable(answer))
			{
				/* truncated, not UTF-8, too deep, not an object: unusable */
				p->failed = true;
				ereport(LOG,
						(errmsg("hubsync could not read %s records from HubSpot for webhook events: HubSpot's answer was not a valid list of records",
								p->object_type),
						 errhint("The events stay pending and are applied once the read succeeds.")));
			}
			else if (answer != NULL && !hubsync_read_failed_ids(answer, &p->failed_ids))
			{
				p->failed = true;
				ereport(LOG,
						(errmsg("hubsync could not read %s records from HubSpot for webhook events: HTTP %ld with errors that name no record",
								p->object_type, req->status),
						 errhint("The events stay pending and are applied once the read succeeds.")));
			}
			else if (answer != NULL)
			{
				if (p->failed_ids != NIL)
					ereport(LOG,
							(errmsg("hubsync could not read %d %s records from HubSpot for webhook events: HTTP %ld with errors other than OBJECT_NOT_FOUND",
									list_length(p->failed_ids), p->object_type, req->status),
							 errhint("Their events stay pending and are applied once a read succeeds.")));
				if (!first)
					appendStringInfoChar(&out, ',');
				first = false;
				appendStringInfoString(&out, "{\"t\":");
				hubsync_json_escape(&out, p->object_type);
				appendStringInfoString(&out, ",\"r\":");
				appendBinaryStringInfo(&out, req->response, (int) req->response_len);
				appendStringInfoChar(&out, '}');
			}
			else
			{
				p->failed = true;
				ereport(LOG,
						(errmsg("hubsync could not read %s records from HubSpot for webhook events: HTTP %ld%s%s",
								p->object_type, req->status,
								req->error[0] ? ", " : "", req->error),
						 errhint("The events stay pending and are applied once the read succeeds.")));
			}
			hubsync_http_release(req);
		}
	}
	appendStringInfoChar(&out, ']');
	return out.data;
}

/* prepare_plans -- the saved SPI plans of a round */
static void
prepare_plans(void)
{
	(void) hubsync_keep_plan(&apply_plan, "SELECT hubsync._apply_event($1, $2, $3)",
							 3, (Oid[]) {INT8OID, JSONBOID, TEXTARRAYOID});
	(void) hubsync_keep_plan(&failed_plan, "SELECT hubsync._inbox_failed($1, $2)",
							 2, (Oid[]) {INT8OID, TEXTOID});
	/* answers of the wrong shape contribute nothing (never an error) */
	(void) hubsync_keep_plan(&map_plan, "SELECT coalesce(pg_catalog.jsonb_object_agg((f->>'t') || ':' || (r->>'id'), r), '{}') "
							   "FROM pg_catalog.jsonb_array_elements($1::jsonb) f, "
							   "     pg_catalog.jsonb_array_elements(CASE WHEN pg_catalog.jsonb_typeof(f->'r'->'results') = 'array' "
							   "       THEN f->'r'->'results' ELSE '[]' END) r "
							   "WHERE pg_catalog.jsonb_typeof(r) = 'object' AND pg_catalog.jsonb_typeof(r->'id') IN ('string', 'number')",
							 1, (Oid[]) {TEXTOID});
	(void) hubsync_keep_plan(&fast_plan, "SELECT applied, skipped FROM hubsync._apply_fast($1)",
							 1, (Oid[]) {INT8ARRAYOID});
	(void) hubsync_keep_plan(&pending_plan, "SELECT hubsync._inbox_still_pending($1)",
							 1, (Oid[]) {INT8ARRAYOID});
}

/* count_outcome -- bump the counter of an event's outcome */
static void
count_outcome(const char *outcome, bool *retry_later)
{
	if (strcmp(outcome, "applied") == 0)
		hubsync_count_webhook(HUBSYNC_WH_EVENTS_APPLIED, 1);
	else if (strcmp(outcome, "echo") == 0)
		hubsync_count_webhook(HUBSYNC_WH_EVENTS_ECHO, 1);
	else if (strcmp(outcome, "reverted") == 0)
		hubsync_count_webhook(HUBSYNC_WH_EVENTS_REVERTED, 1);
	else if (strcmp(outcome, "unknown") == 0)
		hubsync_count_webhook(HUBSYNC_WH_EVENTS_UNKNOWN, 1);
	else if (strcmp(outcome, "retry") == 0)
		*retry_later = true;
	else if (strcmp(outcome, "skipped") == 0)
		hubsync_count_webhook(HUBSYNC_WH_EVENTS_SKIPPED, 1);
}

/* one event to apply, as hubsync_in_subtransaction passes it */
typedef struct ApplyStep
{
	Datum		values[3];		/* inbox id, fetched records, failed types */
	bool	   *retry_later;
} ApplyStep;

/* apply_step -- apply one event (run inside a subtransaction) */
static void
apply_step(void *arg)
{
	ApplyStep  *step = (ApplyStep *) arg;
	bool		isnull;
	Datum		d;

	if (SPI_execute_plan(apply_plan, step->values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not apply inbox event " INT64_FORMAT, DatumGetInt64(step->values[0]));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	count_outcome(isnull ? "skipped" : TextDatumGetCString(d), step->retry_later);
}

/*
 * apply_one -- apply one event in an internal subtransaction; a failure
 * rolls back only this event, which is then marked failed (or, for a
 * transient failure such as a deadlock, left pending for a later round).
 */
static void
apply_one(int64 id, Datum fetched, Datum failed_types, bool *retry_later)
{
	ApplyStep	step = {{Int64GetDatum(id), fetched, failed_types}, retry_later};
	ErrorData  *edata = hubsync_in_subtransaction(apply_step, &step);
	Datum		fvalues[2];

	if (edata == NULL)
		return;
	if (hubsync_transient_error(edata->sqlerrcode))
	{
		/* say, a lock a claim or an application's transaction holds (routine) */
		*retry_later = true;
		ereport(edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ? DEBUG1 : LOG,
				(errmsg("hubsync inbox event " INT64_FORMAT " must wait: %s", id, edata->message),
				 errdetail("It stays pending and is applied in a later round.")));
	}
	else
	{
		fvalues[0] = Int64GetDatum(id);
		fvalues[1] = CStringGetTextDatum(edata->message);
		SPI_execute_plan(failed_plan, fvalues, NULL, false, 0);
		hubsync_count_webhook(HUBSYNC_WH_EVENTS_FAILED, 1);
		ereport(LOG,
				(errmsg("hubsync inbox event " INT64_FORMAT " failed: %s", id, edata->message),
				 errhint("The event is kept in hubsync.inbox with state failed; the others go on.")));
	}
	FreeErrorData(edata);
}

/* apply_fast_step -- the set-based pass (run inside a subtransaction) */
static void
apply_fast_step(void *arg)
{
	bool		isnull;
	Datum		d;

	if (SPI_execute_plan(fast_plan, (Datum *) arg, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not apply inbox events set-based");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		hubsync_count_webhook(HUBSYNC_WH_EVENTS_APPLIED, (uint64) DatumGetInt32(d));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (!isnull)
		hubsync_count_webhook(HUBSYNC_WH_EVENTS_SKIPPED, (uint64) DatumGetInt32(d));
}

/*
 * apply_fast -- apply the plain property changes among ids set-based, in
 * one internal subtransaction.  If that fails, nothing of it stays and
 * every event goes through the per-event path, which isolates the poison.
 */
static void
apply_fast(Datum ids)
{
	ErrorData  *edata = hubsync_in_subtransaction(apply_fast_step, &ids);

	if (edata == NULL)
		return;
	ereport(LOG,
			(errmsg("hubsync could not apply a batch of inbox events at once: %s", edata->message),
			 errhint("The events are applied one by one instead; a faulty one is marked failed.")));
	FreeErrorData(edata);
}

/*
 * still_pending -- which of ids are still pending after the set-based
 * pass, in occurredAt order, copied into the current context.
 */
static int
still_pending(Datum ids, int64 **out)
{
	MemoryContext cxt = CurrentMemoryContext;
	uint64		i;
	int			n;

	if (SPI_execute_plan(pending_plan, &ids, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the pending inbox events");
	n = (int) SPI_processed;
	*out = MemoryContextAlloc(cxt, sizeof(int64) * Max(n, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		(*out)[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
												SPI_tuptable->tupdesc, 1, &isnull));
	}
	return n;
}

/*
 * hubsync_apply_inbox -- one round of at most limit pending events.
 * Returns the number of events taken; *retry_later is set when some wait
 * for a HubSpot read that failed.
 */
int
hubsync_apply_inbox(int limit, bool *retry_later)
{
	int64	   *ids = NULL;
	List	   *plans;
	char	   *fetched_json;
	int			n,
				i;
	ListCell   *lc;
	Datum	   *failed_elems;
	int			nfailed = 0;

	*retry_later = false;
	n = read_round(limit, &ids, &plans);
	if (n == 0)
		return 0;
	fetched_json = fetch_records(plans);
	/* types whose read failed, and "type:id" of single records not read */
	foreach(lc, plans)
		nfailed += 1 + list_length(((FetchPlan *) lfirst(lc))->failed_ids);
	failed_elems = palloc(sizeof(Datum) * (nfailed + 1));
	nfailed = 0;
	foreach(lc, plans)
	{
		FetchPlan  *p = lfirst(lc);
		ListCell   *idc;

		if (p->failed)
			failed_elems[nfailed++] = CStringGetTextDatum(p->object_type);
		foreach(idc, p->failed_ids)
			failed_elems[nfailed++] =
				CStringGetTextDatum(psprintf("%s:%s", p->object_type, (char *) lfirst(idc)));
	}

	if (!hubsync_worker_begin_xact("applying HubSpot changes"))
	{
		hubsync_worker_end_xact();
		return 0;
	}
	SPI_connect();
	prepare_plans();
	/*
	 * Commit without waiting for the WAL flush, as PostgreSQL's own logical
	 * replication apply workers do: the events themselves were stored with
	 * a synchronous commit before HubSpot got its answer, and a round lost
	 * in a crash is lost whole (mirror, change feed and inbox state are in
	 * this one transaction), so its events are still pending afterwards and
	 * are applied again.
	 */
	if (SPI_execute("SET LOCAL synchronous_commit = off", false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not set synchronous_commit for applying webhook events");
	PG_TRY();
	{
		Datum		map_arg[1];
		Datum		fetched;
		Datum		failed_types;
		bool		isnull;
		int64	   *rest;
		int			nrest;

		map_arg[0] = CStringGetTextDatum(fetched_json);
		if (SPI_execute_plan(map_plan, map_arg, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the fetched records");
		fetched = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull),
									false, -1);
		failed_types = PointerGetDatum(construct_array(failed_elems, nfailed, TEXTOID, -1,
													   false, TYPALIGN_INT));
		hubsync_remote_apply_begin();
		apply_fast(ids_array(ids, n));
		nrest = still_pending(ids_array(ids, n), &rest);
		for (i = 0; i < nrest; i++)
		{
			apply_one(rest[i], fetched, failed_types, retry_later);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_FINALLY();
	{
		hubsync_remote_apply_end();
	}
	PG_END_TRY();
	SPI_finish();
	hubsync_worker_end_xact();
	return n;
}
