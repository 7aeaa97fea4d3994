/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  Settings of the push path: batching, retries, the per-transaction
 *	  guard, the origin tag.
 *
 * IDENTIFICATION
 *	  src/push/settings.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_PUSH_SETTINGS_H
#define HUBSYNC_PUSH_SETTINGS_H

extern int	hubsync_batch_size;
extern int	hubsync_batch_linger;
extern int	hubsync_max_attempts;
extern int	hubsync_retry_window;
extern int	hubsync_max_changes_per_xact;
extern char *hubsync_origin;

extern void hubsync_push_define_settings(void);

#endif							/* HUBSYNC_PUSH_SETTINGS_H */
