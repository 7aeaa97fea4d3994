/*-------------------------------------------------------------------------
 *
 * oauth.c
 *	  Refreshing the OAuth access token through HubSpot's token endpoint.
 *
 * With OAuth credentials (client id, client secret, refresh token) the
 * access token lives 30 minutes.  hubspot_api.c asks for a new one shortly
 * before it expires and once after HubSpot answers EXPIRED_AUTHENTICATION;
 * this file performs that refresh on the token endpoint of the API version
 * in use (api_paths.c: /oauth/{v}/token, legacy /oauth/v1/token):
 *
 *	 POST {api_base_url}/oauth/{v}/token
 *	 grant_type=refresh_token&client_id=..&client_secret=..&refresh_token=..
 *
 * or, with a client id and secret but no refresh token (a project app's
 * client credentials, what the Webhooks Journal needs):
 *
 *	 grant_type=client_credentials&client_id=..&client_secret=..
 *
 * and stores what comes back (access token, expiry, and the refresh token,
 * which HubSpot may rotate) in hubsync._credentials, then bumps the
 * credentials version so every worker picks the new token up.
 *
 * Only one process refreshes at a time: a claim in shared memory (a
 * deadline, so a process that dies mid-refresh cannot block the others for
 * long).  A refresh HubSpot refuses for good (400 invalid_grant or
 * invalid_client) pauses sync: the error is stored, auth state becomes
 * refresh_failed, and nothing is asked again until the credentials change.
 * A refresh that fails for a passing reason (network, 429, 5xx, garbage)
 * is retried after a growing delay.  No secret is ever logged: messages
 * carry the HTTP status and HubSpot's status words only.
 *
 * IDENTIFICATION
 *	  src/hubspot/oauth.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "hubspot/api_paths.h"
#include "hubspot/hubspot_api.h"
#include "util/json_util.h"
#include "hubspot/oauth.h"
#include "util/parse_util.h"
#include "bgw/worker.h"

/* how long a refresh may hold the claim */
#define OAUTH_CLAIM_MS			60000
/* delays after refreshes that failed for a passing reason */
#define OAUTH_BACKOFF_MIN_MS	2000
#define OAUTH_BACKOFF_MAX_MS	300000
/* longest access token we accept (HubSpot's are ~300 characters) */
#define OAUTH_MAX_TOKEN_LEN		4096

static TimestampTz retry_not_before = 0;
static int	transient_failures = 0;

/* append_form_value -- application/x-www-form-urlencoded encoding */
static void
append_form_value(StringInfo buf, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			(c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~')
			appendStringInfoChar(buf, (char) c);
		else
		{
			appendStringInfoChar(buf, '%');
			appendStringInfoChar(buf, hex[c >> 4]);
			appendStringInfoChar(buf, hex[c & 15]);
		}
	}
}

/* wipe_string -- overwrite a secret before its memory is given back */
static void
wipe_string(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
}

/* safe_word -- HubSpot's status word reduced to [A-Za-z0-9_] (parse_util.c) */
static char *
safe_word(const char *s)
{
	char	   *out = palloc(65);

	hubsync_safe_word(s, out, 65);
	return out;
}

/*
 * plain_words -- the words of HubSpot's error_description made only of
 * ASCII letters (at most 20 each, max_len in all), for the stored refusal:
 * a word with a digit, a dash or anything else is left out, so no token,
 * secret or id the server might echo gets through.
 */
static char *
plain_words(const char *s, int max_len)
{
	StringInfoData out;

	initStringInfo(&out);
	while (s && *s)
	{
		const char *w;
		int			n = 0;
		bool		letters = true;

		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			s++;
		w = s;
		while (*s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
		{
			if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
				letters = false;
			s++;
			n++;
		}
		if (n == 0 || !letters || n > 20)
			continue;
		if (out.len + 1 + n > max_len)
			break;
		if (out.len > 0)
			appendStringInfoChar(&out, ' ');
		appendBinaryStringInfo(&out, w, n);
	}
	return out.data;
}

/* claim_refresh -- become the one process refreshing, if nobody is */
static bool
claim_refresh(void)
{
	TimestampTz now = GetCurrentTimestamp();
	uint64		held = pg_atomic_read_u64(&hubsync_shared->oauth_refresh_claim);

	if ((TimestampTz) held > now)
		return false;
	return pg_atomic_compare_exchange_u64(&hubsync_shared->oauth_refresh_claim, &held,
										  (uint64) TimestampTzPlusMilliseconds(now, OAUTH_CLAIM_MS));
}

/* release_refresh -- let the next refresh happen */
static void
release_refresh(void)
{
	pg_atomic_write_u64(&hubsync_shared->oauth_refresh_claim, 0);
}

/*
 * read_secrets -- client id, client secret and refresh token (palloc'd in
 * the caller's memory context; the refresh token NULL when there is none:
 * client credentials); false when OAuth is not configured or the extension
 * is gone.
 */
static bool
read_secrets(char **client_id, char **client_secret, char **refresh_token)
{
	bool		ok = false;
	MemoryContext caller = CurrentMemoryContext;

	*client_id = *client_secret = *refresh_token = NULL;
	if (!hubsync_worker_begin_xact(NULL))
	{
		hubsync_worker_end_xact();
		return false;
	}
	SPI_connect();
	if (SPI_execute("SELECT oauth_client_id, oauth_client_secret, oauth_refresh_token "
					"FROM hubsync._credentials WHERE oauth_refresh_error IS NULL",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *id = SPI_getvalue(tup, desc, 1);
		char	   *secret = SPI_getvalue(tup, desc, 2);
		char	   *refresh = SPI_getvalue(tup, desc, 3);
		if (id && secret && *id && *secret)
		{
			/* copy out of SPI's memory, which is freed by SPI_finish */
			MemoryContext old = MemoryContextSwitchTo(caller);

			*client_id = pstrdup(id);
			*client_secret = pstrdup(secret);
			*refresh_token = (refresh && *refresh) ? pstrdup(refresh) : NULL;
			MemoryContextSwitchTo(old);
			ok = true;
		}
		wipe_string(secret);
		wipe_string(refresh);
	}
	SPI_finish();
	hubsync_worker_end_xact();
	return ok;
}

/*
 * store_result -- write the new token (or the refusal) back to
 * hubsync._credentials, only if the client id and the refresh token (NULL
 * for client credentials) are still the ones we used: credentials set
 * meanwhile win.  Returns true if stored.
 */
static bool
store_result(const char *used_client, const char *used_refresh, const char *access,
			 const char *new_refresh, double expires_in, const char *error)
{
	bool		stored = false;
	Oid			types[6] = {TEXTOID, TEXTOID, TEXTOID, FLOAT8OID, TEXTOID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	if (used_refresh)
		values[0] = CStringGetTextDatum(used_refresh);
	else
		nulls[0] = 'n';
	values[5] = CStringGetTextDatum(used_client);
	if (access)
		values[1] = CStringGetTextDatum(access);
	else
		nulls[1] = 'n';
	if (new_refresh && *new_refresh)
		values[2] = CStringGetTextDatum(new_refresh);
	else
		nulls[2] = 'n';
	values[3] = Float8GetDatum(expires_in);
	if (error)
		values[4] = CStringGetTextDatum(error);
	else
		nulls[4] = 'n';

	if (hubsync_worker_begin_xact("storing a refreshed HubSpot access token"))
	{
		SPI_connect();
		if (SPI_execute_with_args("UPDATE hubsync._credentials SET "
								  "oauth_access_token = $2, "
								  "oauth_refresh_token = coalesce($3, oauth_refresh_token), "
								  "oauth_expires_at = CASE WHEN $2 IS NULL THEN NULL "
								  "  ELSE now() + make_interval(secs => $4) END, "
								  "oauth_refreshed_at = CASE WHEN $2 IS NULL THEN oauth_refreshed_at "
								  "  ELSE now() END, "
								  "oauth_refresh_error = $5 "
								  "WHERE oauth_refresh_token IS NOT DISTINCT FROM $1 "
								  "  AND oauth_client_id = $6",
								  6, types, values, nulls, false, 1) == SPI_OK_UPDATE)
			stored = (SPI_processed == 1);
		SPI_finish();
	}
	hubsync_worker_end_xact();
	return stored;
}

/* next_backoff -- delay after the n-th passing failure in a row */
static long
next_backoff(int n)
{
	long		ms = OAUTH_BACKOFF_MIN_MS;

	while (--n > 0 && ms < OAUTH_BACKOFF_MAX_MS)
		ms *= 2;
	return Min(ms, OAUTH_BACKOFF_MAX_MS);
}

/*
 * hubsync_oauth_read_answer -- what the token endpoint's answer (HTTP
 * status and body) says: DONE with a usable access token (one printable
 * word) and expiry, and the rotated refresh token if any; REFUSED (400,
 * 401, 403) with an error made of the status, HubSpot's status word (the
 * numbered endpoints' "status"), RFC 6749's "error" word (both shapes) and
 * the plain words of RFC 6749's "error_description"; RETRY_LATER for
 * anything else.  Pure: no shared memory, no
 * database; hubsync._parse_probe() fuzzes this very function.
 */
void
hubsync_oauth_read_answer(long status, const char *response, size_t len,
						  HubsyncOAuthAnswer *a)
{
	Jsonb	   *body = (status > 0) ? hubsync_json_parse(response, len) : NULL;

	memset(a, 0, sizeof(*a));
	a->result = HUBSYNC_OAUTH_RETRY_LATER;
	if (status == 200 && body != NULL)
	{
		JsonbValue *exp = hubsync_json_get(&body->root, "expires_in");
		char	   *expires = NULL;

		a->access = hubsync_json_get_text(&body->root, "access_token");
		a->new_refresh = hubsync_json_get_text(&body->root, "refresh_token");
		if (exp && (exp->type == jbvNumeric || exp->type == jbvString))
			expires = hubsync_json_value_text(exp);
		if (expires)
		{
			char	   *end;

			a->expires_in = strtod(expires, &end);
			if (*end != '\0' || !(a->expires_in > 0 && a->expires_in < 365.0 * 86400))
				a->expires_in = 0;
		}
		/* an access token is one printable word; anything else is garbage */
		if (a->access && !hubsync_token_ok(a->access, OAUTH_MAX_TOKEN_LEN))
		{
			wipe_string(a->access);
			a->access = NULL;
		}
		if (a->new_refresh && !hubsync_token_ok(a->new_refresh, OAUTH_MAX_TOKEN_LEN))
		{
			wipe_string(a->new_refresh);
			a->new_refresh = NULL;
		}
		if (a->access && a->expires_in > 0)
			a->result = HUBSYNC_OAUTH_DONE;
	}
	else if (status == 400 || status == 401 || status == 403)
	{
		char	   *status_word = body ? safe_word(hubsync_json_get_text(&body->root, "status")) : "";
		char	   *error_word = body ? safe_word(hubsync_json_get_text(&body->root, "error")) : "";
		char	   *description = body ? plain_words(hubsync_json_get_text(&body->root, "error_description"), 120) : "";

		a->error = psprintf("HTTP %ld%s%s%s%s%s%s", status,
							*status_word ? " " : "", status_word,
							*error_word ? " " : "", error_word,
							*description ? ": " : "", description);
		a->result = HUBSYNC_OAUTH_REFUSED;
	}
}

/*
 * hubsync_oauth_refresh -- get a new access token from HubSpot's token
 * endpoint and store it.  On DONE the credentials version has moved, so
 * the caller (and every other worker) reloads the token.
 */
HubsyncOAuthResult
hubsync_oauth_refresh(void)
{
	char	   *client_id;
	char	   *client_secret;
	char	   *refresh_token;
	StringInfoData form;
	HubsyncHttpRequest *req;
	HubsyncOAuthResult result = HUBSYNC_OAUTH_RETRY_LATER;
	HubsyncOAuthAnswer answer;
	char	   *access;
	char	   *new_refresh;

	if (GetCurrentTimestamp() < retry_not_before)
		return HUBSYNC_OAUTH_RETRY_LATER;
	if (!claim_refresh())
		return HUBSYNC_OAUTH_BUSY;
	if (!read_secrets(&client_id, &client_secret, &refresh_token))
	{
		release_refresh();
		return HUBSYNC_OAUTH_RETRY_LATER;
	}

	/* a refresh token, or else the client credentials grant */
	initStringInfo(&form);
	appendStringInfoString(&form, refresh_token ? "grant_type=refresh_token" :
						   "grant_type=client_credentials");
	appendStringInfoString(&form, "&client_id=");
	append_form_value(&form, client_id);
	appendStringInfoString(&form, "&client_secret=");
	append_form_value(&form, client_secret);
	if (refresh_token)
	{
		appendStringInfoString(&form, "&refresh_token=");
		append_form_value(&form, refresh_token);
	}

	req = palloc0(sizeof(HubsyncHttpRequest));
	req->method = "POST";
	req->url = hubsync_api_url(hubsync_path_oauth_token());
	req->body = form.data;
	req->content_type = "application/x-www-form-urlencoded";
	pgstat_report_activity(STATE_RUNNING, "refreshing the HubSpot access token");
	hubsync_http_perform(req);
	explicit_bzero(form.data, form.len);

	hubsync_oauth_read_answer(req->status, req->response, req->response_len, &answer);
	/* a refusal echoing a secret we sent keeps only the HTTP status */
	if (answer.error &&
		(strstr(answer.error, client_secret) ||
		 (refresh_token && strstr(answer.error, refresh_token))))
		answer.error = psprintf("HTTP %ld", req->status);
	wipe_string(client_secret);
	access = answer.access;
	new_refresh = answer.new_refresh;
	if (answer.result == HUBSYNC_OAUTH_DONE)
	{
		if (store_result(client_id, refresh_token, access, new_refresh, answer.expires_in, NULL))
		{
			pg_atomic_fetch_add_u64(&hubsync_shared->credentials_version, 1);
			hubsync_wake_all_workers();
		}
		result = HUBSYNC_OAUTH_DONE;
	}
	else if (answer.result == HUBSYNC_OAUTH_REFUSED)
	{
		(void) store_result(client_id, refresh_token, NULL, NULL, 0, answer.error);
		if (pg_atomic_exchange_u32(&hubsync_shared->auth_failed,
								   HUBSYNC_AUTH_REFRESH_FAILED) != HUBSYNC_AUTH_REFRESH_FAILED)
		{
			if (refresh_token)
				ereport(WARNING,
						(errmsg("HubSpot refused hubsync's OAuth refresh token (%s); sync is paused until the credentials change",
								answer.error),
						 errhint("Reinstall the app or set new OAuth credentials with hubsync.set_credentials(oauth_refresh_token => ...).")));
			else
				ereport(WARNING,
						(errmsg("HubSpot refused hubsync's OAuth client credentials (%s); sync is paused until the credentials change",
								answer.error),
						 errhint("Check the app's client id and secret and set them with hubsync.set_credentials(oauth_client_id => ..., oauth_client_secret => ...).")));
		}
		result = HUBSYNC_OAUTH_REFUSED;
	}
	else if (req->status == 200)
		ereport(LOG,
				(errmsg("HubSpot's token endpoint answered 200 without a usable access_token and expires_in; retrying later")));
	else
		ereport(LOG,
				(errmsg("could not refresh the HubSpot access token: %s; retrying later",
						req->status > 0 ? psprintf("HTTP %ld", req->status) :
						(req->error[0] ? req->error : "no response"))));

	if (access)
		wipe_string(access);
	if (new_refresh)
		wipe_string(new_refresh);
	if (req->response)
		explicit_bzero(req->response, req->response_len);
	wipe_string(refresh_token);
	wipe_string(client_id);
	pfree(client_id);
	pfree(client_secret);
	if (refresh_token)
		pfree(refresh_token);
	hubsync_http_release(req);
	release_refresh();

	if (result == HUBSYNC_OAUTH_RETRY_LATER)
	{
		transient_failures++;
		retry_not_before = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   next_backoff(transient_failures));
	}
	else
	{
		transient_failures = 0;
		retry_not_before = 0;
	}
	return result;
}

/*
 * hubsync_oauth_client_credentials -- one client-credentials grant for the
 * given scopes (space separated, RFC 6749's "scope" form field): the
 * answer, nothing stored and no claim taken.  The Webhooks Journal keeps
 * such a token of its own (journal.c), whatever token CRM calls use.  On
 * anything but DONE, a->error says why in words safe to store (the HTTP
 * status and HubSpot's status words, or the network error).
 */
void
hubsync_oauth_client_credentials(const char *client_id, const char *client_secret,
								 const char *scope, HubsyncOAuthAnswer *a)
{
	StringInfoData form;
	HubsyncHttpRequest *req;

	initStringInfo(&form);
	appendStringInfoString(&form, "grant_type=client_credentials&client_id=");
	append_form_value(&form, client_id);
	appendStringInfoString(&form, "&client_secret=");
	append_form_value(&form, client_secret);
	if (scope && *scope)
	{
		appendStringInfoString(&form, "&scope=");
		append_form_value(&form, scope);
	}
	req = palloc0(sizeof(HubsyncHttpRequest));
	req->method = "POST";
	req->url = hubsync_api_url(hubsync_path_oauth_token());
	req->body = form.data;
	req->content_type = "application/x-www-form-urlencoded";
	hubsync_http_perform(req);
	explicit_bzero(form.data, form.len);

	hubsync_oauth_read_answer(req->status, req->response, req->response_len, a);
	if (a->error && strstr(a->error, client_secret))
		a->error = psprintf("HTTP %ld", req->status);
	if (a->result == HUBSYNC_OAUTH_RETRY_LATER)
		a->error = req->status > 0 ?
			psprintf("HTTP %ld from the token endpoint", req->status) :
			psprintf("token endpoint not reached: %s", req->error[0] ? req->error : "no response");
	if (req->response)
		explicit_bzero(req->response, req->response_len);
	hubsync_http_release(req);
}

/* hubsync_oauth_forget_backoff -- new credentials: try again at once */
void
hubsync_oauth_forget_backoff(void)
{
	transient_failures = 0;
	retry_not_before = 0;
}
