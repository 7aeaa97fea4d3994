/*-------------------------------------------------------------------------
 *
 * stage_history.c
 *	  The property history pass that follows a backfill of deals or
 *	  subscriptions: HubSpot's batch read with propertiesWithHistory gives
 *	  every stage a deal has been in, and every value a subscription's
 *	  revenue properties have had, with their times.  What it reads
 *	  replaces the rows the backfill's own inserts left in
 *	  hubspot.deal_stage_history and hubspot.subscription_history (those
 *	  only know the state at the backfill).
 *
 * The pass walks the mirrored records by HubSpot id, 50 a request (the
 * batch read's limit with propertiesWithHistory); where it stands is in
 * hubsync.history_backfills, so a restart resumes.  Each request is made
 * outside any transaction, each answer stored in a short one.
 *
 * IDENTIFICATION
 *	  src/pull/stage_history.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "hubspot/api_paths.h"
#include "hubspot/hubspot_api.h"
#include "hubspot/hubspot_read.h"
#include "pull/bi_sync.h"
#include "util/json_util.h"
#include "bgw/worker.h"

#define HISTORY_BATCH 50		/* HubSpot's limit with propertiesWithHistory */
#define HISTORY_SLICE 10		/* batches per tick before the inbox again */
#define HISTORY_CHECK_MS 5000

typedef struct HistoryKind
{
	const char *object_type;
	const char *api_name;
	const char *properties;		/* JSON array of property names */
} HistoryKind;

static const HistoryKind kinds[] = {
	{"deals", "deals", "[\"dealstage\", \"pipeline\"]"},
	{"subscriptions", "subscriptions",
	"[\"hs_status\", \"hs_recurring_revenue\", \"hs_recurring_billing_frequency\", "
	"\"hs_currency_code\", \"hs_start_date\", \"hs_end_date\"]"},
};

static int64 next_check_ms = 0;

/*
 * save -- store one answer (or the failure) and how far the pass got.
 */
static void
save(const char *object_type, const char *last, const char *results, const char *error)
{
	Oid			types[4] = {TEXTOID, INT8OID, TEXTOID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = "    ";

	values[0] = CStringGetTextDatum(object_type);
	values[1] = DirectFunctionCall1(int8in, CStringGetDatum(last ? last : "0"));
	values[2] = results ? CStringGetTextDatum(results) : (Datum) 0;
	if (!results)
		nulls[2] = 'n';
	values[3] = error ? CStringGetTextDatum(error) : (Datum) 0;
	if (!error)
		nulls[3] = 'n';
	(void) hubsync_worker_sql("store HubSpot's property history",
							  "SELECT hubsync._history_save($1, $2, $3::jsonb -> 'results', $4)",
							  4, types, values, nulls, NULL);
}

/*
 * one_batch -- read and store the next batch of kind k; true when there
 * may be more.
 */
static bool
one_batch(const HistoryKind *k, const char *token)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	char	   *ids = NULL;
	char	   *last = NULL;
	char	   *id;
	char	   *sp;
	StringInfoData body;
	bool		first = true;
	HubsyncHttpRequest *req;
	HubsyncPage pg;

	values[0] = CStringGetTextDatum(k->object_type);
	values[1] = Int32GetDatum(HISTORY_BATCH);
	if (hubsync_worker_sql("find the records whose property history is read next",
						   "SELECT array_to_string(hubsync._history_next($1, $2), ',')",
						   2, types, values, NULL, &ids) != NULL || ids == NULL || *ids == '\0')
		return false;

	initStringInfo(&body);
	appendStringInfo(&body, "{\"properties\": %s, \"propertiesWithHistory\": %s, \"inputs\": [",
					 k->properties, k->properties);
	for (id = strtok_r(ids, ",", &sp); id; id = strtok_r(NULL, ",", &sp))
	{
		appendStringInfo(&body, "%s{\"id\": \"%s\"}", first ? "" : ", ", id);
		first = false;
		last = id;
	}
	appendStringInfoString(&body, "]}");

	req = hubsync_read_call("POST", hubsync_api_url(hubsync_path_objects(k->api_name, "/batch/read")),
							body.data, HUBSYNC_QUOTA_BULK, token);
	if ((req->status == 200 || req->status == 207) && req->response != NULL)
	{
		req->status = 200;		/* a partial answer has the records it could read */
		if (hubsync_read_page(req, &pg))
		{
			save(k->object_type, last, pg.results, NULL);
			hubsync_http_release(req);
			return true;
		}
	}
	else
		(void) hubsync_read_page(req, &pg);
	ereport(LOG,
			(errmsg("hubsync could not read the property history of %s: %s", k->object_type, pg.error),
			 errhint("Run hubsync.backfill('%s') again to read it.", k->object_type)));
	save(k->object_type, last, NULL, pg.error);
	hubsync_http_release(req);
	return false;
}

/*
 * hubsync_history_tick -- a slice of the property history pass of each
 * type whose backfill finished since its last pass.
 */
bool
hubsync_history_tick(void)
{
	int64		now = hubsync_now_ms();
	const char *token;
	bool		more = false;
	int			i;

	if (now < next_check_ms)
		return false;
	next_check_ms = now + HISTORY_CHECK_MS;
	if (pg_atomic_read_u32(&hubsync_shared->paused) != 0 || hubsync_backfill_running())
		return false;
	if (hubsync_auth_blocked() || (token = hubsync_access_token()) == NULL)
		return false;
	for (i = 0; i < lengthof(kinds); i++)
	{
		int			n;

		for (n = 0; n < HISTORY_SLICE; n++)
		{
			if (!one_batch(&kinds[i], token))
				break;
			hubsync_worker_handle_interrupts();
		}
		if (n == HISTORY_SLICE)
			more = true;
	}
	if (more)
		next_check_ms = 0;
	return more;
}
