/*-------------------------------------------------------------------------
 *
 * journal.c
 *	  hubsync's third inbound path: HubSpot's Webhooks Journal, read by the
 *	  "hubsync pull" worker every hubsync.journal_interval.
 *
 * The journal keeps three days of the events of the app's journal
 * subscriptions (journal_subscriptions.c keeps those), readable by offset
 * with no public endpoint to expose.  Each read asks for the entries after
 * the stored offset (GET .../batch/{offset}/next/{count}); each entry is a
 * pre-signed URL from which its file of events is downloaded WITHOUT the
 * Authorization header (the URL carries its own signature; the bearer
 * token never goes to the storage host).  The events of all the entries
 * read are then stored in hubsync.inbox, in the transaction that moves the
 * offset to the last of them (hubsync._journal_save): a crash before the
 * commit reads the same entries again, one after it never does, and the
 * inbox's dedupe key drops an event the receiver already stored.  The
 * pull worker then applies them like webhook events.
 *
 * The first read starts at the journal's latest entry.  An offset HubSpot
 * no longer knows (404: older than three days, or unknown) makes the
 * poller catch up, restarts from the latest entry and alerts
 * (hubsync._journal_expired).  Journal requests are exempt from HubSpot's
 * rate limits: they take nothing from the shared quota.
 *
 * HubSpot's journal APIs take only a client-credentials token of the app
 * (OAuth client id and secret, grant_type=client_credentials) carrying the
 * journal scopes (JOURNAL_SCOPES).  The journal keeps such a token of its
 * own, in this process's memory, refreshed before it expires, whatever
 * token CRM calls use (an access token, a refreshed OAuth token, or the
 * client-credentials token of hubspot_api.c when nothing else is set): a
 * static or private-app token or a service key cannot read the journal.
 *
 * IDENTIFICATION
 *	  src/pull/journal.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "hubspot/api_paths.h"
#include "hubspot/hubspot_api.h"
#include "hubspot/oauth.h"
#include "hubspot/hubspot_read.h"
#include "hubspot/settings.h"
#include "util/json_util.h"
#include "util/parse_util.h"
#include "bgw/worker.h"
#include "pull/journal.h"
#include "pull/settings.h"

#define JOURNAL_BATCH 50		/* entries asked for per read */
#define JOURNAL_MAX_OFFSET 64	/* longest offset we put in a path */
#define JOURNAL_MAX_URL 8192	/* longest download URL we follow */
#define JOURNAL_BAD_FILE_TRIES 3	/* reads of an entry whose file is not
									 * JSON before it is skipped */

/* the scopes the journal's client-credentials token is asked for */
#define JOURNAL_SCOPES "developer.webhooks_journal.read " \
	"developer.webhooks_journal.subscriptions.read " \
	"developer.webhooks_journal.subscriptions.write"
#define JOURNAL_CREDENTIALS_HINT "Set the project app's client id and secret with " \
	"hubsync.set_credentials(oauth_client_id => ..., oauth_client_secret => ...); " \
	"the app needs the scopes " JOURNAL_SCOPES " (docs/hubspot-app.md)."

PG_FUNCTION_INFO_V1(hubsync_journal_probe);

static int64 next_read_ms = 0;
/* the journal's own client-credentials token (TopMemoryContext) */
static char *journal_token = NULL;
static TimestampTz journal_token_refresh_at = 0;
static uint64 journal_token_version = PG_UINT64_MAX;
static bool journal_token_refused = false;	/* until the credentials change */

static void record_error(const char *msg);
static bool legacy_warned = false;
static char bad_offset[JOURNAL_MAX_OFFSET + 1];	/* entry whose file was not JSON */
static int	bad_tries = 0;

/*
 * journal_url -- the full URL of a journal path, with installPortalId when
 * hubsync.portal_id is set (the local journal of that account).
 */
static char *
journal_url(const char *suffix)
{
	char	   *path = hubsync_path_journal(suffix);

	if (hubsync_portal_id > 0)
		path = psprintf("%s?installPortalId=%d", path, hubsync_portal_id);
	return hubsync_api_url(path);
}

/* forget_journal_token -- wipe the journal's token from memory */
static void
forget_journal_token(void)
{
	if (journal_token)
	{
		explicit_bzero(journal_token, strlen(journal_token));
		pfree(journal_token);
		journal_token = NULL;
	}
	journal_token_refresh_at = 0;
}

/*
 * read_client -- the OAuth client id and secret from hubsync._credentials
 * (palloc'd in the caller's context), inside the caller's transaction;
 * false when either is missing.
 */
static bool
read_client(char **client_id, char **client_secret)
{
	MemoryContext caller = CurrentMemoryContext;
	bool		ok = false;

	*client_id = *client_secret = NULL;
	SPI_connect();
	if (SPI_execute("SELECT oauth_client_id, oauth_client_secret FROM hubsync._credentials",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		char	   *id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		char	   *secret = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

		if (id && secret && *id && *secret)
		{
			*client_id = MemoryContextStrdup(caller, id);
			*client_secret = MemoryContextStrdup(caller, secret);
			ok = true;
		}
		if (secret)
			explicit_bzero(secret, strlen(secret));
	}
	SPI_finish();
	return ok;
}

/*
 * auth_problem -- the journal cannot authenticate: last_error in
 * hubsync.journal_state, a journal_auth alert with the hint, and a
 * WARNING (once per refusal: nothing is asked again until the
 * credentials change).
 */
static void
auth_problem(const char *msg)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(msg), CStringGetTextDatum(JOURNAL_CREDENTIALS_HINT)};

	ereport(WARNING,
			(errmsg("hubsync cannot read the Webhooks Journal: %s", msg),
			 errhint("%s", JOURNAL_CREDENTIALS_HINT)));
	(void) hubsync_worker_sql("record a Webhooks Journal authentication problem",
							  "SELECT hubsync._journal_auth_error($1, $2)", 2, types, values, NULL, NULL);
}

/*
 * journal_auth -- make sure this process holds the journal's
 * client-credentials token, asking the token endpoint for one (with the
 * journal scopes) when there is none or it expires within a minute (or
 * half its lifetime, if shorter).  False when there is no usable token:
 * no client id and secret, HubSpot refused them (both wait for new
 * credentials), or a passing failure (the next tick tries again).
 */
static bool
journal_auth(void)
{
	uint64		version = hubsync_credentials_version();
	char	   *client_id;
	char	   *client_secret;
	bool		have;
	HubsyncOAuthAnswer a;

	if (version != journal_token_version)
	{
		forget_journal_token();
		journal_token_refused = false;
		journal_token_version = version;
	}
	if (journal_token && GetCurrentTimestamp() < journal_token_refresh_at)
		return true;
	if (journal_token_refused)
		return false;
	forget_journal_token();

	if (!hubsync_worker_begin_xact("reading the OAuth client of the Webhooks Journal"))
	{
		hubsync_worker_end_xact();
		return false;
	}
	have = read_client(&client_id, &client_secret);
	hubsync_worker_end_xact();
	if (!have)
	{
		journal_token_refused = true;
		auth_problem("no OAuth client id and secret: the journal takes only a client-credentials token of the app, not an access token (static, private-app or service key)");
		return false;
	}

	pgstat_report_activity(STATE_RUNNING, "getting the Webhooks Journal's client-credentials token");
	hubsync_oauth_client_credentials(client_id, client_secret, JOURNAL_SCOPES, &a);
	explicit_bzero(client_secret, strlen(client_secret));
	if (a.result == HUBSYNC_OAUTH_DONE)
	{
		double		margin = Min(60.0, a.expires_in / 2);

		journal_token = MemoryContextStrdup(TopMemoryContext, a.access);
		explicit_bzero(a.access, strlen(a.access));
		journal_token_refresh_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															   (int64) ((a.expires_in - margin) * 1000));
		return true;
	}
	if (a.result == HUBSYNC_OAUTH_REFUSED)
	{
		journal_token_refused = true;
		auth_problem(psprintf("HubSpot refused the client credentials (%s)", a.error));
	}
	else
		record_error(psprintf("could not get the client-credentials token: %s", a.error));
	return false;
}

/*
 * hubsync_journal_call -- one journal API request with the journal's
 * client-credentials token (journal_auth must have succeeded).  The
 * journal is exempt from the rate limits, so no quota is taken and its
 * limit headers and 429s stay out of the shared quota.  A 401 drops the
 * token (the next tick asks for a new one); it says nothing about the
 * token CRM calls use.
 */
HubsyncHttpRequest *
hubsync_journal_call(const char *method, char *url, char *body)
{
	HubsyncHttpRequest *req = hubsync_request_new(method, url, body, journal_token);

	req->quota_class = (int) HUBSYNC_QUOTA_BULK;
	hubsync_http_perform(req);
	if (req->status != 429)
	{
		req->rl_max = req->rl_remaining = req->rl_daily_remaining = -1;
		hubsync_observe_response(req);
	}
	if (req->status == 401)
		forget_journal_token();
	return req;
}

/*
 * download_url_ok -- a pre-signed URL fit to download: http(s), no control
 * characters or spaces, not absurdly long, and https unless it is a
 * loopback host or hubsync.allow_insecure_http is on.
 */
static bool
download_url_ok(const char *url)
{
	size_t		n = url ? strlen(url) : 0;

	if (n == 0 || n > JOURNAL_MAX_URL || !hubsync_url_has_http_scheme(url))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) url[i] <= 0x20 || url[i] == 0x7f)
			return false;
	return hubsync_allow_insecure_http || !hubsync_url_cleartext_remote(url);
}

/*
 * download -- GET a journal entry's pre-signed URL with no Authorization
 * header: the URL is its own credential, and our token must never reach
 * the storage host.  Not a HubSpot API call: nothing is observed.
 */
static HubsyncHttpRequest *
download(const char *url)
{
	HubsyncHttpRequest *req = palloc0(sizeof(HubsyncHttpRequest));

	req->method = "GET";
	req->url = pstrdup(url);
	req->bearer = NULL;
	req->quota_class = (int) HUBSYNC_QUOTA_BULK;
	hubsync_http_perform(req);
	return req;
}

/* offset_ok -- an offset fit for a path: a UUID-like word */
static bool
offset_ok(const char *offset)
{
	size_t		n = offset ? strlen(offset) : 0;

	return n > 0 && n <= JOURNAL_MAX_OFFSET &&
		strspn(offset, "0123456789abcdefABCDEF-") == n;
}

/* request_problem -- a short, secret-free description of a failed request */
static char *
request_problem(HubsyncHttpRequest *req, const char *what)
{
	if (req->status == 0)
		return psprintf("%s: %s", what, req->error[0] ? req->error : "no answer");
	if (req->status == 401)
		return psprintf("%s: HTTP 401 (the client-credentials token was refused; a new one is asked for)", what);
	if (req->status == 403)
		return psprintf("%s: HTTP 403 (the client-credentials token lacks a scope of %s)", what, JOURNAL_SCOPES);
	return psprintf("%s: HTTP %ld", what, req->status);
}

/* record_error -- keep the last error in hubsync.journal_state */
static void
record_error(const char *msg)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(msg)};

	ereport(LOG, (errmsg("hubsync could not read the Webhooks Journal: %s", msg)));
	(void) hubsync_worker_sql("record a Webhooks Journal error",
							  "SELECT hubsync._journal_error($1)", 1, types, values, NULL, NULL);
}

/*
 * latest_offset -- GET .../latest: *offset is the latest entry's offset,
 * or NULL when the journal is empty (404).  False on any other failure.
 */
static bool
latest_offset(char **offset)
{
	HubsyncHttpRequest *req = hubsync_journal_call("GET", journal_url("/latest"), NULL);
	bool		ok = false;

	*offset = NULL;
	if (req->status == 200)
	{
		Jsonb	   *body = hubsync_json_parse(req->response, req->response_len);
		char	   *o = body && JB_ROOT_IS_OBJECT(body) ?
			hubsync_json_get_text(&body->root, "currentOffset") : NULL;

		ok = offset_ok(o);
		*offset = ok ? o : NULL;
		if (!ok)
			record_error("the latest entry's answer has no usable currentOffset");
	}
	else if (req->status == 404)
		ok = true;
	else
		record_error(request_problem(req, "reading the latest journal entry"));
	hubsync_http_release(req);
	return ok;
}

/*
 * load_state -- whether reading has started and the stored offset
 * (palloc'd, or NULL).  False when the state cannot be read.
 */
static bool
load_state(bool *started, char **offset)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		ok = false;

	*started = false;
	*offset = NULL;
	if (!hubsync_worker_begin_xact("reading the Webhooks Journal offset"))
	{
		hubsync_worker_end_xact();
		return false;
	}
	SPI_connect();
	if (SPI_execute("SELECT started, current_offset FROM hubsync.journal_state", true, 1) == SPI_OK_SELECT)
	{
		ok = true;
		if (SPI_processed == 1)
		{
			bool		isnull;
			char	   *o;

			*started = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			o = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
			if (o)
				*offset = MemoryContextStrdup(cxt, o);
		}
	}
	SPI_finish();
	hubsync_worker_end_xact();
	return ok;
}

/*
 * expired -- HubSpot does not know offset `from` any more: restart from
 * the latest entry, with the poller catching up and an alert, all in one
 * transaction (hubsync._journal_expired).
 */
static void
expired(const char *from, long status)
{
	char	   *latest;
	Oid			types[3] = {TEXTOID, TEXTOID, INT4OID};
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};

	if (!latest_offset(&latest))
		return;
	values[0] = CStringGetTextDatum(from);
	values[1] = latest ? CStringGetTextDatum(latest) : (Datum) 0;
	if (latest == NULL)
		nulls[1] = 'n';
	values[2] = Int32GetDatum((int32) status);
	if (hubsync_worker_sql("restart the Webhooks Journal after an expired offset",
						   "SELECT hubsync._journal_expired($1, $2, $3)",
						   3, types, values, nulls, NULL) == NULL)
		ereport(WARNING,
				(errmsg("the Webhooks Journal no longer has offset %s (HTTP %ld)", from, status),
				 errdetail("Changes since then are older than the journal keeps (three days) or the offset is unknown."),
				 errhint("The poller catches up every object type; reading goes on from the latest entry.")));
}

/* what one read did */
#define READ_IDLE	0			/* nothing new, or a failure */
#define READ_STORED 1			/* stored events: the inbox has work */
#define READ_MORE	2			/* stored a full batch: read on at once */

/*
 * read_entries -- one read: the entries after the stored offset, their
 * files downloaded, then stored with the new offset.  Returns READ_*.
 */
static int
read_entries(void)
{
	bool		started;
	char	   *offset;
	HubsyncHttpRequest *req;
	Jsonb	   *body;
	JsonbContainer *results;
	StringInfoData entries;
	char	   *last = NULL;
	int			n,
				i,
				got = 0;
	bool		complete = true;

	if (!load_state(&started, &offset))
		return READ_IDLE;
	if (!started)
	{
		char	   *latest;
		Oid			types[1] = {TEXTOID};
		Datum		values[1];
		char		nulls[1] = {' '};

		if (!latest_offset(&latest))
			return READ_IDLE;
		values[0] = latest ? CStringGetTextDatum(latest) : (Datum) 0;
		if (latest == NULL)
			nulls[0] = 'n';
		(void) hubsync_worker_sql("start reading the Webhooks Journal",
								  "SELECT hubsync._journal_start($1)", 1, types, values, nulls, NULL);
		return READ_IDLE;
	}
	if (offset != NULL && !offset_ok(offset))
	{
		record_error("the stored offset is not a journal offset");
		return READ_IDLE;
	}

	req = hubsync_journal_call("GET", journal_url(offset ?
											psprintf("/batch/%s/next/%d", offset, JOURNAL_BATCH) :
											psprintf("/batch/earliest/%d", JOURNAL_BATCH)), NULL);
	if (req->status == 404 && offset != NULL)
	{
		hubsync_http_release(req);
		expired(offset, 404);
		return READ_IDLE;
	}
	if (req->status == 404)
	{
		/* an empty journal has no earliest entry yet */
		hubsync_http_release(req);
		return READ_IDLE;
	}
	if (req->status != 200 && req->status != 207)
	{
		record_error(request_problem(req, "reading journal entries"));
		hubsync_http_release(req);
		return READ_IDLE;
	}
	body = hubsync_json_parse(req->response, req->response_len);
	hubsync_http_release(req);
	results = body && JB_ROOT_IS_OBJECT(body) ?
		hubsync_json_get_container(&body->root, "results") : NULL;
	if (results == NULL || !JsonContainerIsArray(results))
	{
		record_error("the journal's answer has no results array");
		return READ_IDLE;
	}

	/* download each entry's file, in order; stop at the first that fails */
	n = hubsync_json_array_size(results);
	initStringInfo(&entries);
	appendStringInfoChar(&entries, '[');
	for (i = 0; i < n; i++)
	{
		JsonbContainer *r = hubsync_json_array_container(results, i);
		char	   *o = r && JsonContainerIsObject(r) ? hubsync_json_get_text(r, "currentOffset") : NULL;
		char	   *url = r && JsonContainerIsObject(r) ? hubsync_json_get_text(r, "url") : NULL;
		HubsyncHttpRequest *dl;
		Jsonb	   *file;

		if (!offset_ok(o) || !download_url_ok(url))
		{
			record_error(psprintf("journal entry %d has no usable currentOffset or download url (https, or loopback http)", i + 1));
			complete = false;
			break;
		}
		dl = download(url);
		if (dl->status != 200)
		{
			record_error(request_problem(dl, "downloading a journal entry"));
			hubsync_http_release(dl);
			complete = false;
			break;
		}
		file = hubsync_json_parse(dl->response, dl->response_len);
		if (file == NULL)
		{
			/*
			 * A file that is not JSON may be a bad transfer: read the entry
			 * again (next tick, a fresh URL) a few times; never block the
			 * journal on it for good.
			 */
			if (strcmp(bad_offset, o) != 0)
			{
				strlcpy(bad_offset, o, sizeof(bad_offset));
				bad_tries = 0;
			}
			if (++bad_tries < JOURNAL_BAD_FILE_TRIES)
			{
				record_error(psprintf("journal entry %s is not JSON; it is read again", o));
				hubsync_http_release(dl);
				complete = false;
				break;
			}
			ereport(WARNING,
					(errmsg("journal entry %s is not JSON after %d reads; its events are skipped",
							o, bad_tries),
					 errhint("The poller's sweeps find the changes it held.")));
		}
		if (got > 0)
			appendStringInfoChar(&entries, ',');
		if (file == NULL)
			appendStringInfoString(&entries, "[]");
		else
			appendBinaryStringInfo(&entries, dl->response, dl->response_len);
		hubsync_http_release(dl);
		last = o;
		got++;
	}
	appendStringInfoChar(&entries, ']');

	if (got > 0)
	{
		Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
		Datum		values[3];
		char		nulls[3] = {' ', ' ', ' '};

		values[0] = offset ? CStringGetTextDatum(offset) : (Datum) 0;
		if (offset == NULL)
			nulls[0] = 'n';
		values[1] = CStringGetTextDatum(last);
		values[2] = CStringGetTextDatum(entries.data);
		if (hubsync_worker_sql("store Webhooks Journal events",
							   "SELECT hubsync._journal_save($1, $2, $3::jsonb)",
							   3, types, values, nulls, NULL) != NULL)
			return READ_IDLE;
	}
	if (got == 0)
		return READ_IDLE;
	return complete && n >= JOURNAL_BATCH ? READ_MORE : READ_STORED;
}

/*
 * hubsync_journal_tick -- read the journal when hubsync.journal_interval
 * says it is due.  Returns true when it stored events (to apply at once)
 * or there is more to read at once.
 */
bool
hubsync_journal_tick(void)
{
	int64		now = hubsync_now_ms();
	int			r;

	if (hubsync_journal_interval <= 0 || now < next_read_ms)
		return false;
	next_read_ms = now + hubsync_journal_interval;
	if (pg_atomic_read_u32(&hubsync_shared->paused) != 0)
		return false;
	if (!hubsync_api_dated())
	{
		if (!legacy_warned)
		{
			ereport(WARNING,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the Webhooks Journal is not read: hubsync.api_version is legacy"),
					 errdetail("hubsync.journal_interval is %d ms, but HubSpot publishes the journal only in date-versioned APIs.",
							   hubsync_journal_interval),
					 errhint("Set hubsync.api_version to 2026-09 or 2026-03, or hubsync.journal_interval to 0.")));
			record_error("hubsync.api_version is legacy: the Webhooks Journal needs a dated version");
			legacy_warned = true;
		}
		return false;
	}
	legacy_warned = false;
	if (!journal_auth())
		return false;
	hubsync_journal_sync_subscriptions();
	r = read_entries();
	if (r == READ_MORE)
		next_read_ms = 0;
	return r != READ_IDLE;
}

/*
 * hubsync_journal_wait_ms -- how long the pull worker may sleep before the
 * next journal read is due (at most idle_ms).
 */
long
hubsync_journal_wait_ms(long idle_ms)
{
	int64		left;

	if (hubsync_journal_interval <= 0)
		return idle_ms;
	left = next_read_ms - hubsync_now_ms();
	return (long) Max(Min((int64) idle_ms, left), 1);
}

/*
 * hubsync_journal_probe -- SQL hubsync._journal_probe(), for
 * hubsync.check(): a client-credentials token with the journal scopes,
 * then one GET of the journal's latest entry with it.  Returns
 * {"token": "ok" | "missing" | "refused" | "failed", "error": why (no
 * secret), "status": the GET's HTTP status (0: not reached)}.  Nothing is
 * stored; not executable by PUBLIC (check() is owner only).
 */
Datum
hubsync_journal_probe(PG_FUNCTION_ARGS)
{
	char	   *client_id;
	char	   *client_secret;
	HubsyncOAuthAnswer a;
	StringInfoData out;

	initStringInfo(&out);
	if (!read_client(&client_id, &client_secret))
		appendStringInfoString(&out, "{\"token\":\"missing\"}");
	else
	{
		hubsync_oauth_client_credentials(client_id, client_secret, JOURNAL_SCOPES, &a);
		explicit_bzero(client_secret, strlen(client_secret));
		if (a.result != HUBSYNC_OAUTH_DONE)
		{
			appendStringInfo(&out, "{\"token\":\"%s\",\"error\":",
							 a.result == HUBSYNC_OAUTH_REFUSED ? "refused" : "failed");
			hubsync_json_escape(&out, a.error ? a.error : "");
			appendStringInfoChar(&out, '}');
		}
		else
		{
			HubsyncHttpRequest *req = hubsync_request_new("GET", journal_url("/latest"), NULL, a.access);

			hubsync_http_perform(req);
			explicit_bzero(a.access, strlen(a.access));
			appendStringInfo(&out, "{\"token\":\"ok\",\"status\":%ld,\"error\":", req->status);
			hubsync_json_escape(&out, req->status == 0 && req->error[0] ? req->error : "");
			appendStringInfoChar(&out, '}');
			hubsync_http_release(req);
		}
	}
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}
