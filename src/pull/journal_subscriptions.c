/*-------------------------------------------------------------------------
 *
 * journal_subscriptions.c
 *	  The Webhooks Journal subscriptions hubsync keeps in HubSpot: one
 *	  OBJECT (creations, property changes, deletions, merges, restores)
 *	  and one ASSOCIATION subscription per mirrored object type, as rows of
 *	  hubsync.journal_subscriptions.  The pull worker creates the pending
 *	  ones and deletes those being removed; the owner sees and changes them
 *	  in SQL (hubsync.sync_journal_subscriptions(), or an UPDATE of a row's
 *	  actions and state).
 *
 * IDENTIFICATION
 *	  src/pull/journal_subscriptions.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "hubspot/api_paths.h"
#include "hubspot/hubspot_api.h"
#include "hubspot/hubspot_read.h"
#include "util/json_util.h"
#include "bgw/worker.h"
#include "pull/journal.h"
#include "pull/settings.h"

#define SUBSCRIPTIONS_PER_TICK 20
#define PLAN_EVERY_MS 60000		/* new mirrored types get subscriptions */

static int64 next_plan_ms = 0;

/* One row to act on */
typedef struct JournalSub
{
	char	   *object_type;
	char	   *subscription_type;
	char	   *state;
	char	   *hubspot_id;		/* NULL when none */
	char	   *body;			/* the create request's JSON body */
} JournalSub;

/*
 * load_work -- the rows to create (pending) or delete (removing), with
 * the create request's body built in SQL: the type's objectTypeId, the
 * account (hubsync.portal_id), the actions, and all objects (no
 * objectIds, properties or associated types listed).
 */
static List *
load_work(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *work = NIL;

	if (!hubsync_worker_begin_xact("reading the Webhooks Journal subscriptions"))
	{
		hubsync_worker_end_xact();
		return NIL;
	}
	SPI_connect();
	if (SPI_execute(psprintf(
							 "SELECT j.object_type, j.subscription_type, j.state, j.hubspot_id, "
							 "  (jsonb_build_object('subscriptionType', j.subscription_type, "
							 "     'objectTypeId', t.object_type_id, 'portalId', %d, "
							 "     'actions', to_jsonb(j.actions), 'objectIds', '[]'::jsonb) "
							 "   || CASE WHEN j.subscription_type = 'OBJECT' "
							 "           THEN '{\"properties\": []}'::jsonb "
							 "           ELSE '{\"associatedObjectTypeIds\": []}'::jsonb END)::text "
							 "FROM hubsync.journal_subscriptions j "
							 "LEFT JOIN hubsync.object_types t ON t.object_type = j.object_type "
							 "WHERE j.state IN ('pending', 'removing') "
							 "ORDER BY j.object_type, j.subscription_type LIMIT %d",
							 hubsync_portal_id, SUBSCRIPTIONS_PER_TICK), true, 0) == SPI_OK_SELECT)
	{
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			MemoryContext old = MemoryContextSwitchTo(cxt);
			JournalSub *s = palloc0(sizeof(JournalSub));

			s->object_type = SPI_getvalue(tup, desc, 1);
			s->subscription_type = SPI_getvalue(tup, desc, 2);
			s->state = SPI_getvalue(tup, desc, 3);
			s->hubspot_id = SPI_getvalue(tup, desc, 4);
			s->body = SPI_getvalue(tup, desc, 5);
			work = lappend(work, s);
			MemoryContextSwitchTo(old);
		}
	}
	SPI_finish();
	hubsync_worker_end_xact();
	return work;
}

/* done -- record what happened in HubSpot for one row */
static void
done(JournalSub *s, const char *hubspot_id, const char *error)
{
	Oid			types[4] = {TEXTOID, TEXTOID, INT8OID, TEXTOID};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};

	values[0] = CStringGetTextDatum(s->object_type);
	values[1] = CStringGetTextDatum(s->subscription_type);
	if (hubspot_id)
		values[2] = DirectFunctionCall1(int8in, CStringGetDatum(hubspot_id));
	else
		nulls[2] = 'n';
	if (error)
		values[3] = CStringGetTextDatum(error);
	else
		nulls[3] = 'n';
	(void) hubsync_worker_sql("record a Webhooks Journal subscription",
							  "SELECT hubsync._journal_subscription_done($1, $2, $3, $4)",
							  4, types, values, nulls, NULL);
}

/* transient -- a status worth trying again on the next tick */
static bool
transient(long status)
{
	return status == 0 || status == 401 || status == 423 || status == 429 || status >= 500;
}

/* answer_message -- HubSpot's message in an error answer, or the status */
static char *
answer_message(HubsyncHttpRequest *req)
{
	Jsonb	   *body = hubsync_json_parse(req->response, req->response_len);
	char	   *msg = body && JB_ROOT_IS_OBJECT(body) ?
		hubsync_json_get_text(&body->root, "message") : NULL;

	if (msg != NULL && strlen(msg) > 300)
		msg[300] = '\0';
	return msg ? psprintf("HTTP %ld: %s", req->status, msg) : psprintf("HTTP %ld", req->status);
}

/*
 * sync_one -- delete the row's HubSpot subscription if it has one, then
 * create it anew unless it is being removed.  A transient failure leaves
 * the row as it is, for the next tick.
 */
static void
sync_one(JournalSub *s)
{
	HubsyncHttpRequest *req;
	char	   *id = NULL;

	if (s->hubspot_id != NULL)
	{
		req = hubsync_journal_call("DELETE",
								   hubsync_api_url(hubsync_path_journal_subscriptions(psprintf("/%s", s->hubspot_id))),
								   NULL);
		if (transient(req->status))
		{
			hubsync_http_release(req);
			return;
		}
		if (req->status >= 300 && req->status != 404)
		{
			done(s, s->hubspot_id, answer_message(req));
			hubsync_http_release(req);
			return;
		}
		hubsync_http_release(req);
	}
	if (strcmp(s->state, "removing") == 0)
	{
		done(s, NULL, NULL);
		return;
	}
	if (hubsync_portal_id <= 0)
	{
		done(s, NULL, "hubsync.portal_id is not set: a journal subscription names the HubSpot account");
		return;
	}
	req = hubsync_journal_call("POST", hubsync_api_url(hubsync_path_journal_subscriptions("")),
							   s->body);
	if (transient(req->status))
	{
		hubsync_http_release(req);
		return;
	}
	if (req->status == 200 || req->status == 201)
	{
		Jsonb	   *body = hubsync_json_parse(req->response, req->response_len);

		id = body && JB_ROOT_IS_OBJECT(body) ? hubsync_json_get_text(&body->root, "id") : NULL;
		if (id == NULL || strspn(id, "0123456789") != strlen(id) || strlen(id) == 0 || strlen(id) > 18)
			done(s, NULL, "HubSpot's answer has no subscription id");
		else
			done(s, id, NULL);
	}
	else
		done(s, NULL, answer_message(req));
	hubsync_http_release(req);
}

/*
 * hubsync_journal_sync_subscriptions -- add the subscriptions new mirrored
 * types need (every minute), then create and delete what is pending.
 */
void
hubsync_journal_sync_subscriptions(void)
{
	int64		now = hubsync_now_ms();
	List	   *work;
	ListCell   *lc;

	if (now >= next_plan_ms)
	{
		next_plan_ms = now + PLAN_EVERY_MS;
		(void) hubsync_worker_sql("plan the Webhooks Journal subscriptions",
								  "SELECT hubsync._journal_plan_subscriptions()",
								  0, NULL, NULL, NULL, NULL);
	}
	work = load_work();
	foreach(lc, work)
		sync_one((JournalSub *) lfirst(lc));
}
