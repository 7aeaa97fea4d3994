/*-------------------------------------------------------------------------
 *
 * guc.c
 *	  hubsync's configuration settings and their validation.
 *
 * No secret is ever a setting: tokens and client secrets live in a table
 * only the extension owner can read (see credentials.c), so they never
 * reach pg_settings, SHOW or the server log.
 *
 * IDENTIFICATION
 *	  src/guc.c
 *
 *-------------------------------------------------------------------------
 */
#include "hubsync.h"

#include <ctype.h>

#include "miscadmin.h"
#include "pgtime.h"
#include "utils/guc.h"
#include "parse_util.h"

char	   *hubsync_database = NULL;
int			hubsync_app_id = 0;
char	   *hubsync_api_base_url = NULL;
bool		hubsync_allow_insecure_http = false;
bool		hubsync_enabled = true;
int			hubsync_webhook_port = 0;
char	   *hubsync_webhook_listen_address = NULL;
char	   *hubsync_webhook_public_url = NULL;
int			hubsync_webhook_max_body = 1024 * 1024;
int			hubsync_webhook_max_age = 300;
int			hubsync_webhook_max_connections = 64;
int			hubsync_webhook_max_header_size = 16 * 1024;
int			hubsync_webhook_timeout = 10;
char	   *hubsync_webhook_tls_cert_file = NULL;
char	   *hubsync_webhook_tls_key_file = NULL;
int			hubsync_batch_size = 100;
int			hubsync_batch_linger = 5;
int			hubsync_max_inflight = 8;
int			hubsync_rate_limit = 100;
int			hubsync_daily_limit = 250000;
int			hubsync_search_rate = 5;
int			hubsync_max_attempts = 10;
int			hubsync_retry_window = 86400;
int			hubsync_poll_interval = 60;
int			hubsync_poll_index_lag = 60;
int			hubsync_poll_trailing_interval = 300;
int			hubsync_poll_archived_interval = 3600;
int			hubsync_poll_association_interval = 3600;
char	   *hubsync_reconcile_at = NULL;
int			hubsync_request_timeout = 30000;
int			hubsync_max_changes_per_xact = 10000;
char	   *hubsync_origin = NULL;
int			hubsync_housekeeping_interval = 10;
int			hubsync_inbox_retention = 7 * 86400;
int			hubsync_changes_retention = 7 * 86400;
int			hubsync_alert_interval = 300;
int			hubsync_alert_pending_age = 900;
int			hubsync_alert_inbound_lag = 300;
int			hubsync_alert_daily_quota = 90;
char	   *hubsync_account_timezone = NULL;
int			hubsync_enrichment_batch_interval = 300;
int			hubsync_enrichment_max_attempts = 5;
int			hubsync_enrichment_max_inflight = 8;

#define HUBSYNC_MAX_ORIGIN_LEN 63

static void define_operations_gucs(void);

/*
 * url_has_http_scheme -- true when the string starts with http:// or
 * https://, the only schemes hubsync speaks.
 */
static bool
url_has_http_scheme(const char *url)
{
	return pg_strncasecmp(url, "http://", 7) == 0 ||
		pg_strncasecmp(url, "https://", 8) == 0;
}

/*
 * check_api_base_url -- the HubSpot API root must be an http(s) URL, and
 * http:// only to loopback (the access token and the OAuth client secret
 * travel to it) unless hubsync.allow_insecure_http is on.  Set that one
 * first when both change.
 */
static bool
check_api_base_url(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || !url_has_http_scheme(*newval))
	{
		GUC_check_errmsg("invalid value for hubsync.api_base_url: \"%s\"",
						 *newval ? *newval : "");
		GUC_check_errhint("Use an http:// or https:// URL, such as https://api.hubapi.com.");
		return false;
	}
	if (!hubsync_allow_insecure_http && hubsync_url_cleartext_remote(*newval))
	{
		GUC_check_errmsg("hubsync.api_base_url \"%s\" would send the HubSpot access token in clear text",
						 *newval);
		GUC_check_errdetail("Plain http:// is accepted only to a loopback host (localhost, 127.0.0.0/8, [::1]).");
		GUC_check_errhint("Use an https:// URL, or set hubsync.allow_insecure_http = on first if the network is trusted.");
		return false;
	}
	return true;
}

/* check_public_url -- empty (derive it) or an http(s) URL */
static bool
check_public_url(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || **newval == '\0' || url_has_http_scheme(*newval))
		return true;
	GUC_check_errmsg("invalid value for hubsync.webhook_public_url: \"%s\"",
					 *newval);
	GUC_check_errhint("Use the full https:// URL HubSpot calls, or an empty string for http://<listen address>:<port>/hubspot/webhooks.");
	return false;
}

/* check_listen_address -- the receiver needs an address to bind */
static bool
check_listen_address(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && **newval != '\0')
		return true;
	GUC_check_errmsg("hubsync.webhook_listen_address must not be empty");
	GUC_check_errhint("Use 127.0.0.1 to listen on loopback behind a proxy, or 0.0.0.0 for all addresses.");
	return false;
}

/*
 * check_origin -- the change tag an application session records.  Tags
 * beginning with "hubspot" are reserved for changes that came from HubSpot,
 * so an application can never make its writes look like HubSpot's.
 */
static bool
check_origin(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;

	if (v == NULL || *v == '\0')
	{
		GUC_check_errmsg("hubsync.origin must not be empty");
		GUC_check_errhint("Use a short tag naming the writer, such as 'app' or 'billing'.");
		return false;
	}
	if (strlen(v) > HUBSYNC_MAX_ORIGIN_LEN)
	{
		GUC_check_errmsg("hubsync.origin is longer than %d characters",
						 HUBSYNC_MAX_ORIGIN_LEN);
		return false;
	}
	if (pg_strncasecmp(v, "hubspot", 7) == 0)
	{
		GUC_check_errmsg("origin tag \"%s\" is reserved", v);
		GUC_check_errdetail("Tags beginning with \"hubspot\" mark changes that came from HubSpot.");
		GUC_check_errhint("Choose another tag, such as 'app' or 'billing'.");
		return false;
	}
	return true;
}

/* check_reconcile_at -- empty (off) or a time of day as HH:MM */
static bool
check_reconcile_at(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;

	if (v == NULL || *v == '\0')
		return true;
	if (strlen(v) == 5 && isdigit((unsigned char) v[0]) &&
		isdigit((unsigned char) v[1]) && v[2] == ':' &&
		isdigit((unsigned char) v[3]) && isdigit((unsigned char) v[4]) &&
		atoi(v) < 24 && atoi(v + 3) < 60)
		return true;
	GUC_check_errmsg("invalid value for hubsync.reconcile_at: \"%s\"", v);
	GUC_check_errhint("Use a time of day as HH:MM (24-hour clock), or an empty string to turn the daily reconciliation off.");
	return false;
}

/*
 * check_account_timezone -- a time zone PostgreSQL knows (as for the
 * TimeZone setting: a name from pg_timezone_names or a POSIX spec); the
 * zone found is handed to assign_account_timezone
 */
static bool
check_account_timezone(char **newval, void **extra, GucSource source)
{
	pg_tz	   *tz = (*newval && **newval) ? pg_tzset(*newval) : NULL;
	const pg_tz **found;

	if (tz == NULL)
	{
		GUC_check_errmsg("invalid value for hubsync.account_timezone: \"%s\"",
						 *newval ? *newval : "");
		GUC_check_errdetail("PostgreSQL knows no time zone of that name.");
		GUC_check_errhint("Use the HubSpot account's time zone as named in pg_timezone_names, such as 'America/New_York' or 'Europe/Berlin'.");
		return false;
	}
	if (!pg_tz_acceptable(tz))
	{
		GUC_check_errmsg("time zone \"%s\" appears to use leap seconds", *newval);
		GUC_check_errhint("Use the same zone without leap seconds (not from the \"right/\" directory).");
		return false;
	}
	found = malloc(sizeof(pg_tz *));
	if (found == NULL)
		return false;
	*found = tz;
	*extra = found;
	return true;
}

/* assign_account_timezone -- quota_day.c counts the days in this zone */
static void
assign_account_timezone(const char *newval, void *extra)
{
	hubsync_account_tz = *(const pg_tz **) extra;
}

/*
 * hubsync_define_gucs -- define every hubsync.* setting and reserve the
 * prefix, so a misspelt setting is reported instead of silently ignored.
 * Settings that need a restart exist only when the library is preloaded
 * (PostgreSQL refuses to create them later).
 */
void
hubsync_define_gucs(void)
{
	if (process_shared_preload_libraries_in_progress)
		DefineCustomStringVariable("hubsync.database",
								   "Database the hubsync workers connect to.",
								   "The extension must be installed in this database.",
								   &hubsync_database, "postgres",
								   PGC_POSTMASTER, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.app_id",
							"HubSpot app id of this installation.",
							"Used to recognise our own writes when HubSpot echoes them back as webhooks; 0 means unknown.",
							&hubsync_app_id, 0, 0, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	/* before hubsync.api_base_url, whose check reads it */
	DefineCustomBoolVariable("hubsync.allow_insecure_http",
							 "Whether hubsync may send requests over plain http:// to hosts other than loopback.",
							 "Off: hubsync.api_base_url and enrichment provider endpoints must be https:// unless they name localhost, 127.0.0.0/8 or [::1], because access tokens and API keys would travel in clear text.",
							 &hubsync_allow_insecure_http, false,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("hubsync.api_base_url",
							   "Root URL of the HubSpot API.",
							   NULL,
							   &hubsync_api_base_url, "https://api.hubapi.com",
							   PGC_SIGHUP, 0, check_api_base_url, NULL, NULL);

	DefineCustomBoolVariable("hubsync.enabled",
							 "Whether the hubsync workers sync at all.",
							 "When off, changes are still captured in the outbox and sent once it is on again.",
							 &hubsync_enabled, true,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.webhook_port",
							"TCP port of the embedded webhook receiver.",
							"0 turns the receiver off.",
							&hubsync_webhook_port, 0, 0, 65535,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("hubsync.webhook_listen_address",
							   "Address the webhook receiver listens on.",
							   NULL,
							   &hubsync_webhook_listen_address, "127.0.0.1",
							   PGC_SIGHUP, 0, check_listen_address, NULL, NULL);

	DefineCustomStringVariable("hubsync.webhook_public_url",
							   "Public URL HubSpot calls for webhooks.",
							   "Its path is the path the receiver serves and it is the URL signed in v3 signatures; empty means http://<listen address>:<port>/hubspot/webhooks.",
							   &hubsync_webhook_public_url, "",
							   PGC_SIGHUP, 0, check_public_url, NULL, NULL);

	DefineCustomIntVariable("hubsync.webhook_max_body",
							"Largest webhook request body accepted.",
							NULL,
							&hubsync_webhook_max_body, 1024 * 1024,
							1024, 64 * 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.webhook_max_age",
							"Largest difference between a webhook's signed timestamp and now.",
							"Older or future deliveries are refused (401); 0 turns the check off, for replaying archived deliveries through hubsync.ingest_webhook.",
							&hubsync_webhook_max_age, 300, 0, 86400,
							PGC_SUSET, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.webhook_max_connections",
							"Most connections the webhook receiver holds open at once.",
							"Further clients wait in the listen queue; one client address may hold at most half of them.",
							&hubsync_webhook_max_connections, 64, 2, 512,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.webhook_max_header_size",
							"Largest request line and headers the webhook receiver reads.",
							"Bigger requests are answered 431 (or the connection is closed) before their body is read.",
							&hubsync_webhook_max_header_size, 16 * 1024, 2048, 1024 * 1024,
							PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.webhook_timeout",
							"Time a webhook client gets to send its request.",
							"A connection idle this long is closed, and so is one still sending its body this long after its headers arrived.",
							&hubsync_webhook_timeout, 10, 1, 300,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomStringVariable("hubsync.webhook_tls_cert_file",
							   "PEM certificate (chain) of the webhook receiver; with webhook_tls_key_file it serves HTTPS.",
							   "Empty (the default) serves plain HTTP, e.g. behind a TLS-terminating proxy.",
							   &hubsync_webhook_tls_cert_file, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	DefineCustomStringVariable("hubsync.webhook_tls_key_file",
							   "PEM private key of the webhook receiver's certificate.",
							   "Read by the webhook worker when the receiver starts; keep it readable by the server's user only.",
							   &hubsync_webhook_tls_key_file, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.batch_size",
							"Most records sent in one HubSpot batch request.",
							NULL,
							&hubsync_batch_size, 100, 1, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.batch_linger",
							"Longest wait for a batch to fill when more changes are queued.",
							NULL,
							&hubsync_batch_linger, 5, 0, 10000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.max_inflight",
							"Most HubSpot requests in flight at once.",
							NULL,
							&hubsync_max_inflight, 8, 1, 64,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.rate_limit",
							"HubSpot requests allowed per rolling 10 seconds.",
							"Lowered automatically when HubSpot's X-HubSpot-RateLimit-Max header says less.",
							&hubsync_rate_limit, 100, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.daily_limit",
							"HubSpot requests allowed per day.",
							"0 means no daily budget.",
							&hubsync_daily_limit, 250000, 0, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.search_rate",
							"HubSpot search requests allowed per second.",
							NULL,
							&hubsync_search_rate, 5, 1, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.max_attempts",
							"Attempts at a change that keeps failing transiently before it is dead-lettered.",
							"A change is dead-lettered only after this many attempts and hubsync.retry_window.",
							&hubsync_max_attempts, 10, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.retry_window",
							"Shortest time transient failures are retried before a change is dead-lettered.",
							NULL,
							&hubsync_retry_window, 86400, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.poll_interval",
							"Time between searches for records changed in HubSpot.",
							NULL,
							&hubsync_poll_interval, 60, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.poll_index_lag",
							"Longest delay before a HubSpot change shows in search that the trailing sweep covers.",
							"The trailing sweep searches again, once they are this old, the records the fast poll already passed.",
							&hubsync_poll_index_lag, 60, 0, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.poll_trailing_interval",
							"Time between trailing sweeps (records that entered the search index late).",
							NULL,
							&hubsync_poll_trailing_interval, 300, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.poll_archived_interval",
							"Time between sweeps of archived HubSpot records (search never shows them).",
							NULL,
							&hubsync_poll_archived_interval, 3600, 1, 604800,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.poll_association_interval",
							"Time between sweeps of associations (search never shows their changes).",
							NULL,
							&hubsync_poll_association_interval, 3600, 1, 604800,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomStringVariable("hubsync.reconcile_at",
							   "Time of day (HH:MM, server time zone) of the daily reconciliation.",
							   "An empty string turns it off.",
							   &hubsync_reconcile_at, "06:00",
							   PGC_SIGHUP, 0, check_reconcile_at, NULL, NULL);

	DefineCustomIntVariable("hubsync.request_timeout",
							"Longest time one HubSpot request may take.",
							NULL,
							&hubsync_request_timeout, 30000, 100, 600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.max_changes_per_xact",
							"Most changes one transaction may enqueue for HubSpot.",
							"A guard against accidental mass updates; 0 means no limit.",
							&hubsync_max_changes_per_xact, 10000, 0, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("hubsync.origin",
							   "Tag recorded with every change this session makes.",
							   "Tags beginning with \"hubspot\" are reserved.",
							   &hubsync_origin, "app",
							   PGC_USERSET, 0, check_origin, NULL, NULL);

	DefineCustomIntVariable("hubsync.enrichment_batch_interval",
							"Time between runs of the enrichment batch lane.",
							"Records matched by batch rules are collected and sent to their provider in as few calls as it allows.",
							&hubsync_enrichment_batch_interval, 300, 1, 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.enrichment_max_attempts",
							"Attempts at an enrichment that keeps failing transiently (timeout, 429, 5xx) before it is marked failed.",
							NULL,
							&hubsync_enrichment_max_attempts, 5, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.enrichment_max_inflight",
							"Most enrichment provider calls in flight at once.",
							NULL,
							&hubsync_enrichment_max_inflight, 8, 1, 64,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	define_operations_gucs();
	MarkGUCPrefixReserved("hubsync");
}

/*
 * define_operations_gucs -- housekeeping and alert settings (issue 10).
 * The SQL side (hubsync._prune, hubsync._check_alerts) reads them with
 * current_setting(), so their units must stay PostgreSQL interval input.
 */
static void
define_operations_gucs(void)
{
	DefineCustomIntVariable("hubsync.housekeeping_interval",
							"Time between two housekeeping rounds (pruning, alert checks).",
							NULL,
							&hubsync_housekeeping_interval, 10, 1, 3600,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.inbox_retention",
							"How long applied and skipped webhook events stay in hubsync.inbox.",
							"Failed events are kept until deleted by hand; 0 keeps everything.",
							&hubsync_inbox_retention, 7 * 86400, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.changes_retention",
							"How long rows stay in the change feed hubsync.changes.",
							"0 keeps everything.",
							&hubsync_changes_retention, 7 * 86400, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.alert_interval",
							"Shortest time between two alerts of the same kind and subject.",
							"Alerts in between are counted and reported with the next one.",
							&hubsync_alert_interval, 300, 1, 7 * 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.alert_pending_age",
							"Alert when the oldest change waiting for HubSpot is older than this.",
							"0 turns the alert off.",
							&hubsync_alert_pending_age, 900, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.alert_inbound_lag",
							"Alert when the oldest HubSpot change not yet applied is older than this.",
							"0 turns the alert off.",
							&hubsync_alert_inbound_lag, 300, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.alert_daily_quota",
							"Alert when this percentage of hubsync.daily_limit has been used today.",
							"0 turns the alert off.",
							&hubsync_alert_daily_quota, 90, 0, 100,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("hubsync.account_timezone",
							   "Time zone of the HubSpot account: its daily request allowance resets at midnight there.",
							   "The daily budget (hubsync.daily_limit) starts again, and a DAILY 429 parks the workers, until midnight in this zone.",
							   &hubsync_account_timezone, "UTC",
							   PGC_SIGHUP, 0, check_account_timezone,
							   assign_account_timezone, NULL);
}
