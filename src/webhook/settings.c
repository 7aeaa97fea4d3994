/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  Settings of the embedded webhook receiver.
 *
 * No secret is ever a setting: tokens and client secrets live in a table
 * only the extension owner can read (see core/credentials.c), so they never
 * reach pg_settings, SHOW or the server log.  Settings the SQL side reads
 * with current_setting() have no C variable outside this file.
 *
 * IDENTIFICATION
 *	  src/webhook/settings.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "miscadmin.h"
#include "utils/guc.h"
#include "webhook/settings.h"
#include "util/parse_util.h"

char	   *hubsync_webhook_listen_address = NULL;
char	   *hubsync_webhook_public_url = NULL;
int			hubsync_webhook_max_body = 1024 * 1024;
int			hubsync_webhook_max_age = 300;
int			hubsync_webhook_max_connections = 64;
int			hubsync_webhook_max_header_size = 16 * 1024;
int			hubsync_webhook_timeout = 10;
int			hubsync_webhook_header_timeout = 5;
int			hubsync_webhook_max_connections_per_address = 16;
bool		hubsync_webhook_legacy_signatures = false;
char	   *hubsync_webhook_tls_cert_file = NULL;
char	   *hubsync_webhook_tls_key_file = NULL;
int			hubsync_metrics_port = 0;
char	   *hubsync_metrics_listen_address = NULL;

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

/* check_metrics_listen_address -- the metrics endpoint needs an address */
static bool
check_metrics_listen_address(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && **newval != '\0')
		return true;
	GUC_check_errmsg("hubsync.metrics_listen_address must not be empty");
	GUC_check_errhint("Use 127.0.0.1 for a Prometheus on this host, or the address it scrapes.");
	return false;
}

/* check_public_url -- empty (derive it) or an http(s) URL */
static bool
check_public_url(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || **newval == '\0' || hubsync_url_has_http_scheme(*newval))
		return true;
	GUC_check_errmsg("invalid value for hubsync.webhook_public_url: \"%s\"",
					 *newval);
	GUC_check_errhint("Use the full https:// URL HubSpot calls, or an empty string for http://<listen address>:<port>/hubspot/webhooks.");
	return false;
}

/*
 * hubsync_webhook_define_settings -- define this area's hubsync.* settings
 * (called from _PG_init).
 */
void
hubsync_webhook_define_settings(void)
{
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
							"Further clients wait in the listen queue; one client address may hold at most hubsync.webhook_max_connections_per_address of them.",
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

	DefineCustomIntVariable("hubsync.webhook_header_timeout",
							"Time a webhook client gets to send its request line and headers.",
							"Counted from the connection's start (or the end of its previous request), not from its last byte: a client trickling its headers is cut off, and so is a kept-alive connection idle this long.",
							&hubsync_webhook_header_timeout, 5, 1, 300,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.webhook_max_connections_per_address",
							"Most connections one client address may hold open at the webhook receiver.",
							"Further connections from that address are closed at once. Behind a proxy every connection comes from the proxy's address: raise it to hubsync.webhook_max_connections there and limit clients in the proxy.",
							&hubsync_webhook_max_connections_per_address, 16, 1, 512,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomBoolVariable("hubsync.webhook_legacy_signatures",
							 "Whether webhook deliveries signed only with v1 or v2 signatures are accepted.",
							 "Off by default: v1 and v2 sign no timestamp, so a captured delivery could be replayed for ever. Only v3 (signed timestamp within hubsync.webhook_max_age) is accepted unless this is on.",
							 &hubsync_webhook_legacy_signatures, false,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

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

	DefineCustomIntVariable("hubsync.metrics_port",
							"TCP port of the Prometheus metrics endpoint (GET /metrics).",
							"Served by the webhook worker; 0 (the default) turns it off.",
							&hubsync_metrics_port, 0, 0, 65535,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomStringVariable("hubsync.metrics_listen_address",
							   "Address the Prometheus metrics endpoint listens on.",
							   "The endpoint has no authentication: keep it on loopback or a monitoring network.",
							   &hubsync_metrics_listen_address, "127.0.0.1",
							   PGC_SIGHUP, 0, check_metrics_listen_address, NULL, NULL);
}
