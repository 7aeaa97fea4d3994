/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  Settings of lead enrichment.
 *
 * No secret is ever a setting: tokens and client secrets live in a table
 * only the extension owner can read (see core/credentials.c), so they never
 * reach pg_settings, SHOW or the server log.  Settings the SQL side reads
 * with current_setting() have no C variable outside this file.
 *
 * IDENTIFICATION
 *	  src/enrich/settings.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "miscadmin.h"
#include "utils/guc.h"
#include "enrich/settings.h"

int			hubsync_enrichment_batch_interval = 300;
static int	hubsync_enrichment_max_attempts = 5;
int			hubsync_enrichment_max_inflight = 8;

/*
 * hubsync_enrich_define_settings -- define this area's hubsync.* settings
 * (called from _PG_init).
 */
void
hubsync_enrich_define_settings(void)
{
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
}
