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
#include "hubspot/settings.h"
#include "util/parse_util.h"

char	   *hubsync_api_base_url = NULL;
int			hubsync_max_inflight = 8;
int			hubsync_request_timeout = 30000;

/* check_api_base_url -- the HubSpot API root must be an http(s) URL */
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
	return true;
}

/*
 * hubsync_hubspot_define_settings -- define this area's hubsync.* settings
 * (called from _PG_init).
 */
void
hubsync_hubspot_define_settings(void)
{
	DefineCustomStringVariable("hubsync.api_base_url",
							   "Root URL of the HubSpot API.",
							   NULL,
							   &hubsync_api_base_url, "https://api.hubapi.com",
							   PGC_SIGHUP, 0, check_api_base_url, NULL, NULL);

	DefineCustomIntVariable("hubsync.max_inflight",
							"Most HubSpot requests in flight at once.",
							NULL,
							&hubsync_max_inflight, 8, 1, 64,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.request_timeout",
							"Longest time one HubSpot request may take.",
							NULL,
							&hubsync_request_timeout, 30000, 100, 600000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
}
