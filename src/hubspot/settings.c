/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  Settings of the HubSpot client: where the API is, request timeout,
 *	  requests in flight.
 *
 * No secret is ever a setting: tokens and client secrets live in a table
 * only the extension owner can read (see core/credentials.c), so they never
 * reach pg_settings, SHOW or the server log.  Settings the SQL side reads
 * with current_setting() have no C variable outside this file.
 *
 * IDENTIFICATION
 *	  src/hubspot/settings.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "miscadmin.h"
#include "utils/guc.h"
#include "core/quota.h"
#include "hubspot/api_paths.h"
#include "hubspot/settings.h"
#include "util/parse_util.h"

char	   *hubsync_api_base_url = NULL;
bool		hubsync_allow_insecure_http = false;
int			hubsync_max_inflight = 8;
int			hubsync_request_timeout = 30000;

static const struct config_enum_entry api_version_options[] = {
	{"2026-09", HUBSYNC_API_2026_09, false},
	{"2026-03", HUBSYNC_API_2026_03, false},
	{"legacy", HUBSYNC_API_LEGACY, false},
	{NULL, 0, false}
};

/*
 * check_api_base_url -- the HubSpot API root must be an http(s) URL, and
 * http:// only to loopback (the access token and the OAuth client secret
 * travel to it) unless hubsync.allow_insecure_http is on.  Set that one
 * first when both change.
 */
static bool
check_api_base_url(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || !hubsync_url_has_http_scheme(*newval))
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

/*
 * assign_request_timeout -- the quota counts an unanswered request in its
 * window for as long as it may still arrive at HubSpot
 */
static void
assign_request_timeout(int newval, void *extra)
{
	hubsync_quota_flight_ms = newval;
}

/*
 * hubsync_hubspot_define_settings -- define this area's hubsync.* settings
 * (called from _PG_init).
 */
void
hubsync_hubspot_define_settings(void)
{
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

	DefineCustomEnumVariable("hubsync.api_version",
							 "Which HubSpot API version family hubsync calls.",
							 "2026-09 and 2026-03 are HubSpot's date-versioned paths (/crm/objects/2026-09/...); legacy is the numbered v3/v4 paths and the OAuth v1 token endpoint, which HubSpot stops supporting in 2027.",
							 &hubsync_api_version, HUBSYNC_API_2026_09,
							 api_version_options,
							 PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.max_inflight",
							"Most HubSpot requests in flight at once.",
							NULL,
							&hubsync_max_inflight, 8, 1, 64,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.request_timeout",
							"Longest time one HubSpot request may take.",
							NULL,
							&hubsync_request_timeout, 30000, 100, 600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, assign_request_timeout, NULL);
}
