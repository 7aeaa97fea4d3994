/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  Settings every part of hubsync reads: the database, on/off, the
 *	  shared quota, the account's time zone, whether the receiver runs.
 *
 * IDENTIFICATION
 *	  src/core/settings.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_CORE_SETTINGS_H
#define HUBSYNC_CORE_SETTINGS_H

extern char *hubsync_database;
extern bool hubsync_enabled;
extern int	hubsync_webhook_port;
extern int	hubsync_rate_limit;
extern int	hubsync_daily_limit;
extern int	hubsync_search_rate;

extern void hubsync_core_define_settings(void);

#endif							/* HUBSYNC_CORE_SETTINGS_H */
