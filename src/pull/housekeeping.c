/*-------------------------------------------------------------------------
 *
 * housekeeping.c
 *	  The periodic round the "hubsync pull" worker makes every
 *	  hubsync.housekeeping_interval: alert checks (hubsync._check_alerts),
 *	  pruning of the inbox, the change feed and old alert rows by their
 *	  retention settings in small batches (hubsync._prune), and giving a
 *	  drained outbox its disk space back (hubsync._shrink_outbox).
 *
 * Each step runs in its own short transaction, so pruning a large backlog
 * never holds locks or a snapshot for long, and a failing step is logged
 * and skipped without stopping the worker that runs it.
 *
 * IDENTIFICATION
 *	  src/pull/housekeeping.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "bgw/worker.h"
#include "pull/housekeeping.h"
#include "pull/settings.h"

/* rows deleted per statement and transaction */
#define PRUNE_BATCH 5000
/* batches per round, so the pull worker's own work is never held up long */
#define PRUNE_MAX_BATCHES 40
/* a drained outbox bigger than this is truncated */
#define SHRINK_MIN_BYTES (8 * 1024 * 1024)

static int64 next_round_ms = 0;

/*
 * run_step -- run one statement in its own transaction and return the
 * bigint it yields (0 for NULL).  An error is logged and yields -1: the
 * round goes on and the worker stays up.
 */
static int64
run_step(const char *activity, const char *sql)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile int64 result = 0;

	PG_TRY();
	{
		if (hubsync_worker_begin_xact(activity))
		{
			bool		isnull;
			Datum		d;

			SPI_connect();
			if (SPI_execute(sql, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
				elog(ERROR, "could not run \"%s\"", sql);
			d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
			if (!isnull)
				result = DatumGetInt64(d);
			SPI_finish();
		}
		hubsync_worker_end_xact();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
		pgstat_report_activity(STATE_IDLE, NULL);
		result = -1;
	}
	PG_END_TRY();
	return result;
}

/*
 * hubsync_housekeeping -- make a round if one is due.  Called by the pull
 * worker on every pass of its loop while hubsync is ready.
 */
void
hubsync_housekeeping(void)
{
	int64		now = hubsync_now_ms();
	int			i;
	char		sql[128];

	if (now < next_round_ms)
		return;
	next_round_ms = now + (int64) hubsync_housekeeping_interval * 1000;

	(void) run_step("hubsync housekeeping: checking alert thresholds",
					"SELECT hubsync._check_alerts()::bigint");

	snprintf(sql, sizeof(sql), "SELECT hubsync._prune(%d)", PRUNE_BATCH);
	for (i = 0; i < PRUNE_MAX_BATCHES; i++)
	{
		int64		n = run_step("hubsync housekeeping: pruning inbox, change feed and alerts", sql);

		if (n < PRUNE_BATCH)
			break;
		hubsync_worker_handle_interrupts();
	}

	snprintf(sql, sizeof(sql), "SELECT hubsync._shrink_outbox(%d)::int::bigint", SHRINK_MIN_BYTES);
	(void) run_step("hubsync housekeeping: giving a drained outbox its space back", sql);
}
