/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  Settings every part of hubsync reads: the database, on/off, the
 *	  shared quota, the account's time zone, whether the receiver runs.
 *
 * No secret is ever a setting: tokens and client secrets live in a table
 * only the extension owner can read (see core/credentials.c), so they never
 * reach pg_settings, SHOW or the server log.  Settings the SQL side reads
 * with current_setting() have no C variable outside this file.
 *
 * IDENTIFICATION
 *	  src/core/settings.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "miscadmin.h"
#include "pgtime.h"
#include "utils/guc.h"
#include "core/settings.h"

char	   *hubsync_database = NULL;
static int	hubsync_app_id = 0;
bool		hubsync_enabled = true;
int			hubsync_webhook_port = 0;
int			hubsync_rate_limit = 100;
int			hubsync_daily_limit = 250000;
int			hubsync_search_rate = 5;
static char *hubsync_account_timezone = NULL;

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
 * hubsync_core_define_settings -- define this area's hubsync.* settings (called
 * from _PG_init; settings that need a restart exist only when the library
 * is preloaded, as PostgreSQL refuses to create them later).
 */
void
hubsync_core_define_settings(void)
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

	DefineCustomStringVariable("hubsync.account_timezone",
							   "Time zone of the HubSpot account: its daily request allowance resets at midnight there.",
							   "The daily budget (hubsync.daily_limit) starts again, and a DAILY 429 parks the workers, until midnight in this zone.",
							   &hubsync_account_timezone, "UTC",
							   PGC_SIGHUP, 0, check_account_timezone,
							   assign_account_timezone, NULL);
}
