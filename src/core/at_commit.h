/*-------------------------------------------------------------------------
 *
 * at_commit.h
 *	  Work for the moment the current transaction commits: waking a
 *	  worker, or another action, once however often it was asked for.
 *
 * IDENTIFICATION
 *	  src/core/at_commit.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_AT_COMMIT_H
#define HUBSYNC_AT_COMMIT_H

#include "core/hubsync.h"

typedef void (*HubsyncCommitAction) (void);

extern void hubsync_wake_at_commit(HubsyncWorkerKind kind);
extern void hubsync_at_commit(HubsyncCommitAction action);

#endif							/* HUBSYNC_AT_COMMIT_H */
