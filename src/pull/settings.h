/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  Settings of the pull worker: polling, reconciliation, housekeeping
 *	  and alert thresholds.
 *
 * IDENTIFICATION
 *	  src/pull/settings.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_PULL_SETTINGS_H
#define HUBSYNC_PULL_SETTINGS_H

extern int	hubsync_poll_interval;
extern int	hubsync_poll_index_lag;
extern int	hubsync_poll_trailing_interval;
extern int	hubsync_poll_archived_interval;
extern int	hubsync_poll_association_interval;
extern char *hubsync_reconcile_at;
extern int	hubsync_housekeeping_interval;
extern int	hubsync_metadata_refresh_interval;
extern int	hubsync_journal_interval;
extern int	hubsync_portal_id;

extern void hubsync_pull_define_settings(void);

#endif							/* HUBSYNC_PULL_SETTINGS_H */
