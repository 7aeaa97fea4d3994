/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  Settings of the push path: batching, retries, the per-transaction
 *	  guard, the origin tag.
 *
 * No secret is ever a setting: tokens and client secrets live in a table
 * only the extension owner can read (see core/credentials.c), so they never
 * reach pg_settings, SHOW or the server log.  Settings the SQL side reads
 * with current_setting() have no C variable outside this file.
 *
 * IDENTIFICATION
 *	  src/push/settings.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "miscadmin.h"
#include "utils/guc.h"
#include "push/settings.h"

#define HUBSYNC_MAX_ORIGIN_LEN 63

int			hubsync_batch_size = 100;
int			hubsync_batch_linger = 5;
int			hubsync_max_attempts = 10;
int			hubsync_retry_window = 86400;
int			hubsync_max_changes_per_xact = 10000;
char	   *hubsync_origin = NULL;

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

/*
 * hubsync_push_define_settings -- define this area's hubsync.* settings
 * (called from _PG_init).
 */
void
hubsync_push_define_settings(void)
{
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
}
