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
 *	  src/hubspot/hubspot_api.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "hubspot/api_paths.h"
#include "hubspot/hubspot_api.h"
#include "util/json_util.h"
#include "hubspot/oauth.h"
#include "core/quota.h"
#include "bgw/worker.h"
#include "hubspot/settings.h"

static char *access_token = NULL;
static uint64 loaded_version = PG_UINT64_MAX;
static List *id_property_ready = NIL;	/* api names known to have it */
static char api_root[1024];

/* OAuth state of this process (see oauth.c for the refresh itself) */
static bool oauth_mode = false;		/* token comes from a refresh token */
static TimestampTz token_refresh_at = 0;	/* refresh once now passes this */
static TimestampTz token_loaded_at = 0; /* when this token was loaded */
static bool token_expired = false;	/* HubSpot said EXPIRED_AUTHENTICATION */
static bool refreshed_for_expiry = false;	/* current token came from the
											 * refresh after such a 401 */

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
 * load_credentials -- read the token to send (a short transaction).  A
 * private-app token wins; otherwise, with an OAuth client id and secret
 * (and a refresh token, or else the client credentials grant), the stored
 * OAuth access token and when to refresh it: 60 s before it expires (per
 * HubSpot's advice), or halfway through a shorter lifetime.
 */
static void
load_credentials(uint64 version)
{
	forget_token();
	oauth_mode = false;
	token_refresh_at = 0;
	token_expired = false;
	refreshed_for_expiry = false;
	if (!hubsync_worker_begin_xact(NULL))
	{
		hubsync_worker_end_xact();
		return;
	}
	SPI_connect();
	if (SPI_execute("SELECT coalesce(nullif(access_token, ''), oauth_access_token), "
					"  access_token IS NULL AND oauth_client_id IS NOT NULL "
					"  AND oauth_client_secret IS NOT NULL, "
					"  oauth_expires_at - least(interval '60 s', "
					"    (oauth_expires_at - coalesce(oauth_refreshed_at, oauth_expires_at - interval '30 min')) / 2), "
					"  oauth_refresh_error IS NOT NULL "
					"FROM hubsync._credentials",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *t = SPI_getvalue(tup, desc, 1);
		bool		isnull;
		Datum		d;

		if (t != NULL && *t != '\0')
			access_token = MemoryContextStrdup(TopMemoryContext, t);
		if (t)
			explicit_bzero(t, strlen(t));
		d = SPI_getbinval(tup, desc, 2, &isnull);
		oauth_mode = !isnull && DatumGetBool(d);
		d = SPI_getbinval(tup, desc, 3, &isnull);
		token_refresh_at = isnull ? 0 : DatumGetTimestampTz(d);
		d = SPI_getbinval(tup, desc, 4, &isnull);
		/* a refused refresh token keeps sync paused, across restarts too */
		if (oauth_mode && !isnull && DatumGetBool(d))
			pg_atomic_write_u32(&hubsync_shared->auth_failed, HUBSYNC_AUTH_REFRESH_FAILED);
	}
	SPI_finish();
	hubsync_worker_end_xact();
	loaded_version = version;
	token_loaded_at = GetCurrentTimestamp();
	/* new credentials may also have created the hubsync_id properties */
	list_free_deep(id_property_ready);
	id_property_ready = NIL;
}

/*
 * hubsync_refresh_credentials -- reload the access token when the
 * credentials changed since we last read them; with OAuth, refresh the
 * access token when it is missing, about to expire, or HubSpot said it
 * expired.  Cheap when nothing is due: call it before every round of work.
 */
void
hubsync_refresh_credentials(void)
{
	uint64		version = hubsync_credentials_version();
	bool		reason_expired;

	if (version != loaded_version)
	{
		load_credentials(version);
		hubsync_oauth_forget_backoff();
	}
	if (!oauth_mode ||
		pg_atomic_read_u32(&hubsync_shared->auth_failed) != HUBSYNC_AUTH_OK)
		return;
	if (access_token != NULL && !token_expired &&
		(token_refresh_at == 0 || GetCurrentTimestamp() < token_refresh_at))
		return;

	reason_expired = token_expired;
	if (hubsync_oauth_refresh() == HUBSYNC_OAUTH_DONE)
	{
		load_credentials(hubsync_credentials_version());
		refreshed_for_expiry = reason_expired;
	}
}

/* hubsync_access_token -- the bearer token to send, or NULL */
const char *
hubsync_access_token(void)
{
	return access_token;
}

/*
 * hubsync_auth_blocked -- no token, HubSpot said ours expired and no new one
 * is here yet, or HubSpot refused the credentials and no new ones have been
 * set since: send nothing, burn nothing.
 */
bool
hubsync_auth_blocked(void)
{
	return access_token == NULL || token_expired ||
		pg_atomic_read_u32(&hubsync_shared->auth_failed) != HUBSYNC_AUTH_OK;
}

/*
 * hubsync_auth_wait_ms -- how long a worker blocked on authentication
 * should sleep: about a second while an OAuth refresh is due (oauth.c
 * paces the attempts), else idle_ms (new credentials wake the workers).
 */
long
hubsync_auth_wait_ms(long idle_ms)
{
	if (oauth_mode && (access_token == NULL || token_expired) &&
		pg_atomic_read_u32(&hubsync_shared->auth_failed) == HUBSYNC_AUTH_OK)
		return Min(idle_ms, 1000);
	return idle_ms;
}

/*
 * observe_401 -- HubSpot refused a request's token.  With OAuth, an
 * EXPIRED_AUTHENTICATION answer asks for one refresh (and the caller
 * retries); the same answer to the token that refresh brought, or any
 * other 401, stops work until the credentials change.  A 401 to a request
 * sent before the current token was loaded says nothing about it.
 */
static void
observe_401(HubsyncHttpRequest *req)
{
	char	   *category = NULL;

	if (req->started_at < token_loaded_at)
		return;
	if (oauth_mode)
	{
		Jsonb	   *body = hubsync_json_parse(req->response, req->response_len);

		category = body ? hubsync_json_get_text(&body->root, "category") : NULL;
	}
	if (category != NULL && strcmp(category, "EXPIRED_AUTHENTICATION") == 0 &&
		!refreshed_for_expiry)
	{
		if (!token_expired)
			ereport(LOG,
					(errmsg("HubSpot says the OAuth access token expired; refreshing it")));
		token_expired = true;
		return;
	}
	if (pg_atomic_exchange_u32(&hubsync_shared->auth_failed, HUBSYNC_AUTH_REFUSED) == HUBSYNC_AUTH_OK)
		ereport(WARNING,
				(errmsg("HubSpot refused hubsync's credentials (HTTP 401%s%s); pushing stops until they change",
						category ? " " : "", category ? category : ""),
				 oauth_mode ?
				 errhint("Set new OAuth credentials with hubsync.set_credentials(oauth_refresh_token => ...).") :
				 errhint("Set a valid token with hubsync.set_credentials(access_token => ...).")));
}

/*
 * hubsync_observe_response -- feed a response to the shared quota and
 * the authentication state.
 */
void
hubsync_observe_response(HubsyncHttpRequest *req)
{
	hubsync_quota_answered(req->quota_ticket, req->rl_interval_ms, req->finished_at);
	req->quota_ticket = 0;
	hubsync_quota_observe(req->status, req->rl_max, req->rl_remaining,
						  req->rl_daily_remaining);
	hubsync_metrics_count_request(req->quota_class, req->status);
	if (req->status == 429)
	{
		Jsonb	   *body = hubsync_json_parse(req->response, req->response_len);
		char	   *policy = body ? hubsync_json_get_text(&body->root, "policyName") : NULL;
		char	   *message = body ? hubsync_json_get_text(&body->root, "message") : NULL;

		/* the secondly limit's 429 names no policy, only a message */
		hubsync_quota_throttled(hubsync_rate_limit_policy(policy, message),
								HUBSYNC_QUOTA_REALTIME);
	}
	else if (req->status == 401 && req->bearer == access_token)
		observe_401(req);		/* a 401 to another token says nothing of ours */
	else if (req->status >= 200 && req->status < 300 && req->started_at >= token_loaded_at)
		refreshed_for_expiry = false;	/* the token works */
}

/*
 * hubsync_api_wait -- sleep ms: a worker through its own wait (woken by
 * new work), a user session on its latch, both interruptible.
 */
void
hubsync_api_wait(long ms)
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
 * hubsync_request_quota -- wait, interruptibly, until the shared quota's
 * class cls lets one more request go.
 */
void
hubsync_request_quota(HubsyncQuotaClass cls)
{
	long		wait;

	while ((wait = hubsync_quota_acquire(cls)) > 0)
		hubsync_api_wait(Min(wait, 1000));
}

/*
 * hubsync_request_new -- a HubSpot request: method, URL, body (or NULL),
 * sent with token, or with this process's access token when token is
 * NULL.  Start it with hubsync_http_start or hubsync_http_perform, and
 * hand its answer to hubsync_observe_response.
 */
HubsyncHttpRequest *
hubsync_request_new(const char *method, char *url, char *body, const char *token)
{
	HubsyncHttpRequest *req = palloc0(sizeof(HubsyncHttpRequest));

	req->method = method;
	req->url = url;
	req->body = body;
	req->bearer = token ? token : access_token;
	return req;
}

/*
 * hubsync_request_send -- one synchronous HubSpot call: wait for the
 * quota class, send, and observe the answer (quota headers, 429, 401).
 * The caller releases the request with hubsync_http_release().
 */
HubsyncHttpRequest *
hubsync_request_send(HubsyncQuotaClass cls, const char *method, char *url,
					 char *body, const char *token)
{
	HubsyncHttpRequest *req;

	hubsync_request_quota(cls);
	req = hubsync_request_new(method, url, body, token);
	req->quota_class = (int) cls;
	hubsync_http_perform(req);
	hubsync_observe_response(req);
	return req;
}

/*
 * hubsync_ensure_id_property -- make sure the object type has the unique
 * property hubsync_id that batch upserts key on, creating it the first
 * time.  Returns 200 when it exists, HUBSYNC_ID_PROPERTY_NOT_UNIQUE when it
 * exists without hasUniqueValue (HubSpot would refuse every upsert by it,
 * and a property cannot be made unique afterwards), else the failing HTTP
 * status (0 when HubSpot could not be reached).
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

	req = hubsync_request_send(HUBSYNC_QUOTA_REALTIME, "GET", hubsync_api_url(hubsync_path_properties(api_name, "/hubsync_id")), NULL, NULL);
	status = req->status;
	if (status == 200)
	{
		Jsonb	   *def = hubsync_json_parse(req->response, req->response_len);
		char	   *unique = def ? hubsync_json_get_text(&def->root, "hasUniqueValue") : NULL;

		if (unique != NULL && strcmp(unique, "false") == 0)
			status = HUBSYNC_ID_PROPERTY_NOT_UNIQUE;
	}
	hubsync_http_release(req);
	if (status == HUBSYNC_ID_PROPERTY_NOT_UNIQUE)
	{
		ereport(WARNING,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the HubSpot property hubsync_id of object type \"%s\" is not unique", api_name),
				 errdetail("HubSpot refuses upserts by a property without hasUniqueValue; the changes are moved to hubsync.dead_letters."),
				 errhint("Delete (or rename) the property hubsync_id of %s in HubSpot, then run hubsync.retry_dead_letters(category => 'HUBSYNC_ID_NOT_UNIQUE').", api_name)));
		return status;
	}
	if (status == 404)
	{
		/* the property needs a group: take the object's first one */
		req = hubsync_request_send(HUBSYNC_QUOTA_REALTIME, "GET", hubsync_api_url(hubsync_path_properties(api_name, "/groups")), NULL, NULL);
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
		req = hubsync_request_send(HUBSYNC_QUOTA_REALTIME, "POST", hubsync_api_url(hubsync_path_properties(api_name, "")),
					   body.data, NULL);
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
