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
 * IDENTIFICATION
 *	  src/pull/journal.c
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

static int64 next_read_ms = 0;
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

/*
 * hubsync_journal_call -- one journal API request with this process's
 * token.  The journal is exempt from the rate limits, so no quota is
 * taken; the answer still tells the authentication state (a 401), but its
 * limit headers and 429s are the journal's own and stay out of the shared
 * quota.
 */
HubsyncHttpRequest *
hubsync_journal_call(const char *method, char *url, char *body)
{
	HubsyncHttpRequest *req = hubsync_request_new(method, url, body, NULL);

	req->quota_class = (int) HUBSYNC_QUOTA_BULK;
	hubsync_http_perform(req);
	if (req->status != 429)
	{
		req->rl_max = req->rl_remaining = req->rl_daily_remaining = -1;
		hubsync_observe_response(req);
	}
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
	hubsync_refresh_credentials();
	if (hubsync_auth_blocked())
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
