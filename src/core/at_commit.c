/*-------------------------------------------------------------------------
 *
 * at_commit.c
 *	  Work for the moment the current transaction commits: waking a
 *	  worker, or another action, once however often it was asked for.
 *
 * Whatever queues work for a worker (the capture trigger, the inbox, the
 * enrichment trigger) must wake it only when the work is visible, that is
 * at commit, and not at all when the transaction aborts.  One transaction
 * callback, registered once per backend, serves them all: a bit per
 * worker kind, and a short list of other actions (credentials changed,
 * wake every worker).  Without shared memory (hubsync not preloaded)
 * there is no worker to wake and nothing is recorded.
 *
 * IDENTIFICATION
 *	  src/core/at_commit.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "access/xact.h"
#include "core/at_commit.h"

#define MAX_COMMIT_ACTIONS 4

static bool callback_registered = false;
static uint32 wake_mask = 0;	/* bit (1 << kind) per worker to wake */
static HubsyncCommitAction actions[MAX_COMMIT_ACTIONS];
static int	nactions = 0;

/* at_commit_callback -- at commit run what was asked; at abort forget it */
static void
at_commit_callback(XactEvent event, void *arg)
{
	int			i;

	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			for (i = 0; i < HUBSYNC_NUM_WORKERS; i++)
				if (wake_mask & (1U << i))
					hubsync_wake_worker((HubsyncWorkerKind) i);
			for (i = 0; i < nactions; i++)
				actions[i] ();
			/* FALLTHROUGH */
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			wake_mask = 0;
			nactions = 0;
			break;
		default:
			break;
	}
}

/* register_callback -- the one transaction callback, on first use */
static void
register_callback(void)
{
	if (!callback_registered)
	{
		RegisterXactCallback(at_commit_callback, NULL);
		callback_registered = true;
	}
}

/* hubsync_wake_at_commit -- wake a worker when this transaction commits */
void
hubsync_wake_at_commit(HubsyncWorkerKind kind)
{
	if (!hubsync_shmem_available())
		return;
	register_callback();
	wake_mask |= 1U << kind;
}

/*
 * hubsync_at_commit -- run action when this transaction commits (once,
 * however often it is asked for).
 */
void
hubsync_at_commit(HubsyncCommitAction action)
{
	int			i;

	if (!hubsync_shmem_available())
		return;
	register_callback();
	for (i = 0; i < nactions; i++)
		if (actions[i] == action)
			return;
	if (nactions >= MAX_COMMIT_ACTIONS)
		elog(ERROR, "too many hubsync commit actions");
	actions[nactions++] = action;
}
