/*-------------------------------------------------------------------------
 *
 * push_outcome.c
 *	  Writing push outcomes back to the outbox.  A batch's plain successes
 *	  are booked together, in one statement (hubsync._push_done_batch);
 *	  every other outcome, and any success that statement leaves or fails
 *	  on, record by record, each in its own subtransaction so that one bad
 *	  record never stops the rest.
 *
 * IDENTIFICATION
 *	  src/push/push_outcome.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "core/remote_apply.h"
#include "hubspot/api_paths.h"
#include "util/json_util.h"
#include "push/push.h"
#include "bgw/worker.h"

#define MAX_KEPT_RESPONSE 4000
#define MAX_TRANSIENT_ATTEMPTS 5

static SPIPlanPtr done_plan = NULL;
static SPIPlanPtr retry_plan = NULL;
static SPIPlanPtr dead_plan = NULL;
static SPIPlanPtr link_plan = NULL;
static SPIPlanPtr gone_plan = NULL;
static SPIPlanPtr batch_plan = NULL;

/* run_plan -- prepare once, keep, and execute a parameterised statement */
static void
run_plan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types,
		 Datum *values, const char *nulls)
{
	if (SPI_execute_plan(hubsync_keep_plan(plan, sql, nargs, types),
						 values, nulls, false, 0) < 0)
		elog(ERROR, "could not execute \"%s\"", sql);
}

/* text_or_null -- a text Datum and its null flag */
static Datum
text_or_null(const char *s, char *null)
{
	*null = s ? ' ' : 'n';
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/* json_or_null -- a jsonb Datum from text that is known to be valid */
static Datum
json_or_null(const char *s, char *null)
{
	*null = s ? ' ' : 'n';
	return s ? DirectFunctionCall1(jsonb_in, CStringGetDatum(s)) : (Datum) 0;
}

/* outbox_ids -- the record's outbox ids, as bigint[] text (cast in SQL) */
static Datum
outbox_ids(PushRecord *r)
{
	return CStringGetTextDatum(r->outbox_ids);
}

/* response_json -- HubSpot's answer, kept (shortened) with a dead letter */
static char *
response_json(PushBatch *b)
{
	HubsyncHttpRequest *req = &b->req;
	StringInfoData buf;

	if (req->response != NULL && hubsync_json_parse(req->response, req->response_len) != NULL &&
		req->response_len <= MAX_KEPT_RESPONSE)
		return pstrdup(req->response);
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"body\":");
	if (req->response != NULL && pg_verifymbstr(req->response, (int) req->response_len, true))
		hubsync_json_escape(&buf, pnstrdup(req->response, Min(req->response_len, MAX_KEPT_RESPONSE)));
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* request_json -- what was sent for one record, kept with a dead letter */
static char *
request_json(PushBatch *b, PushRecord *r)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"endpoint\":");
	hubsync_json_escape(&buf, hubsync_path_objects(b->api_name,
												   psprintf("/batch/%s", push_kind_paths[b->kind])));
	appendStringInfoString(&buf, ",\"id\":");
	hubsync_json_escape(&buf, b->kind == PUSH_UPSERT ? r->hubsync_id :
						(r->hs_object_id ? r->hs_object_id : ""));
	appendStringInfo(&buf, ",\"properties\":%s}", r->props ? r->props : "{}");
	return buf.data;
}

/* record_dead -- move a record's changes to hubsync.dead_letters */
static void
record_dead(PushBatch *b, PushRecord *r, int status, const char *category,
			const char *message)
{
	Datum		v[6];
	char		n[7] = "      ";

	v[0] = outbox_ids(r);
	v[1] = Int32GetDatum(status);
	v[2] = text_or_null(category, &n[2]);
	v[3] = text_or_null(message, &n[3]);
	v[4] = json_or_null(request_json(b, r), &n[4]);
	v[5] = json_or_null(response_json(b), &n[5]);
	run_plan(&dead_plan, "SELECT hubsync._push_dead($1::bigint[], $2, $3, $4, $5, $6)", 6,
			 (Oid[]) {TEXTOID, INT4OID, TEXTOID, TEXTOID, JSONBOID, JSONBOID},
			 v, n);
}

/* record_one -- write one record's outcome */
static void
record_one(PushBatch *b, PushRecord *r)
{
	PushOutcome *o = &r->outcome;
	Datum		v[7];
	char		n[8] = "       ";

	switch (o->kind)
	{
		case OUTCOME_DONE:
			v[0] = DirectFunctionCall1(uuid_in, CStringGetDatum(r->hubsync_id));
			v[1] = CStringGetTextDatum(r->object_type);
			v[2] = CStringGetTextDatum(push_kind_paths[b->kind]);
			v[3] = o->hs_object_id ? DirectFunctionCall1(int8in, CStringGetDatum(o->hs_object_id)) :
				r->hs_object_id ? DirectFunctionCall1(int8in, CStringGetDatum(r->hs_object_id)) : (Datum) 0;
			n[3] = (o->hs_object_id || r->hs_object_id) ? ' ' : 'n';
			v[4] = json_or_null(r->props, &n[4]);
			v[5] = outbox_ids(r);
			v[6] = text_or_null(o->updated_at, &n[6]);
			run_plan(&done_plan, "SELECT hubsync._push_done($1, $2, $3, $4, $5, $6::bigint[], $7::timestamptz)", 7,
					 (Oid[]) {UUIDOID, TEXTOID, TEXTOID, INT8OID, JSONBOID, TEXTOID, TEXTOID},
					 v, n);
			break;
		case OUTCOME_RETRY:
		case OUTCOME_ALONE:
			hubsync_quota_count_retry();
			v[0] = outbox_ids(r);
			v[1] = Int32GetDatum(o->status);
			v[2] = text_or_null(o->message ? o->message : o->category, &n[2]);
			v[3] = Int64GetDatum(o->delay_ms);
			v[4] = BoolGetDatum(o->kind == OUTCOME_RETRY && o->count_attempt);
			v[5] = BoolGetDatum(o->kind == OUTCOME_ALONE);
			run_plan(&retry_plan, "SELECT hubsync._push_retry($1::bigint[], $2, $3, $4, $5, $6)", 6,
					 (Oid[]) {TEXTOID, INT4OID, TEXTOID, INT8OID, BOOLOID, BOOLOID},
					 v, n);
			break;
		case OUTCOME_DEAD:
			record_dead(b, r, o->status, o->category, o->message);
			break;
		case OUTCOME_GONE:
			v[0] = outbox_ids(r);
			run_plan(&gone_plan, "SELECT hubsync._push_gone($1::bigint[])", 1,
					 (Oid[]) {TEXTOID}, v, n);
			break;
		case OUTCOME_LINK:
			v[0] = DirectFunctionCall1(uuid_in, CStringGetDatum(r->hubsync_id));
			v[1] = CStringGetTextDatum(r->object_type);
			v[2] = DirectFunctionCall1(int8in, CStringGetDatum(o->hs_object_id));
			v[3] = outbox_ids(r);
			run_plan(&link_plan, "SELECT hubsync._push_link($1, $2, $3, $4::bigint[])", 4,
					 (Oid[]) {UUIDOID, TEXTOID, INT8OID, TEXTOID}, v, n);
			break;
	}
}

/* the plain successes of a batch, booked together */
typedef struct DoneSet
{
	PushBatch  *b;
	bool	   *booked;			/* per record: its outcome is written */
	int			ndone;
} DoneSet;

/* text_array -- a text[] Datum of n C strings (NULL entries allowed) */
static Datum
text_array(char **items, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(n, 1));
	int			dims[1] = {n};
	int			lbs[1] = {1};

	for (int i = 0; i < n; i++)
	{
		nulls[i] = (items[i] == NULL);
		elems[i] = nulls[i] ? (Datum) 0 : CStringGetTextDatum(items[i]);
	}
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs,
											  TEXTOID, -1, false, TYPALIGN_INT));
}

/* is_plain_done -- an outcome the set-based booking may take */
static bool
is_plain_done(PushRecord *r)
{
	return r->outcome.kind == OUTCOME_DONE;
}

/*
 * record_done_set -- book every plain success of the batch in one call of
 * hubsync._push_done_batch; the records it returns (a merge, an inbound
 * change to adopt, an overtaken property) stay for record_one.
 */
static void
record_done_set(void *arg)
{
	DoneSet    *set = (DoneSet *) arg;
	PushBatch  *b = set->b;
	char	  **ids = palloc(sizeof(char *) * set->ndone);
	char	  **hs = palloc(sizeof(char *) * set->ndone);
	char	  **sent = palloc(sizeof(char *) * set->ndone);
	char	  **upd = palloc(sizeof(char *) * set->ndone);
	StringInfoData outbox;
	Datum		v[7];
	int			n = 0;
	bool		isnull;
	Datum		odd;

	initStringInfo(&outbox);
	appendStringInfoChar(&outbox, '{');
	for (int i = 0; i < b->nrecords; i++)
	{
		PushRecord *r = b->records[i];
		const char *inner;

		if (!is_plain_done(r))
			continue;
		ids[n] = r->hubsync_id;
		hs[n] = r->outcome.hs_object_id ? r->outcome.hs_object_id : r->hs_object_id;
		sent[n] = r->props;
		upd[n] = r->outcome.updated_at;
		/* "{1,2}" -> "1,2", appended to every record's ids */
		inner = r->outbox_ids + 1;
		if (outbox.len > 1)
			appendStringInfoChar(&outbox, ',');
		appendBinaryStringInfo(&outbox, inner, (int) strlen(inner) - 1);
		n++;
	}
	appendStringInfoChar(&outbox, '}');
	v[0] = CStringGetTextDatum(b->object_type);
	v[1] = CStringGetTextDatum(push_kind_paths[b->kind]);
	v[2] = text_array(ids, n);
	v[3] = text_array(hs, n);
	v[4] = text_array(sent, n);
	v[5] = text_array(upd, n);
	v[6] = CStringGetTextDatum(outbox.data);
	if (SPI_execute_plan(hubsync_keep_plan(&batch_plan,
										   "SELECT hubsync._push_done_batch($1, $2, $3::uuid[], $4::bigint[], "
										   "$5::jsonb[], $6::timestamptz[], $7::bigint[])::text[]",
										   7, (Oid[]) {TEXTOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID,
										   TEXTARRAYOID, TEXTARRAYOID, TEXTOID}),
						 v, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "hubsync._push_done_batch() failed");
	odd = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	/* every plain success is booked, but those returned */
	for (int i = 0; i < b->nrecords; i++)
		set->booked[i] = is_plain_done(b->records[i]);
	if (!isnull)
	{
		ArrayType  *arr = DatumGetArrayTypeP(odd);
		Datum	   *elems;
		bool	   *nulls;
		int			nodd;

		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nodd);
		for (int k = 0; k < nodd; k++)
		{
			char	   *id = TextDatumGetCString(elems[k]);

			for (int i = 0; i < b->nrecords; i++)
				if (strcmp(b->records[i]->hubsync_id, id) == 0)
					set->booked[i] = false;
		}
	}
}

/* a record step with its batch, as hubsync_in_subtransaction passes it */
typedef struct RecordStep
{
	void		(*fn) (PushBatch *, PushRecord *);
	PushBatch  *b;
	PushRecord *r;
} RecordStep;

static void
run_record_step(void *arg)
{
	RecordStep *step = (RecordStep *) arg;

	step->fn(step->b, step->r);
}

/*
 * in_subtransaction -- run fn(b, r) in an internal subtransaction; on
 * error roll it back and return the error (else NULL).
 */
static ErrorData *
in_subtransaction(void (*fn) (PushBatch *, PushRecord *), PushBatch *b, PushRecord *r)
{
	RecordStep	step = {fn, b, r};

	return hubsync_in_subtransaction(run_record_step, &step);
}

/* record_local_failure -- dead-letter a record whose outcome failed to save */
static void
record_local_failure(PushBatch *b, PushRecord *r)
{
	record_dead(b, r, (int) b->req.status, "LOCAL_ERROR", r->outcome.message);
}

/*
 * push_record_outcomes -- write every record's outcome in one short
 * transaction.  A record whose bookkeeping fails (say its HubSpot id is
 * already linked to another row) is dead-lettered with the reason instead;
 * a transient failure (deadlock with an application's transaction) is
 * tried again at once, and after a few attempts left to its lease; if even
 * the dead letter fails, its lease runs out and it is tried again.
 */
void
push_record_outcomes(PushBatch *b)
{
	int			i;
	bool	   *booked;
	DoneSet		set = {0};

	if (!hubsync_worker_begin_xact("recording push results"))
	{
		/* the extension and its outbox are gone: nothing to record */
		hubsync_worker_end_xact();
		return;
	}
	SPI_connect();
	/* bookkeeping, not the application: nothing here is captured */
	hubsync_remote_apply_begin();
	booked = palloc0(sizeof(bool) * b->nrecords);
	for (i = 0; i < b->nrecords; i++)
		set.ndone += is_plain_done(b->records[i]) ? 1 : 0;
	if (set.ndone > 1)
	{
		ErrorData  *failure;

		/*
		 * The plain successes together; if that fails (say one HubSpot id
		 * is already linked to another row), the whole statement is rolled
		 * back and each record is written alone below, where the bad one
		 * becomes a dead letter.
		 */
		set.b = b;
		set.booked = booked;
		failure = hubsync_in_subtransaction(record_done_set, &set);
		if (failure != NULL)
			memset(booked, 0, sizeof(bool) * b->nrecords);
	}
	for (i = 0; i < b->nrecords; i++)
	{
		PushRecord *r = b->records[i];
		ErrorData  *failure;
		int			attempt = 0;

		if (booked[i])
			continue;

		while ((failure = in_subtransaction(record_one, b, r)) != NULL &&
			   hubsync_transient_error(failure->sqlerrcode) &&
			   ++attempt < MAX_TRANSIENT_ATTEMPTS)
			CHECK_FOR_INTERRUPTS();
		if (failure == NULL)
			continue;
		if (hubsync_transient_error(failure->sqlerrcode))
		{
			/* never dead-letter for a local hiccup: the lease runs out */
			ereport(LOG,
					(errmsg("could not record the push of %s %s yet: %s",
							r->object_type, r->hubsync_id, failure->message),
					 errdetail("It will be tried again when its lease expires.")));
			continue;
		}
		ereport(WARNING,
				(errmsg("could not record the push of %s %s: %s",
						r->object_type, r->hubsync_id, failure->message),
				 errhint("The change is moved to hubsync.dead_letters with category LOCAL_ERROR; fix the cause, then run hubsync.retry_dead_letters(category => 'LOCAL_ERROR').")));
		r->outcome.message = failure->message;
		(void) in_subtransaction(record_local_failure, b, r);
	}
	hubsync_remote_apply_end();
	SPI_finish();
	hubsync_worker_end_xact();
}

/*
 * hubsync_release_leases -- return in-flight changes to pending: all of
 * them when the worker starts (they belong to its predecessor), else
 * those whose lease ran out.
 */
void
hubsync_release_leases(bool all)
{
	if (!hubsync_worker_begin_xact(NULL))
	{
		hubsync_worker_end_xact();
		return;
	}
	SPI_connect();
	if (SPI_execute(all ? "SELECT hubsync._release_expired_leases(true)" :
					"SELECT hubsync._release_expired_leases(false)", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not release outbox leases");
	SPI_finish();
	hubsync_worker_end_xact();
}
