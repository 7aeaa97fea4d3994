/*-------------------------------------------------------------------------
 *
 * pull_worker.c
 *	  Main loop of the "hubsync pull" background worker: applies the
 *	  webhook events stored in hubsync.inbox (apply.c).  The receiver and
 *	  hubsync.ingest_webhook() wake it after each stored delivery.  Between
 *	  inbox rounds it does a slice of the polling safety net (poll.c), of
 *	  a running backfill (backfill.c) and of the daily reconciliation
 *	  (reconcile.c), and the housekeeping round (housekeeping.c); the inbox
 *	  always comes first.  Every hubsync.journal_interval it reads the
 *	  Webhooks Journal (journal.c), whose events land in the inbox too.
 *
 * IDENTIFICATION
 *	  src/pull/pull_worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "storage/ipc.h"

#include "miscadmin.h"
#include "utils/memutils.h"
#include "pull/apply.h"
#include "hubspot/hubspot_read.h"
#include "bgw/worker.h"
#include "pull/housekeeping.h"
#include "pull/bi_sync.h"
#include "pull/journal.h"

PGDLLEXPORT void hubsync_pull_worker_main(Datum main_arg) pg_attribute_noreturn();

/* back-off while events wait for a HubSpot read that failed */
#define HUBSYNC_PULL_RETRY_MS 2000

/*
 * pull_loop -- apply inbox events as they arrive; idle quietly
 * while the extension is missing or the server is a standby.
 */
static void
pull_loop(void)
{
	MemoryContext loop_cxt = AllocSetContextCreate(TopMemoryContext,
												   "hubsync pull loop",
												   ALLOCSET_DEFAULT_SIZES);

	for (;;)
	{
		bool		ready;
		bool		retry_later = false;
		bool		busy = false;
		int			n = 0;

		MemoryContextSwitchTo(loop_cxt);
		ready = hubsync_worker_check_ready();
		if (ready)
		{
			n = hubsync_apply_inbox(HUBSYNC_APPLY_BATCH, &retry_later);
			hubsync_housekeeping();
		}
		if (ready && n < HUBSYNC_APPLY_BATCH)
		{
			/* the journal and polling fill the inbox: the next round applies it */
			busy |= hubsync_journal_tick();
			MemoryContextReset(loop_cxt);
			busy |= hubsync_poll_tick();
			MemoryContextReset(loop_cxt);
			busy |= hubsync_backfill_tick();
			MemoryContextReset(loop_cxt);
			busy |= hubsync_reconcile_tick();
			MemoryContextReset(loop_cxt);
			busy |= hubsync_metadata_tick();
			MemoryContextReset(loop_cxt);
			busy |= hubsync_history_tick();
		}
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(loop_cxt);

		if ((n >= HUBSYNC_APPLY_BATCH && !retry_later) || busy)
		{
			/* more waiting: go on at once, but stay interruptible */
			hubsync_worker_consume_wake();
			hubsync_worker_handle_interrupts();
			continue;
		}
		/* woken by new work: it may be a backfill just started */
		if (hubsync_worker_wait(!ready ? 5000L : retry_later ? HUBSYNC_PULL_RETRY_MS :
								hubsync_journal_wait_ms(1000L)))
			hubsync_backfill_wake();
	}
}

/*
 * hubsync_pull_worker_main -- the pull worker's entry point, registered by
 * name (bgw_function_name): the common start-up, then its loop.
 */
void
hubsync_pull_worker_main(Datum main_arg)
{
	hubsync_worker_start(HUBSYNC_WORKER_PULL);
	pull_loop();
	/* the loop never returns; if it did, let the postmaster restart us */
	proc_exit(1);
}
