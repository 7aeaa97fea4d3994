/*-------------------------------------------------------------------------
 *
 * hubspot_read.c
 *	  Reading records from HubSpot for the poller, backfill and
 *	  reconciliation (poll.c, backfill.c, reconcile.c): one synchronous
 *	  call within the shared quota with retries, and the request shapes
 *	  of search and list paging.
 *
 * Search requests take the search class of the quota (5 per second);
 * list and association reads take the bulk class, which leaves a reserve
 * of the 10-second window to real-time pushes.  A 429 blocks everybody
 * (quota.c) and the call is tried again; so are 5xx answers and transport
 * errors, a few times.
 *
 * IDENTIFICATION
 *	  src/hubspot_read.c
 *
 *-------------------------------------------------------------------------
 */
#include "hubsync.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "mb/pg_wchar.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "capture.h"
#include "hubspot_api.h"
#include "hubspot_read.h"
#include "json_util.h"
#include "worker.h"

#define READ_ATTEMPTS 5

/*
 * hubsync_read_wait -- sleep ms: a worker through its own wait (woken by
 * new work), a user session on its latch, both interruptible.
 */
void
hubsync_read_wait(long ms)
{
	if (ms <= 0)
		return;
	if (IsBackgroundWorker)
		(void) hubsync_worker_wait(ms);
	else
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * hubsync_read_call -- one request to completion within the quota class
 * cls; 429, 5xx and transport errors are tried again.  Returns the last
 * attempt (the caller releases it).
 */
HubsyncHttpRequest *
hubsync_read_call(const char *method, char *url, char *body,
				  HubsyncQuotaClass cls, const char *token)
{
	HubsyncHttpRequest *req = NULL;
	int			attempt;

	for (attempt = 1; attempt <= READ_ATTEMPTS; attempt++)
	{
		long		wait;

		while ((wait = hubsync_quota_acquire(cls)) > 0)
			hubsync_read_wait(Min(wait, 1000));
		if (req)
			hubsync_http_release(req);
		req = palloc0(sizeof(HubsyncHttpRequest));
		req->method = method;
		req->url = url;
		req->body = body;
		req->bearer = token;
		hubsync_http_perform(req);
		hubsync_observe_response(req);
		if (req->status == 429)
		{
			if (cls == HUBSYNC_QUOTA_SEARCH)
				hubsync_quota_throttled("SECONDLY", cls);
			continue;			/* the quota now blocks for the policy's period */
		}
		if (req->status != 0 && req->status < 500)
			break;
		if (attempt < READ_ATTEMPTS)
			hubsync_read_wait(500L * attempt);
	}
	return req;
}

/*
 * hubsync_read_page -- parse a list or search answer: results count,
 * next cursor, search total.  False (with page->error) when the call
 * failed.
 */
bool
hubsync_read_page(HubsyncHttpRequest *req, HubsyncPage *page)
{
	JsonbContainer *paging;

	memset(page, 0, sizeof(*page));
	page->status = req->status;
	page->total = -1;
	if (req->status != 200 || req->response == NULL)
	{
		char	   *msg = NULL;

		if (req->response)
		{
			Jsonb	   *b = hubsync_json_parse(req->response, req->response_len);

			msg = b ? hubsync_json_get_text(&b->root, "message") : NULL;
		}
		snprintf(page->error, sizeof(page->error), "HTTP %ld%s%s%s%s", req->status,
				 req->error[0] ? ", " : "", req->error,
				 msg ? ": " : "", msg ? msg : "");
		/* a long message is cut: never inside a character (it is stored) */
		page->error[pg_mbcliplen(page->error, strlen(page->error), sizeof(page->error) - 1)] = '\0';
		return false;
	}
	page->body = hubsync_json_parse(req->response, req->response_len);
	if (page->body == NULL)
	{
		snprintf(page->error, sizeof(page->error), "HubSpot's answer is not JSON");
		return false;
	}
	page->results = req->response;
	page->nresults = hubsync_json_array_size(hubsync_json_get_container(&page->body->root, "results"));
	paging = hubsync_json_get_container(&page->body->root, "paging");
	page->next_after = hubsync_json_get_text(hubsync_json_get_container(paging, "next"), "after");
	{
		char	   *total = hubsync_json_get_text(&page->body->root, "total");

		if (total)
			page->total = strtoll(total, NULL, 10);
	}
	return true;
}

/* append_props -- "properties":[...] */
static void
append_props(StringInfo b, char **props, int nprops)
{
	int			i;

	appendStringInfoString(b, "\"properties\":[");
	for (i = 0; i < nprops; i++)
	{
		if (i > 0)
			appendStringInfoChar(b, ',');
		hubsync_json_escape(b, props[i]);
	}
	appendStringInfoChar(b, ']');
}

/*
 * hubsync_search_body -- a search on the last-modified property, always
 * from offset 0 (the caller re-anchors instead of paging, so the 10,000
 * cap is never reached).  by_id: records whose last-modified equals eq_ms
 * with hs_object_id > after_id, by id; otherwise last-modified in
 * [lo, hi] (hi < 0: no upper bound), oldest first.
 */
char *
hubsync_search_body(const char *lastmod, int64 lo, int64 hi, int64 eq_ms,
					int64 after_id, bool by_id, int limit, char **props, int nprops)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfoString(&b, "{\"filterGroups\":[{\"filters\":[");
	if (by_id)
	{
		appendStringInfo(&b, "{\"propertyName\":\"%s\",\"operator\":\"EQ\",\"value\":\"" INT64_FORMAT "\"},"
						 "{\"propertyName\":\"hs_object_id\",\"operator\":\"GT\",\"value\":\"" INT64_FORMAT "\"}",
						 lastmod, eq_ms, after_id);
		appendStringInfoString(&b, "]}],\"sorts\":[{\"propertyName\":\"hs_object_id\",\"direction\":\"ASCENDING\"}],");
	}
	else
	{
		appendStringInfo(&b, "{\"propertyName\":\"%s\",\"operator\":\"GTE\",\"value\":\"" INT64_FORMAT "\"}",
						 lastmod, lo);
		if (hi >= 0)
			appendStringInfo(&b, ",{\"propertyName\":\"%s\",\"operator\":\"LTE\",\"value\":\"" INT64_FORMAT "\"}",
							 lastmod, hi);
		appendStringInfo(&b, "]}],\"sorts\":[{\"propertyName\":\"%s\",\"direction\":\"ASCENDING\"}],", lastmod);
	}
	append_props(&b, props, nprops);
	appendStringInfo(&b, ",\"limit\":%d,\"after\":\"0\"}", limit);
	return b.data;
}

/* hubsync_list_url -- one page of the list endpoint (100 records) */
char *
hubsync_list_url(const char *api_name, const char *after, bool archived,
				 char **props, int nprops)
{
	StringInfoData u;
	int			i;

	initStringInfo(&u);
	appendStringInfo(&u, "%s/crm/v3/objects/%s?limit=100&archived=%s", hubsync_api_root(),
					 api_name, archived ? "true" : "false");
	if (after && *after)
		appendStringInfo(&u, "&after=%s", after);	/* HubSpot's cursors are URL-safe */
	if (nprops > 0)
	{
		appendStringInfoString(&u, "&properties=");
		for (i = 0; i < nprops; i++)
			appendStringInfo(&u, "%s%s", i > 0 ? "," : "", props[i]);
	}
	return u.data;
}

/*
 * iso_ms -- an ISO 8601 time (or epoch ms) as Unix epoch milliseconds; -1
 * if none or not a time.  HubSpot's text must never raise an error here:
 * the poller runs this outside any error handler, so one record with a
 * malformed time would stop the pull worker at every round (found by the
 * probe fuzzer).  timestamptz_in only computes in palloc'd memory, so its
 * error is caught and dropped, as hubsync_json_parse does; infinities are
 * no time either.
 */
static int64
iso_ms(const char *s)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile TimestampTz ts = 0;
	volatile bool ok = true;

	if (s == NULL || *s == '\0')
		return -1;
	if (strspn(s, "0123456789") == strlen(s))
		return strlen(s) <= 18 ? strtoll(s, NULL, 10) : -1;
	PG_TRY();
	{
		ts = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(s),
													 ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		ok = false;
	}
	PG_END_TRY();
	if (!ok || TIMESTAMP_NOT_FINITE(ts))
		return -1;
	return (ts / 1000) + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;
}

/*
 * hubsync_record_ms -- a record's last-modified time in epoch ms: the
 * property searched on, else updatedAt.
 */
int64
hubsync_record_ms(JsonbContainer *rec, const char *lastmod)
{
	char	   *v = hubsync_json_get_text(hubsync_json_get_container(rec, "properties"), lastmod);
	int64		ms = iso_ms(v);

	if (ms < 0)
		ms = iso_ms(hubsync_json_get_text(rec, "updatedAt"));
	return ms;
}

/* hubsync_record_id -- a record's HubSpot id, 0 if none */
int64
hubsync_record_id(JsonbContainer *rec)
{
	char	   *v = hubsync_json_get_text(rec, "id");

	return v ? strtoll(v, NULL, 10) : 0;
}

/*
 * hubsync_read_answer_usable -- a batch read answer that can be handed to SQL: valid
 * UTF-8 JSON (not too deep), an object whose results are an array of
 * records, each an object with an id and (if any) a properties object.
 * Anything else is garbage, not "no such record": the events wait.
 * (The webhook worker's batch reads, apply.c.)
 */
bool
hubsync_read_answer_usable(Jsonb *body)
{
	JsonbContainer *results;
	int			n;

	if (body == NULL || JsonContainerIsScalar(&body->root) ||
		!JsonContainerIsObject(&body->root))
		return false;
	results = hubsync_json_get_container(&body->root, "results");
	if (results == NULL || !JsonContainerIsArray(results))
		return false;
	n = hubsync_json_array_size(results);
	for (int i = 0; i < n; i++)
	{
		JsonbContainer *rec = hubsync_json_array_container(results, i);
		JsonbValue *id = rec ? hubsync_json_get(rec, "id") : NULL;
		JsonbValue *props = rec ? hubsync_json_get(rec, "properties") : NULL;

		if (rec == NULL || !JsonContainerIsObject(rec) || id == NULL ||
			(id->type != jbvString && id->type != jbvNumeric))
			return false;
		if (props != NULL && props->type != jbvNull &&
			(props->type != jbvBinary || !JsonContainerIsObject(props->val.binary.data)))
			return false;
	}
	return true;
}

/*
 * hubsync_read_failed_ids -- the inputs a batch read answer reports as
 * failed for another reason than "no such record" (a 207 whose errors say
 * INTERNAL_ERROR, say), appended to *ids as text.  Those records exist but
 * were not read: they must not be taken as deleted, nor as having no
 * associations.  An error names its inputs in context.ids (object reads)
 * or context.fromObjectId (association reads).  Returns false when such an
 * error names no input: then no input of the answer can be told apart.
 */
bool
hubsync_read_failed_ids(Jsonb *answer, List **ids)
{
	JsonbValue *v = hubsync_json_get(&answer->root, "errors");
	JsonbContainer *errors = hubsync_json_get_container(&answer->root, "errors");
	int			n;

	if (v == NULL || v->type == jbvNull)
		return true;			/* no errors */
	if (errors == NULL || !JsonContainerIsArray(errors))
		return false;			/* errors, but not a list: cannot tell */
	n = hubsync_json_array_size(errors);
	for (int i = 0; i < n; i++)
	{
		JsonbContainer *err = hubsync_json_array_container(errors, i);
		JsonbContainer *context;
		JsonbContainer *named;
		char	   *category;
		int			k;

		if (err == NULL || !JsonContainerIsObject(err))
			return false;
		category = hubsync_json_get_text(err, "category");
		if (category != NULL && strcmp(category, "OBJECT_NOT_FOUND") == 0)
			continue;
		context = hubsync_json_get_container(err, "context");
		named = context ? hubsync_json_get_container(context, "ids") : NULL;
		if (named == NULL && context != NULL)
			named = hubsync_json_get_container(context, "fromObjectId");
		if (named == NULL || !JsonContainerIsArray(named) ||
			hubsync_json_array_size(named) == 0)
			return false;
		for (k = 0; k < hubsync_json_array_size(named); k++)
		{
			char	   *id = hubsync_json_array_text(named, k);

			if (id == NULL)
				return false;
			*ids = lappend(*ids, id);
		}
	}
	return true;
}

/*
 * hubsync_worker_sql -- in a worker: run one statement in a transaction
 * of its own with the capture trigger off (what it writes came from
 * HubSpot).  Returns NULL on success, else the error message (logged; the
 * transaction is rolled back and the worker goes on).  nulls as for
 * SPI_execute_with_args (NULL: none).  *result, when
 * asked for, gets column 1 of row 1 as text (NULL if none).
 */
char *
hubsync_worker_sql(const char *activity, const char *sql, int nargs, Oid *types,
				   Datum *values, const char *nulls, char **result)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *volatile err = NULL;

	if (result)
		*result = NULL;
	if (!hubsync_worker_begin_xact(activity))
	{
		hubsync_worker_end_xact();
		return pstrdup("the hubsync extension is not installed");
	}
	PG_TRY();
	{
		SPI_connect();
		hubsync_applying_remote = true;
		if (SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0) < 0)
			elog(ERROR, "could not run \"%s\"", sql);
		hubsync_applying_remote = false;
		if (result && SPI_tuptable != NULL && SPI_processed > 0)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			if (v)
				*result = MemoryContextStrdup(cxt, v);
		}
		SPI_finish();
		hubsync_worker_end_xact();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		hubsync_applying_remote = false;
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
		pgstat_report_activity(STATE_IDLE, NULL);
		err = pstrdup(edata->message);
		ereport(LOG,
				(errmsg("hubsync could not %s: %s", activity, edata->message),
				 errhint("The work is tried again later.")));
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return err;
}
