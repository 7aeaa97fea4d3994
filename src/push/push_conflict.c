/*-------------------------------------------------------------------------
 *
 * push_conflict.c
 *	  A create or upsert HubSpot refused with a unique-value conflict
 *	  (409 / category CONFLICT): find the record that already holds the
 *	  value, so the local record is linked to it instead of being
 *	  duplicated or dead-lettered.
 *
 * HubSpot's "Existing ID: N" message is confirmed only for contacts'
 * email (push_request.c links those at once).  For any other unique
 * property, or a message without the id, the record is found by searching
 * the unique property: the one the error names (context.propertyName, or
 * unique property "x" in the message), else every property HubSpot
 * defines with hasUniqueValue that the record carries a value for.  One
 * match: link.  None: the search index may lag the write that holds the
 * value, so try again later (or use the id the message gives).  Several:
 * the values belong to different records; that needs a person, so a dead
 * letter says which.
 *
 * Runs in the push worker outside any transaction: the requests are made
 * synchronously (other requests in flight go on meanwhile).
 *
 * IDENTIFICATION
 *	  src/push/push_conflict.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "nodes/pg_list.h"
#include "utils/jsonb.h"
#include "hubspot/api_paths.h"
#include "hubspot/hubspot_api.h"
#include "util/json_util.h"
#include "util/parse_util.h"
#include "push/push.h"

#define CONFLICT_MAX_PROPS 5	/* filterGroups per search */
#define CONFLICT_RETRY_MS 5000	/* the search index lags writes by seconds */

/* property_name_ok -- a HubSpot internal property name (no quoting needed) */
static bool
property_name_ok(const char *s)
{
	return s != NULL && *s != '\0' && strlen(s) < NAMEDATALEN &&
		strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(s);
}

/*
 * push_conflict_property -- the unique property a conflict error names:
 * context.propertyName[0], else the name quoted after `property "` in the
 * message; NULL when it names none.
 */
char *
push_conflict_property(JsonbContainer *err, const char *message)
{
	JsonbContainer *context = hubsync_json_get_container(err, "context");
	char	   *name = hubsync_json_array_text(hubsync_json_get_container(context, "propertyName"), 0);
	const char *p;

	if (property_name_ok(name))
		return name;
	p = message ? strstr(message, "property \"") : NULL;
	if (p != NULL)
	{
		const char *q;

		p += strlen("property \"");
		q = strchr(p, '"');
		if (q != NULL)
		{
			name = pnstrdup(p, q - p);
			if (property_name_ok(name))
				return name;
		}
	}
	return NULL;
}

/* unique_properties -- names HubSpot defines with hasUniqueValue on a type */
static List *
unique_properties(const char *api_name, bool *failed)
{
	HubsyncHttpRequest *req;
	Jsonb	   *body;
	JsonbContainer *results;
	List	   *names = NIL;

	req = hubsync_request_send(HUBSYNC_QUOTA_REALTIME, "GET",
							   hubsync_api_url(hubsync_path_properties(api_name, "")), NULL,
							   hubsync_access_token());
	body = req->status == 200 ? hubsync_json_parse(req->response, req->response_len) : NULL;
	results = body ? hubsync_json_get_container(&body->root, "results") : NULL;
	*failed = (results == NULL);
	for (int i = 0; i < hubsync_json_array_size(results); i++)
	{
		JsonbContainer *p = hubsync_json_array_container(results, i);
		JsonbValue *u = hubsync_json_get(p, "hasUniqueValue");
		char	   *name = hubsync_json_get_text(p, "name");

		if (u != NULL && u->type == jbvBool && u->val.boolean &&
			property_name_ok(name) && strcmp(name, "hubsync_id") != 0)
			names = lappend(names, name);
	}
	hubsync_http_release(req);
	return names;
}

/*
 * search_body -- a search for records holding any of the record's values
 * of names (one filter group each, OR-ed); NULL when it has none.
 */
static char *
search_body(JsonbContainer *props, List *names)
{
	StringInfoData b;
	ListCell   *lc;
	int			n = 0;

	initStringInfo(&b);
	appendStringInfoString(&b, "{\"filterGroups\":[");
	foreach(lc, names)
	{
		char	   *value = hubsync_json_get_text(props, (char *) lfirst(lc));

		if (value == NULL || *value == '\0' || n >= CONFLICT_MAX_PROPS)
			continue;
		appendStringInfoString(&b, n++ > 0 ? "," : "");
		appendStringInfoString(&b, "{\"filters\":[{\"propertyName\":");
		hubsync_json_escape(&b, (char *) lfirst(lc));
		appendStringInfoString(&b, ",\"operator\":\"EQ\",\"value\":");
		hubsync_json_escape(&b, value);
		appendStringInfoString(&b, "}]}");
	}
	appendStringInfoString(&b, "],\"sorts\":[{\"propertyName\":\"hs_object_id\",\"direction\":\"ASCENDING\"}],"
						   "\"properties\":[\"hs_object_id\"],\"limit\":10,\"after\":\"0\"}");
	return n > 0 ? b.data : NULL;
}

/*
 * push_mark_conflict -- note, while an answer is classified, that r hit a
 * unique-value conflict: push_resolve_conflicts searches for the existing
 * record afterwards, so that classifying an answer never waits on the
 * network.  property is what the error names (or NULL), existing the id
 * its message gives (or NULL).
 */
void
push_mark_conflict(PushRecord *r, const char *property, const char *existing)
{
	r->outcome.conflict = true;
	r->outcome.conflict_property = property ? pstrdup(property) : NULL;
	r->outcome.conflict_existing = existing ? pstrdup(existing) : NULL;
}

/*
 * resolve_conflict -- set r's outcome for a unique-value conflict: LINK to
 * the one HubSpot record holding its unique values, RETRY when none is
 * found yet (or the search failed), DEAD when several are.
 */
static void
resolve_conflict(PushBatch *b, PushRecord *r, const char *property,
				 const char *existing)
{
	Jsonb	   *pj = r->props ? hubsync_json_parse(r->props, strlen(r->props)) : NULL;
	JsonbContainer *props = pj ? &pj->root : NULL;
	List	   *names = NIL;
	char	   *body = NULL;
	bool		failed = false;
	HubsyncHttpRequest *req;
	Jsonb	   *answer;
	JsonbContainer *results;
	int			n;
	PushOutcome *o = &r->outcome;

	if (property != NULL)
		names = list_make1(pstrdup(property));
	else if (strcmp(b->object_type, "contacts") == 0)
		names = list_make1(pstrdup("email"));
	if (props != NULL && names != NIL)
		body = search_body(props, names);
	if (body == NULL && props != NULL)
	{
		names = unique_properties(b->api_name, &failed);
		body = search_body(props, names);
	}
	if (body == NULL)
	{
		if (failed)
		{
			o->kind = OUTCOME_RETRY;
			o->delay_ms = CONFLICT_RETRY_MS;
			o->message = psprintf("%s (the unique properties could not be read from HubSpot yet)",
								  o->message ? o->message : "unique-value conflict");
		}
		else if (existing != NULL)
		{
			o->kind = OUTCOME_LINK;
			o->hs_object_id = pstrdup(existing);
		}
		else
		{
			o->kind = OUTCOME_DEAD;
			o->message = psprintf("%s (no unique property of the record to find the existing one by)",
								  o->message ? o->message : "unique-value conflict");
		}
		return;
	}
	req = hubsync_request_send(HUBSYNC_QUOTA_SEARCH, "POST",
							   hubsync_api_url(hubsync_path_objects(b->api_name, "/search")),
							   body, hubsync_access_token());
	answer = req->status == 200 ? hubsync_json_parse(req->response, req->response_len) : NULL;
	results = answer ? hubsync_json_get_container(&answer->root, "results") : NULL;
	n = hubsync_json_array_size(results);
	if (results != NULL && n == 1 &&
		hubsync_valid_object_id(hubsync_json_get_text(hubsync_json_array_container(results, 0), "id")))
	{
		o->kind = OUTCOME_LINK;
		o->hs_object_id = hubsync_json_get_text(hubsync_json_array_container(results, 0), "id");
	}
	else if (results != NULL && n > 1)
	{
		StringInfoData ids;

		initStringInfo(&ids);
		for (int i = 0; i < n; i++)
			appendStringInfo(&ids, "%s%s", i > 0 ? ", " : "",
							 hubsync_json_get_text(hubsync_json_array_container(results, i), "id"));
		o->kind = OUTCOME_DEAD;
		o->message = psprintf("%s (its unique values are held by several HubSpot records: %s)",
							  o->message ? o->message : "unique-value conflict", ids.data);
	}
	else if (results != NULL && n == 0 && existing != NULL)
	{
		o->kind = OUTCOME_LINK;	/* not in the search index yet: HubSpot's word */
		o->hs_object_id = pstrdup(existing);
	}
	else
	{
		/* not searchable yet (index lag) or the search failed: later */
		o->kind = OUTCOME_RETRY;
		o->delay_ms = CONFLICT_RETRY_MS;
		o->message = psprintf("%s (the existing record was not found by search yet: HTTP %ld)",
							  o->message ? o->message : "unique-value conflict", req->status);
	}
	hubsync_http_release(req);
}

/*
 * push_resolve_conflicts -- resolve the conflicts push_classify marked in
 * a batch's outcomes (one search each; the push worker, after classifying)
 */
void
push_resolve_conflicts(PushBatch *b)
{
	for (int i = 0; i < b->nrecords; i++)
	{
		PushOutcome *o = &b->records[i]->outcome;

		if (o->conflict)
			resolve_conflict(b, b->records[i], o->conflict_property,
							 o->conflict_existing);
	}
}
