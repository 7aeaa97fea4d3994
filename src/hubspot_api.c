/*-------------------------------------------------------------------------
 *
 * hubspot_api.c
 *	  Worker-side state every HubSpot call needs: the API root URL, the
 *	  current access token (reloaded when hubsync.set_credentials() commits),
 *	  the authentication state after a 401, the shared quota's view of
 *	  responses, and the unique hubsync_id property that makes creates
 *	  idempotent.
 *
 * The token lives in this process's memory only; it is never logged, and
 * is wiped when replaced.
 *
 * IDENTIFICATION
 *	  src/hubspot_api.c
 *
 *-------------------------------------------------------------------------
 */
#include "hubsync.h"

#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "hubspot_api.h"
#include "json_util.h"
#include "quota.h"
#include "worker.h"

static char *access_token = NULL;
static uint64 loaded_version = PG_UINT64_MAX;
static List *id_property_ready = NIL;	/* api names known to have it */
static char api_root[1024];

/* hubsync_api_root -- hubsync.api_base_url without a trailing slash */
const char *
hubsync_api_root(void)
{
	size_t		len;

	strlcpy(api_root, hubsync_api_base_url, sizeof(api_root));
	len = strlen(api_root);
	while (len > 0 && api_root[len - 1] == '/')
		api_root[--len] = '\0';
	return api_root;
}

/* forget_token -- wipe the token from memory */
static void
forget_token(void)
{
	if (access_token)
	{
		explicit_bzero(access_token, strlen(access_token));
		pfree(access_token);
		access_token = NULL;
	}
}

/*
 * hubsync_refresh_credentials -- reload the access token when the
 * credentials changed since we last read them (a short transaction).
 * A private-app token wins over an OAuth access token.
 */
void
hubsync_refresh_credentials(void)
{
	uint64		version = hubsync_credentials_version();

	if (version == loaded_version)
		return;
	forget_token();
	if (!hubsync_worker_begin_xact(NULL))
	{
		hubsync_worker_end_xact();
		return;
	}
	SPI_connect();
	if (SPI_execute("SELECT coalesce(access_token, oauth_access_token) FROM hubsync._credentials",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		char	   *t = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (t != NULL && *t != '\0')
			access_token = MemoryContextStrdup(TopMemoryContext, t);
		if (t)
			explicit_bzero(t, strlen(t));
	}
	SPI_finish();
	hubsync_worker_end_xact();
	loaded_version = version;
	/* new credentials may also have created the hubsync_id properties */
	list_free_deep(id_property_ready);
	id_property_ready = NIL;
}

/* hubsync_access_token -- the bearer token to send, or NULL */
const char *
hubsync_access_token(void)
{
	return access_token;
}

/*
 * hubsync_auth_blocked -- no token, or HubSpot refused it (401) and no new
 * credentials have been set since: send nothing, burn nothing.
 */
bool
hubsync_auth_blocked(void)
{
	return access_token == NULL ||
		pg_atomic_read_u32(&hubsync_shared->auth_failed) != 0;
}

/*
 * hubsync_observe_response -- feed a response to the shared quota and
 * the authentication state.
 */
void
hubsync_observe_response(HubsyncHttpRequest *req)
{
	hubsync_quota_observe(req->status, req->rl_max, req->rl_remaining,
						  req->rl_daily_remaining);
	if (req->status == 429)
	{
		Jsonb	   *body = hubsync_json_parse(req->response, req->response_len);
		char	   *policy = body ? hubsync_json_get_text(&body->root, "policyName") : NULL;
		char	   *message = body ? hubsync_json_get_text(&body->root, "message") : NULL;

		/* the secondly limit's 429 names no policy, only a message */
		if (policy == NULL && message != NULL && strstr(message, "secondly") != NULL)
			policy = "SECONDLY";
		hubsync_quota_throttled(policy, HUBSYNC_QUOTA_REALTIME);
	}
	else if (req->status == 401)
	{
		if (pg_atomic_exchange_u32(&hubsync_shared->auth_failed, 1) == 0)
			ereport(WARNING,
					(errmsg("HubSpot refused hubsync's credentials (HTTP 401); pushing stops until they change"),
					 errhint("Set a valid token with hubsync.set_credentials(access_token => ...).")));
	}
}

/*
 * hubsync_api_call -- one synchronous call within the realtime quota, for
 * the few calls made outside the pipelined push path.  The caller
 * releases the request with hubsync_http_release().
 */
HubsyncHttpRequest *
hubsync_api_call(const char *method, char *url, char *body)
{
	HubsyncHttpRequest *req = palloc0(sizeof(HubsyncHttpRequest));
	long		wait;

	while ((wait = hubsync_quota_acquire(HUBSYNC_QUOTA_REALTIME)) > 0)
		hubsync_worker_wait(Min(wait, 1000));
	req->method = method;
	req->url = url;
	req->body = body;
	req->bearer = access_token;
	hubsync_http_perform(req);
	hubsync_observe_response(req);
	return req;
}

/*
 * hubsync_ensure_id_property -- make sure the object type has the unique
 * property hubsync_id that batch upserts key on, creating it the first
 * time.  Returns 200 when it exists, else the failing HTTP status (0 when
 * HubSpot could not be reached).
 */
long
hubsync_ensure_id_property(const char *api_name)
{
	ListCell   *lc;
	HubsyncHttpRequest *req;
	char	   *group = NULL;
	long		status;
	StringInfoData body;
	MemoryContext old;

	foreach(lc, id_property_ready)
		if (strcmp((char *) lfirst(lc), api_name) == 0)
			return 200;

	req = hubsync_api_call("GET", psprintf("%s/crm/v3/properties/%s/hubsync_id",
								   hubsync_api_root(), api_name), NULL);
	status = req->status;
	hubsync_http_release(req);
	if (status == 404)
	{
		/* the property needs a group: take the object's first one */
		req = hubsync_api_call("GET", psprintf("%s/crm/v3/properties/%s/groups",
									   hubsync_api_root(), api_name), NULL);
		if (req->status == 200)
		{
			Jsonb	   *body = hubsync_json_parse(req->response, req->response_len);
			JsonbContainer *results = body ? hubsync_json_get_container(&body->root, "results") : NULL;

			group = hubsync_json_get_text(hubsync_json_array_container(results, 0), "name");
		}
		hubsync_http_release(req);
		initStringInfo(&body);
		appendStringInfoString(&body, "{\"name\":\"hubsync_id\",\"label\":\"hubsync id\","
							   "\"type\":\"string\",\"fieldType\":\"text\","
							   "\"hasUniqueValue\":true,\"formField\":false,"
							   "\"description\":\"Identity of this record in PostgreSQL (hubsync). Do not edit.\","
							   "\"groupName\":");
		hubsync_json_escape(&body, group ? group : "contactinformation");
		appendStringInfoChar(&body, '}');
		req = hubsync_api_call("POST", psprintf("%s/crm/v3/properties/%s", hubsync_api_root(), api_name),
					   body.data);
		status = req->status;
		if (status != 201 && status != 200 && status != 409)
			ereport(WARNING,
					(errmsg("could not create the hubsync_id property for HubSpot object type \"%s\": HTTP %ld",
							api_name, status),
					 errhint("Check that the token has the crm.schemas.%s.write scope.", api_name)));
		hubsync_http_release(req);
		if (status == 409)
			status = 200;
		else if (status == 201)
			status = 200;
	}
	if (status != 200)
		return status;
	old = MemoryContextSwitchTo(TopMemoryContext);
	id_property_ready = lappend(id_property_ready, pstrdup(api_name));
	MemoryContextSwitchTo(old);
	return 200;
}
