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
 *	  src/hubspot/hubspot_read.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include <curl/curl.h>

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "mb/pg_wchar.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "core/remote_apply.h"
#include "hubspot/api_paths.h"
#include "hubspot/hubspot_api.h"
#include "hubspot/hubspot_read.h"
#include "util/json_util.h"
#include "util/parse_util.h"
#include "bgw/worker.h"

#define READ_ATTEMPTS 5

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
		if (req)
			hubsync_http_release(req);
		req = hubsync_request_send(cls, method, url, body, token);
		if (req->status == 429)
		{
			if (cls == HUBSYNC_QUOTA_SEARCH)
				hubsync_quota_throttled("SECONDLY", cls);
			continue;			/* the quota now blocks for the policy's period */
		}
		if (req->status != 0 && req->status < 500)
			break;
		if (attempt < READ_ATTEMPTS)
			hubsync_api_wait(500L * attempt);
	}
	return req;
}

/*
 * time_ok -- a record's time field: absent or null, or a time
 * hubsync_iso_ms takes.  (SQL casts it to timestamptz later.)
 */
static bool
time_ok(JsonbContainer *rec, const char *key, bool required)
{
	JsonbValue *v = hubsync_json_get(rec, key);
	int64_t		ms;

	if (v == NULL || v->type == jbvNull)
		return !required;
	return v->type == jbvString && hubsync_iso_ms(hubsync_json_value_text(v), &ms);
}

/*
 * record_problem -- what makes one record of a list or search answer
 * unusable, or NULL: every field later cast in C or SQL is checked here,
 * so that a garbage value is one recorded error for the request instead
 * of an ERROR in the middle of storing the page (or of the worker).
 */
static const char *
record_problem(JsonbContainer *rec)
{
	JsonbValue *v;

	if (rec == NULL || !JsonContainerIsObject(rec))
		return "a result that is not an object";
	v = hubsync_json_get(rec, "id");
	if (v == NULL || (v->type != jbvString && v->type != jbvNumeric) ||
		!hubsync_valid_object_id(hubsync_json_value_text(v)))
		return "a record id that is not 1 to 18 digits";
	v = hubsync_json_get(rec, "properties");
	if (v != NULL && v->type != jbvNull &&
		(v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data)))
		return "properties that are not an object";
	if (!time_ok(rec, "updatedAt", true))
		return "a missing or unusable updatedAt";
	if (!time_ok(rec, "createdAt", false))
		return "an unusable createdAt";
	v = hubsync_json_get(rec, "archived");
	if (v != NULL && v->type != jbvNull && v->type != jbvBool)
		return "an archived flag that is not a boolean";
	return NULL;
}

/*
 * hubsync_read_page -- parse and check a list or search answer: results
 * count, next cursor, search total.  False (with page->error) when the
 * call failed or the answer is unusable: not a JSON object, results not a
 * list of well-formed records, a cursor that is empty, too long or has
 * control characters, a total that is not a count.
 */
bool
hubsync_read_page(HubsyncHttpRequest *req, HubsyncPage *page)
{
	JsonbContainer *results;
	JsonbValue *v;
	int			i;

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
	if (!JsonContainerIsObject(&page->body->root))
	{
		snprintf(page->error, sizeof(page->error), "HubSpot's answer is not a JSON object");
		return false;
	}
	results = hubsync_json_get_container(&page->body->root, "results");
	if (results == NULL || !JsonContainerIsArray(results))
	{
		snprintf(page->error, sizeof(page->error), "HubSpot's answer has no list of results");
		return false;
	}
	page->nresults = hubsync_json_array_size(results);
	for (i = 0; i < page->nresults; i++)
	{
		const char *problem = record_problem(hubsync_json_array_container(results, i));

		if (problem)
		{
			snprintf(page->error, sizeof(page->error),
					 "HubSpot's answer has %s (result %d)", problem, i + 1);
			return false;
		}
	}
	page->results = req->response;

	/* paging.next.after: absent on the last page, else a usable cursor */
	v = hubsync_json_get(&page->body->root, "paging");
	if (v != NULL && v->type != jbvNull)
	{
		JsonbContainer *paging = hubsync_json_get_container(&page->body->root, "paging");
		JsonbValue *next = paging ? hubsync_json_get(paging, "next") : NULL;
		JsonbValue *after = NULL;

		if (paging == NULL || !JsonContainerIsObject(paging))
		{
			snprintf(page->error, sizeof(page->error), "HubSpot's answer has paging that is not an object");
			return false;
		}
		if (next != NULL && next->type != jbvNull)
		{
			after = hubsync_json_get(hubsync_json_get_container(paging, "next"), "after");
			if (after == NULL || (after->type != jbvString && after->type != jbvNumeric) ||
				!hubsync_cursor_ok(hubsync_json_value_text(after)))
			{
				snprintf(page->error, sizeof(page->error),
						 "HubSpot's answer has a paging cursor that is missing, empty, longer than %d bytes or not text",
						 HUBSYNC_MAX_CURSOR_LEN);
				return false;
			}
			page->next_after = hubsync_json_value_text(after);
		}
	}

	/* total (search): a count */
	v = hubsync_json_get(&page->body->root, "total");
	if (v != NULL && v->type != jbvNull)
	{
		char	   *total = v->type == jbvNumeric ? hubsync_json_value_text(v) : NULL;

		if (total == NULL || !hubsync_valid_object_id(total))
		{
			snprintf(page->error, sizeof(page->error), "HubSpot's answer has a total that is not a count");
			return false;
		}
		page->total = strtoll(total, NULL, 10);
	}
	return true;
}

/* id_ok -- v is a record id, as text or a number */
static bool
id_ok(JsonbValue *v)
{
	return v != NULL && (v->type == jbvString || v->type == jbvNumeric) &&
		hubsync_valid_object_id(hubsync_json_value_text(v));
}

/* array_or_absent -- key is absent, null or a list; the list in *out */
static bool
array_or_absent(JsonbContainer *c, const char *key, JsonbContainer **out)
{
	JsonbValue *v = hubsync_json_get(c, key);

	*out = NULL;
	if (v == NULL || v->type == jbvNull)
		return true;
	if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		return false;
	*out = v->val.binary.data;
	return true;
}

/*
 * hubsync_assoc_answer_problem -- what makes a v4 association batch read
 * answer unusable, or NULL.  The sweep takes an input with no result as
 * having no associations (and removes its local links), so an answer
 * without a well-formed results list must never get that far.
 */
const char *
hubsync_assoc_answer_problem(Jsonb *answer)
{
	JsonbContainer *results;

	if (answer == NULL || !JsonContainerIsObject(&answer->root))
		return "HubSpot's answer is not a JSON object";
	results = hubsync_json_get_container(&answer->root, "results");
	if (results == NULL || !JsonContainerIsArray(results))
		return "HubSpot's answer has no list of results";
	for (int i = 0; i < hubsync_json_array_size(results); i++)
	{
		JsonbContainer *r = hubsync_json_array_container(results, i);
		JsonbContainer *to;

		if (r == NULL || !JsonContainerIsObject(r) ||
			!id_ok(hubsync_json_get(hubsync_json_get_container(r, "from"), "id")))
			return "HubSpot's answer has a result without a usable from.id";
		if (!array_or_absent(r, "to", &to))
			return "HubSpot's answer has a result whose \"to\" is not a list";
		for (int j = 0; j < hubsync_json_array_size(to); j++)
		{
			JsonbContainer *t = hubsync_json_array_container(to, j);
			JsonbContainer *types;

			if (t == NULL || !JsonContainerIsObject(t) || !id_ok(hubsync_json_get(t, "toObjectId")))
				return "HubSpot's answer has an association without a usable toObjectId";
			if (!array_or_absent(t, "associationTypes", &types))
				return "HubSpot's answer has associationTypes that are not a list";
			for (int k = 0; k < hubsync_json_array_size(types); k++)
			{
				JsonbContainer *ty = hubsync_json_array_container(types, k);
				JsonbValue *id = hubsync_json_get(ty, "typeId");
				char	   *txt = id && id->type == jbvNumeric ? hubsync_json_value_text(id) : NULL;
				JsonbValue *cat = hubsync_json_get(ty, "category");

				if (txt == NULL || strlen(txt) > 9 || strspn(txt, "0123456789") != strlen(txt))
					return "HubSpot's answer has an association type id that is not a small integer";
				if (cat != NULL && cat->type != jbvString && cat->type != jbvNull)
					return "HubSpot's answer has an association category that is not text";
			}
		}
	}
	return NULL;
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
	appendStringInfo(&u, "%s?limit=100&archived=%s",
					 hubsync_api_url(hubsync_path_objects(api_name, "")),
					 archived ? "true" : "false");
	if (after && *after)
	{
		/* opaque: encoded, so that no '&', '#' or '/' in it changes the URL */
		char	   *enc = curl_easy_escape(NULL, after, 0);

		if (enc == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
		appendStringInfo(&u, "&after=%s", enc);
		curl_free(enc);
	}
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
 * if none or unusable (never an ERROR: the text came from the network)
 */
static int64
iso_ms(const char *s)
{
	int64_t		ms;

	return hubsync_iso_ms(s, &ms) ? (int64) ms : -1;
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

/* hubsync_record_id -- a record's HubSpot id, 0 if none or not an id */
int64
hubsync_record_id(JsonbContainer *rec)
{
	char	   *v = hubsync_json_get_text(rec, "id");

	return hubsync_valid_object_id(v) ? strtoll(v, NULL, 10) : 0;
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
		hubsync_remote_apply_begin();
		if (SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0) < 0)
			elog(ERROR, "could not run \"%s\"", sql);
		hubsync_remote_apply_end();
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

		hubsync_remote_apply_end();
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
