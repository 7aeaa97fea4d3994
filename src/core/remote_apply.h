/*-------------------------------------------------------------------------
 *
 * remote_apply.h
 *	  Whether this process is applying HubSpot's changes to the mirror.
 *
 * IDENTIFICATION
 *	  src/core/remote_apply.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_REMOTE_APPLY_H
#define HUBSYNC_REMOTE_APPLY_H

/*
 * Set only by hubsync's own workers while they apply HubSpot's changes;
 * writes made meanwhile are not captured.  No SQL can set it.
 */
extern bool hubsync_applying_remote;

#endif							/* HUBSYNC_REMOTE_APPLY_H */
