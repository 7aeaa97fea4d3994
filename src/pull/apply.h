/*-------------------------------------------------------------------------
 *
 * apply.h
 *	  Applying stored webhook events (hubsync.inbox) to the mirror.
 *
 * IDENTIFICATION
 *	  src/pull/apply.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_APPLY_H
#define HUBSYNC_APPLY_H

/* events taken per round; one transaction per round */
#define HUBSYNC_APPLY_BATCH 2000

extern int	hubsync_apply_inbox(int limit, bool *retry_later);

#endif							/* HUBSYNC_APPLY_H */
