/*-------------------------------------------------------------------------
 *
 * metadata_sync.c
 *	  Copies HubSpot's owners and pipelines (with their stages) into
 *	  hubspot.owners, hubspot.pipelines and hubspot.pipeline_stages: when
 *	  the pull worker starts, every hubsync.metadata_refresh_interval, and
 *	  when hubsync.refresh_metadata() asks.
 *
 * Each request is made outside any transaction; what it returns is
 * stored by one SQL call in a short transaction of its own
 * (hubsync._metadata_store_owners / _store_pipelines, sql/functions/bi.sql).
 * Owners are listed twice, active then archived (the owners API's
 * archived parameter), following paging.next.after; pipelines are one
 * answer per object type, for deals, tickets and every tracked type (a
 * type without pipelines answers with an error status, which is skipped).
 *
 * IDENTIFICATION
 *	  src/pull/metadata_sync.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "hubspot/api_paths.h"
#include "hubspot/hubspot_api.h"
#include "hubspot/hubspot_read.h"
#include "pull/bi_sync.h"
#include "pull/settings.h"
#include "util/json_util.h"
#include "util/parse_util.h"
#include "bgw/worker.h"

/* how often the worker asks whether a copy is due */
#define METADATA_CHECK_MS 2000
/* owners per page (the owners API's largest limit is 500) */
#define OWNERS_PAGE 100
/* pages of owners at most, a guard against a cursor that never ends */
#define OWNERS_MAX_PAGES 1000

static int64 next_check_ms = 0;
static bool done_since_start = false;

/*
 * metadata_answer -- the results of an answer of the owners or pipelines
 * API as JSON text (NULL with *error set when the call failed or the
 * answer is unusable), and its next paging cursor in *after (NULL: last
 * page).
 */
static char *
metadata_answer(HubsyncHttpRequest *req, char **after, char **error)
{
	Jsonb	   *body;
	JsonbContainer *results;
	JsonbContainer *paging;
	JsonbContainer *next;

	*after = NULL;
	*error = NULL;
	if (req->status != 200 || req->response == NULL)
	{
		*error = psprintf("HTTP %ld%s%s", req->status, req->error[0] ? ", " : "", req->error);
		return NULL;
	}
	body = hubsync_json_parse(req->response, req->response_len);
	if (body == NULL || !JsonContainerIsObject(&body->root))
	{
		*error = pstrdup("HubSpot's answer is not a JSON object");
		return NULL;
	}
	results = hubsync_json_get_container(&body->root, "results");
	if (results == NULL || !JsonContainerIsArray(results))
	{
		*error = pstrdup("HubSpot's answer has no list of results");
		return NULL;
	}
	paging = hubsync_json_get_container(&body->root, "paging");
	next = paging && JsonContainerIsObject(paging) ? hubsync_json_get_container(paging, "next") : NULL;
	if (next != NULL && JsonContainerIsObject(next))
	{
		char	   *a = hubsync_json_get_text(next, "after");

		if (a == NULL || !hubsync_cursor_ok(a))
		{
			*error = pstrdup("HubSpot's answer has an unusable paging cursor");
			return NULL;
		}
		*after = a;
	}
	return JsonbToCString(NULL, results, -1);
}

/* store -- one SQL call with a text and a jsonb argument; its result */
static char *
store(const char *activity, const char *sql, const char *arg1, const char *json, char **error)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	char		nulls[2] = "  ";
	char	   *result = NULL;

	values[0] = arg1 ? CStringGetTextDatum(arg1) : (Datum) 0;
	if (!arg1)
		nulls[0] = 'n';
	values[1] = CStringGetTextDatum(json);
	*error = hubsync_worker_sql(activity, sql, 2, types, values, nulls, &result);
	return result;
}

/* copy_owners -- every owner, active and archived; false on failure */
static bool
copy_owners(const char *token, int *owners, char **error)
{
	int			pass;

	for (pass = 0; pass < 2; pass++)
	{
		char	   *after = NULL;
		int			page;

		for (page = 0; page < OWNERS_MAX_PAGES; page++)
		{
			char	   *suffix;
			HubsyncHttpRequest *req;
			char	   *results;
			char	   *next;
			char	   *n;

			suffix = psprintf("?limit=%d&archived=%s%s%s", OWNERS_PAGE, pass ? "true" : "false",
							  after ? "&after=" : "", after ? after : "");
			req = hubsync_read_call("GET", hubsync_api_url(hubsync_path_owners(suffix)), NULL,
									HUBSYNC_QUOTA_BULK, token);
			results = metadata_answer(req, &next, error);
			hubsync_http_release(req);
			if (results == NULL)
			{
				*error = psprintf("could not list HubSpot owners: %s", *error);
				return false;
			}
			n = store("store HubSpot owners", "SELECT hubsync._metadata_store_owners($2::jsonb)",
					  NULL, results, error);
			if (*error)
				return false;
			*owners += n ? atoi(n) : 0;
			if (next == NULL)
				break;
			after = next;
			hubsync_worker_handle_interrupts();
		}
	}
	return true;
}

/* copy_pipelines -- the pipelines of every type that has them */
static bool
copy_pipelines(const char *token, int *pipelines, int *stages, char **error)
{
	char	   *list = NULL;
	char	   *item;
	char	   *save;

	*error = hubsync_worker_sql("read the object types with pipelines",
								"SELECT string_agg(object_type || ' ' || api_name, ',') "
								"FROM hubsync._metadata_types()", 0, NULL, NULL, NULL, &list);
	if (*error || list == NULL)
		return *error == NULL;
	for (item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save))
	{
		char	   *space = strchr(item, ' ');
		char	   *object_type = item;
		char	   *api_name;
		HubsyncHttpRequest *req;
		char	   *results;
		char	   *next;
		char	   *n;

		if (space == NULL)
			continue;
		*space = '\0';
		api_name = space + 1;
		req = hubsync_read_call("GET", hubsync_api_url(hubsync_path_pipelines(api_name, "")), NULL,
								HUBSYNC_QUOTA_BULK, token);
		if (req->status >= 400 && req->status < 500 && req->status != 401 && req->status != 429)
		{
			/* this type has no pipelines (or the app may not read them) */
			hubsync_http_release(req);
			continue;
		}
		results = metadata_answer(req, &next, error);
		hubsync_http_release(req);
		if (results == NULL)
		{
			*error = psprintf("could not read the HubSpot pipelines of %s: %s", object_type, *error);
			return false;
		}
		n = store("store HubSpot pipelines",
				  "SELECT hubsync._metadata_store_pipelines($1, $2::jsonb)", object_type, results, error);
		if (*error)
			return false;
		*stages += n ? atoi(n) : 0;
		{
			Jsonb	   *arr = hubsync_json_parse(results, strlen(results));

			*pipelines += arr ? hubsync_json_array_size(&arr->root) : 0;
		}
		hubsync_worker_handle_interrupts();
	}
	return true;
}

/*
 * hubsync_metadata_tick -- copy owners and pipelines when due: first
 * time after the worker starts, when asked, and every
 * hubsync.metadata_refresh_interval.  Never returns "more to do": one
 * copy is a handful of requests.
 */
bool
hubsync_metadata_tick(void)
{
	int64		now = hubsync_now_ms();
	Oid			types[2] = {INT4OID, BOOLOID};
	Datum		values[2];
	char	   *started = NULL;
	char	   *error = NULL;
	int			owners = 0,
				pipelines = 0,
				stages = 0;
	const char *token;

	if (now < next_check_ms)
		return false;
	next_check_ms = now + METADATA_CHECK_MS;
	if (pg_atomic_read_u32(&hubsync_shared->paused) != 0)
		return false;
	hubsync_refresh_credentials();
	if (hubsync_auth_blocked() || (token = hubsync_access_token()) == NULL)
		return false;
	values[0] = Int32GetDatum(hubsync_metadata_refresh_interval);
	values[1] = BoolGetDatum(!done_since_start);
	if (hubsync_worker_sql("check whether owners and pipelines are due",
						   "SELECT pg_catalog.now()::text WHERE hubsync._metadata_due($1, $2)",
						   2, types, values, NULL, &started) != NULL || started == NULL)
		return false;
	done_since_start = true;

	if (copy_owners(token, &owners, &error))
		(void) copy_pipelines(token, &pipelines, &stages, &error);
	if (error)
		ereport(LOG,
				(errmsg("hubsync could not copy owners and pipelines from HubSpot: %s", error),
				 errhint("The copy is tried again at hubsync.metadata_refresh_interval, or now with hubsync.refresh_metadata().")));
	{
		Oid			ftypes[5] = {TEXTOID, INT4OID, INT4OID, INT4OID, TEXTOID};
		Datum		fvalues[5];
		char		fnulls[5] = "     ";

		fvalues[0] = CStringGetTextDatum(started);
		fvalues[1] = Int32GetDatum(owners);
		fvalues[2] = Int32GetDatum(pipelines);
		fvalues[3] = Int32GetDatum(stages);
		fvalues[4] = error ? CStringGetTextDatum(error) : (Datum) 0;
		if (!error)
			fnulls[4] = 'n';
		(void) hubsync_worker_sql("record the owners and pipelines copy",
								  "SELECT hubsync._metadata_finish($1::timestamptz, $2, $3, $4, $5)",
								  5, ftypes, fvalues, fnulls, NULL);
	}
	return false;
}
