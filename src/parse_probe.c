/*-------------------------------------------------------------------------
 *
 * parse_probe.c
 *	  hubsync._parse_probe(kind, body, status): one untrusted body through
 *	  exactly the functions the receiver and the workers run on it, with a
 *	  short summary back.  For the fuzzer of test/fuzz/ (probe_fuzz.c) and
 *	  the replay of its corpus by test/t/096_fuzz_regress.pl; owner-only.
 *
 * Kinds (status is the HTTP status the answer came with):
 *	 webhook		hubsync_inbox_check (signed here with the probe's secret,
 *					v3, or v1/v2 when status is 1 or 2), then
 *					hubsync_inbox_store twice: every column and the dedupe
 *					key, and the second store must find only duplicates
 *	 push_upsert, push_update, push_archive (three records), push_single
 *					push_classify of a batch upsert/update/archive answer
 *	 read_page		hubsync_read_page, the last and first record's time and
 *					id (poller, backfill), then the poller's ingest SQL
 *	 batch_read		the webhook worker's batch read checks
 *	 assoc			the association sweep's checks and ingest SQL
 *	 oauth			hubsync_oauth_read_answer
 *	 enrich, enrich_batch
 *					hubsync_enrich_record_result on every in-flight job
 *
 * Errors the workers catch and log (the SQL ingest steps) are caught here
 * too and named in the summary.  Anything else that goes wrong is an
 * ERROR: a broken invariant (XX000) or an error a worker would not catch,
 * both findings for the fuzzer.  Writes happen in the caller's
 * transaction: callers roll back.
 *
 * IDENTIFICATION
 *	  src/parse_probe.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "hubspot/hubspot_read.h"
#include "webhook/inbox.h"
#include "util/json_util.h"
#include "hubspot/oauth.h"
#include "util/parse_util.h"
#include "push/push.h"
#include "util/signature.h"
#include "bgw/worker.h"

PG_FUNCTION_INFO_V1(hubsync_parse_probe);

#define PROBE_SECRET "hubsync-fuzz-secret"
#define PROBE_URI "https://hooks.example.com/hubspot/webhooks"

/* probe_check -- an invariant of the shipped code broke: a finding */
#define probe_check(cond) \
	do { \
		if (!(cond)) \
			ereport(ERROR, \
					(errcode(ERRCODE_INTERNAL_ERROR), \
					 errmsg("parse probe invariant failed: %s", #cond), \
					 errhint("Save the input as a regression input under test/fuzz/crashes/probe/ and fix the parser."))); \
	} while (0)

/* make_req -- an HTTP result as the client leaves it: NUL-terminated */
static HubsyncHttpRequest *
make_req(long status, const char *body, size_t len)
{
	HubsyncHttpRequest *req = palloc0(sizeof(HubsyncHttpRequest));

	req->status = status;
	req->response = palloc(len + 1);
	memcpy(req->response, body, len);
	req->response[len] = '\0';
	req->response_len = len;
	req->retry_after_s = -1;
	req->rl_max = req->rl_remaining = req->rl_interval_ms = req->rl_daily_remaining = -1;
	return req;
}

/* probe_webhook -- a delivery's checks, then its storage, twice */
static char *
probe_webhook(const char *body, size_t len, int version)
{
	HubsyncDelivery d;
	char		ts[32];
	char		sig[HUBSYNC_SIG_HEX_LEN + 1];
	Jsonb	   *events;
	HubsyncIngestResult r;
	int			n,
				stored,
				dups,
				again,
				dups2;

	snprintf(ts, sizeof(ts), INT64_FORMAT, hubsync_now_ms());
	if (version != 1 && version != 2)
		version = 3;
	probe_check(hubsync_signature_compute(version, PROBE_SECRET, "POST", PROBE_URI,
										  body, len, ts, sig, sizeof(sig)));
	memset(&d, 0, sizeof(d));
	d.method = "POST";
	d.uri = PROBE_URI;
	d.body = body;
	d.body_len = len;
	if (version == 3)
	{
		d.signature_v3 = sig;
		d.timestamp = ts;
	}
	else
	{
		d.signature = sig;
		d.signature_version = version == 2 ? "v2" : "v1";
	}
	r = hubsync_inbox_check(&d, PROBE_SECRET, &events);
	if (r != HUBSYNC_INGEST_OK)
	{
		probe_check(events == NULL);
		return psprintf("webhook: %d %s", hubsync_ingest_http_status(r), hubsync_ingest_message(r));
	}
	probe_check(events != NULL && JB_ROOT_IS_ARRAY(events));
	n = hubsync_json_array_size(&events->root);
	stored = hubsync_inbox_store(events, &dups);
	probe_check(stored + dups == n && (n == 0 || stored >= 1));
	/* the same delivery again: the dedupe key finds every event */
	again = hubsync_inbox_store(events, &dups2);
	probe_check(again == 0 && dups2 == n);
	return psprintf("webhook: 200 events=%d stored=%d%s", n, stored,
					dups > 0 ? ", with duplicates" : "");
}

/* probe_push -- push_classify of an answer to a batch of 1 or 3 records */
static char *
probe_push(const char *kind, long status, const char *body, size_t len)
{
	static const char *const letters = "DRXLAG";	/* PushOutcomeKind */
	PushBatch  *b = palloc0(sizeof(PushBatch));
	StringInfoData out;
	int			i;

	b->cxt = CurrentMemoryContext;
	b->kind = strcmp(kind, "push_update") == 0 ? PUSH_UPDATE :
		strcmp(kind, "push_archive") == 0 ? PUSH_ARCHIVE : PUSH_UPSERT;
	b->object_type = "contacts";
	b->api_name = "contacts";
	b->nrecords = strcmp(kind, "push_single") == 0 ? 1 : 3;
	for (i = 0; i < b->nrecords; i++)
	{
		PushRecord *r = palloc0(sizeof(PushRecord));

		r->cxt = CurrentMemoryContext;
		r->hubsync_id = psprintf("00000000-0000-0000-0000-00000000000%d", i + 1);
		r->object_type = "contacts";
		r->api_name = "contacts";
		r->kind = b->kind;
		r->hs_object_id = (b->kind == PUSH_UPSERT && i == 0) ? NULL : psprintf("%d", 101 + i);
		r->props = b->kind == PUSH_ARCHIVE ? NULL : "{\"email\": \"a@example.com\"}";
		r->outbox_ids = "{1}";
		r->attempts = 1 + i;
		r->first_created = GetCurrentTimestamp();
		b->records[i] = r;
	}
	b->req = *make_req(status, body, len);
	push_classify(b);

	initStringInfo(&out);
	appendStringInfo(&out, "%s:", kind);
	for (i = 0; i < b->nrecords; i++)
	{
		PushOutcome *o = &b->records[i]->outcome;

		probe_check(o->kind >= OUTCOME_DONE && o->kind <= OUTCOME_GONE);
		/* an id hubsync stores must be one: 1-18 digits */
		probe_check(o->hs_object_id == NULL || hubsync_valid_object_id(o->hs_object_id));
		probe_check(o->kind != OUTCOME_LINK || o->hs_object_id != NULL);
		probe_check(o->delay_ms >= 0);
		appendStringInfo(&out, " %c%s", letters[o->kind], o->hs_object_id ? o->hs_object_id : "");
	}
	return out.data;
}

/* sql_step_arg -- what run_sql_step runs */
typedef struct SqlStep
{
	const char *sql;
	int			nargs;
	Oid		   *types;
	Datum	   *values;
	char	   *result;
} SqlStep;

/* sql_step -- run one statement (in a subtransaction, see run_sql_step) */
static void
sql_step(void *arg)
{
	SqlStep    *s = arg;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(s->sql, s->nargs, s->types, s->values, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not run \"%s\"", s->sql);
	if (SPI_processed > 0)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		s->result = v ? MemoryContextStrdup(TopTransactionContext, v) : NULL;
	}
	SPI_finish();
}

/*
 * run_sql_step -- a worker's SQL step over the parsed answer: the workers
 * run it with hubsync_worker_sql, which logs an error and goes on, so an
 * error here is a result ("error 22P02"), not a finding.
 */
static char *
run_sql_step(const char *sql, int nargs, Oid *types, Datum *values)
{
	SqlStep		s = {sql, nargs, types, values, NULL};
	ErrorData  *e = hubsync_in_subtransaction(sql_step, &s);

	if (e != NULL)
		return psprintf("error %s", unpack_sql_state(e->sqlerrcode));
	return s.result ? s.result : "null";
}

/* probe_read_page -- a search or list page, as the poller and backfill read it */
static char *
probe_read_page(long status, const char *body, size_t len)
{
	HubsyncHttpRequest *req = make_req(status, body, len);
	HubsyncPage pg;
	int64		last_ms = -1,
				last_id = 0,
				first_id = 0;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];

	if (!hubsync_read_page(req, &pg))
	{
		/* the error is stored and logged: whole characters only */
		probe_check(pg.error[0] != '\0' &&
					pg_verifymbstr(pg.error, strlen(pg.error), true));
		return psprintf("read_page: failed (%s)", pg.error);
	}
	probe_check(pg.body != NULL && pg.nresults >= 0);
	if (pg.nresults > 0)
	{
		JsonbContainer *results = hubsync_json_get_container(&pg.body->root, "results");

		last_ms = hubsync_record_ms(hubsync_json_array_container(results, pg.nresults - 1),
									"lastmodifieddate");
		last_id = hubsync_record_id(hubsync_json_array_container(results, pg.nresults - 1));
		first_id = hubsync_record_id(hubsync_json_array_container(results, 0));
	}
	values[0] = CStringGetTextDatum("contacts");
	values[1] = CStringGetTextDatum(pg.results);
	return psprintf("read_page: n=%d next=%s total=" INT64_FORMAT " last_ms=" INT64_FORMAT
					" ids=" INT64_FORMAT ".." INT64_FORMAT " ingest=%s",
					pg.nresults, pg.next_after ? "yes" : "no", pg.total, last_ms,
					first_id, last_id, run_sql_step("SELECT " POLL_INGEST_SQL, 2, types, values));
}

/* probe_batch_read -- the webhook worker's checks of a batch read answer */
static char *
probe_batch_read(long status, const char *body, size_t len)
{
	bool		answered = (status == 200 || status == 207);
	Jsonb	   *answer = answered ? hubsync_json_parse(body, len) : NULL;
	List	   *failed = NIL;
	bool		named;

	if (answered && !hubsync_read_answer_usable(answer))
		return "batch_read: unusable";
	if (answer == NULL)
		return "batch_read: no answer";
	named = hubsync_read_failed_ids(answer, &failed);
	return psprintf("batch_read: usable, %s, %d not read", named ? "named" : "unnamed errors",
					list_length(failed));
}

/* probe_assoc -- the association sweep's checks and ingest of an answer */
static char *
probe_assoc(long status, const char *body, size_t len)
{
	Jsonb	   *answer = (status == 200 || status == 207) ? hubsync_json_parse(body, len) : NULL;
	List	   *not_read = NIL;
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTARRAYOID};
	Datum		values[5];

	if (answer == NULL)
		return "assoc: no answer";
	if (!hubsync_read_failed_ids(answer, &not_read))
		return "assoc: errors that name no record";
	values[0] = CStringGetTextDatum("contacts");
	values[1] = CStringGetTextDatum("companies");
	values[2] = CStringGetTextDatum("{\"inputs\":[{\"id\":\"101\"},{\"id\":\"102\"},{\"id\":\"103\"}]}");
	values[3] = JsonbPGetDatum(answer);
	values[4] = PointerGetDatum(strlist_to_textarray(not_read));
	return psprintf("assoc: %d not read, ingest=%s", list_length(not_read),
					run_sql_step(ASSOC_INGEST_SQL, 5, types, values));
}

/* probe_oauth -- the token endpoint's answer; never shows a token */
static char *
probe_oauth(long status, const char *body, size_t len)
{
	HubsyncOAuthAnswer a;

	hubsync_oauth_read_answer(status, body, len, &a);
	if (a.result == HUBSYNC_OAUTH_DONE)
	{
		probe_check(a.access != NULL && hubsync_token_ok(a.access, 4096));
		probe_check(a.expires_in > 0 && a.expires_in < 365.0 * 86400);
		probe_check(a.new_refresh == NULL || hubsync_token_ok(a.new_refresh, 4096));
		return psprintf("oauth: done, access %d chars, %s refresh token, expires in %.0f s",
						(int) strlen(a.access), a.new_refresh ? "new" : "no", a.expires_in);
	}
	probe_check(a.access == NULL || a.expires_in == 0);
	if (a.result == HUBSYNC_OAUTH_REFUSED)
	{
		/*
		 * stored and logged: "HTTP n", status words and the plain words of
		 * error_description after a colon, nothing else
		 */
		probe_check(a.error != NULL &&
					strspn(a.error, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_: ") ==
					strlen(a.error));
		return psprintf("oauth: refused (%s)", a.error);
	}
	probe_check(a.result == HUBSYNC_OAUTH_RETRY_LATER);
	return "oauth: retry later";
}

/* probe_enrich -- a provider's answer for every in-flight job */
static char *
probe_enrich(bool batch, long status, const char *body, size_t len)
{
	HubsyncHttpRequest *req = make_req(status, body, len);
	char	   *summary;
	Datum		ids;
	bool		isnull;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT array_agg(id ORDER BY id) FROM hubsync.enrichment_jobs "
					"WHERE state = 'in_flight'", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the in-flight enrichment jobs");
	ids = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
	{
		SPI_finish();
		return "enrich: no job in flight";
	}
	ids = datumCopy(ids, false, -1);
	/* "never an error: a bad answer must not stop the worker" */
	hubsync_enrich_record_result(ids, batch, req);
	if (SPI_execute("SELECT string_agg(state || coalesce(' ' || last_status, ''), ', ' ORDER BY id) "
					"FROM hubsync.enrichment_jobs", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the enrichment jobs");
	summary = psprintf("%s: %s", batch ? "enrich_batch" : "enrich",
					   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	summary = MemoryContextStrdup(TopTransactionContext, summary);
	SPI_finish();
	return summary;
}

/*
 * hubsync_parse_probe -- SQL hubsync._parse_probe(kind text, body bytea,
 * status integer DEFAULT 200): the body is bytes, as they come off the
 * network (not UTF-8, NULs and all).
 */
Datum
hubsync_parse_probe(PG_FUNCTION_ARGS)
{
	char	   *kind;
	bytea	   *raw;
	const char *body;
	size_t		len;
	long		status;
	char	   *out;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	raw = PG_GETARG_BYTEA_PP(1);
	body = VARDATA_ANY(raw);
	len = VARSIZE_ANY_EXHDR(raw);
	status = PG_ARGISNULL(2) ? 200 : PG_GETARG_INT32(2);

	if (strcmp(kind, "webhook") == 0)
		out = probe_webhook(body, len, (int) status);
	else if (strncmp(kind, "push_", 5) == 0 &&
			 (strcmp(kind, "push_upsert") == 0 || strcmp(kind, "push_update") == 0 ||
			  strcmp(kind, "push_archive") == 0 || strcmp(kind, "push_single") == 0))
		out = probe_push(kind, status, body, len);
	else if (strcmp(kind, "read_page") == 0)
		out = probe_read_page(status, body, len);
	else if (strcmp(kind, "batch_read") == 0)
		out = probe_batch_read(status, body, len);
	else if (strcmp(kind, "assoc") == 0)
		out = probe_assoc(status, body, len);
	else if (strcmp(kind, "oauth") == 0)
		out = probe_oauth(status, body, len);
	else if (strcmp(kind, "enrich") == 0 || strcmp(kind, "enrich_batch") == 0)
		out = probe_enrich(strcmp(kind, "enrich_batch") == 0, status, body, len);
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown parse probe kind \"%s\"", kind),
				 errhint("Kinds: webhook, push_upsert, push_update, push_archive, push_single, "
						 "read_page, batch_read, assoc, oauth, enrich, enrich_batch.")));
	PG_RETURN_TEXT_P(cstring_to_text(out));
}
