/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  Settings of the pull worker: polling, reconciliation, housekeeping
 *	  and alert thresholds.
 *
 * No secret is ever a setting: tokens and client secrets live in a table
 * only the extension owner can read (see core/credentials.c), so they never
 * reach pg_settings, SHOW or the server log.  Settings the SQL side reads
 * with current_setting() have no C variable outside this file.
 *
 * IDENTIFICATION
 *	  src/pull/settings.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include <ctype.h>

#include "miscadmin.h"
#include "utils/guc.h"
#include "pull/settings.h"

int			hubsync_poll_interval = 60;
int			hubsync_poll_index_lag = 60;
int			hubsync_poll_trailing_interval = 300;
int			hubsync_poll_archived_interval = 3600;
int			hubsync_poll_association_interval = 3600;
char	   *hubsync_reconcile_at = NULL;
int			hubsync_housekeeping_interval = 10;
int			hubsync_metadata_refresh_interval = 3600;
int			hubsync_journal_interval = 0;
int			hubsync_portal_id = 0;
static int	hubsync_inbox_retention = 7 * 86400;
static int	hubsync_changes_retention = 7 * 86400;
static int	hubsync_alert_interval = 300;
static int	hubsync_alert_pending_age = 900;
static int	hubsync_alert_inbound_lag = 300;
static int	hubsync_alert_daily_quota = 90;
static int	hubsync_alert_poll_failing = 900;
static int	hubsync_alert_worker_down = 60;
static int	hubsync_alert_webhook_refused = 10;

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
 * hubsync_pull_define_settings -- define this area's hubsync.* settings
 * (called from _PG_init).
 */
void
hubsync_pull_define_settings(void)
{
	DefineCustomIntVariable("hubsync.metadata_refresh_interval",
							"Time between copies of HubSpot's owners and pipelines into hubspot.owners, hubspot.pipelines and hubspot.pipeline_stages.",
							"0: only when the pull worker starts and when hubsync.refresh_metadata() asks.",
							&hubsync_metadata_refresh_interval, 3600, 0, 7 * 86400,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.journal_interval",
							"Time between reads of HubSpot's Webhooks Journal (0 = off).",
							"The pull worker reads the journal from its stored offset this often; needs a dated hubsync.api_version.",
							&hubsync_journal_interval, 0, 0, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.portal_id",
							"The HubSpot account (portal) id hubsync syncs (0 = not set).",
							"Webhooks Journal subscriptions name the account; journal reads pass it as installPortalId.",
							&hubsync_portal_id, 0, 0, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

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

	DefineCustomIntVariable("hubsync.alert_poll_failing",
							"Alert when the poller of an object type has kept failing for longer than this.",
							"0 turns the alert off.",
							&hubsync_alert_poll_failing, 900, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.alert_worker_down",
							"Alert when a hubsync worker has not been running for longer than this.",
							"0 turns the alert off. The pull worker sends it, so its own absence is not alerted.",
							&hubsync_alert_worker_down, 60, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);

	DefineCustomIntVariable("hubsync.alert_webhook_refused",
							"Alert when more webhook deliveries than this were refused for a bad signature since the last check.",
							"0 turns the alert off.",
							&hubsync_alert_webhook_refused, 10, 0, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
}
