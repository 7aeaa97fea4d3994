/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  What every hubsync background worker shares: registration, start-up,
 *	  signals, the readiness check and the latch wait.
 *
 * hubsync runs four static workers in the database named by
 * hubsync.database, each visible in pg_stat_activity with its own
 * backend_type: "hubsync push" (outbox to HubSpot), "hubsync pull" (inbox,
 * polling, backfill, reconciliation), "hubsync webhook" (the receiver) and
 * "hubsync enrich" (lead enrichment, so a slow provider never holds up
 * pushes or webhooks).
 * They start only once recovery has finished, so none runs on a standby,
 * and the postmaster restarts them a few seconds after any exit: they exit
 * only through die() (SIGTERM, exit code 1) or an unexpected error, never
 * with code 0, which would unregister them.
 *
 * IDENTIFICATION
 *	  src/bgw/worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "executor/spi.h"
#include "commands/extension.h"
#include "storage/lmgr.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"
#include "bgw/worker.h"

#define HUBSYNC_RESTART_SECONDS 5

const char *const hubsync_worker_names[HUBSYNC_NUM_WORKERS] = {
	"hubsync push", "hubsync pull", "hubsync webhook", "hubsync enrich"
};

/*
 * Each kind's entry point, found by name in the library: each feature
 * area defines its own, so this runtime calls none of them.
 */
static const char *const hubsync_worker_entry_points[HUBSYNC_NUM_WORKERS] = {
	"hubsync_push_worker_main", "hubsync_pull_worker_main",
	"hubsync_webhook_worker_main", "hubsync_enrich_worker_main"
};

HubsyncWorkerKind hubsync_my_worker_kind;

/* hubsync_worker_state_name -- the word status views show for a state */
const char *
hubsync_worker_state_name(HubsyncWorkerState state)
{
	switch (state)
	{
		case HUBSYNC_STATE_STOPPED:
			return "stopped";
		case HUBSYNC_STATE_STARTING:
			return "starting";
		case HUBSYNC_STATE_IDLE_NO_EXTENSION:
			return "idle: extension not installed";
		case HUBSYNC_STATE_IDLE_STANDBY:
			return "idle: standby";
		case HUBSYNC_STATE_DISABLED:
			return "idle: disabled";
		case HUBSYNC_STATE_IDLE_VERSION:
			return "idle: extension version mismatch";
		case HUBSYNC_STATE_RUNNING:
			return "running";
	}
	return "unknown";
}

/*
 * hubsync_register_workers -- register the static workers (from _PG_init,
 * only when preloaded).
 */
void
hubsync_register_workers(void)
{
	int			i;

	for (i = 0; i < HUBSYNC_NUM_WORKERS; i++)
	{
		BackgroundWorker worker;

		memset(&worker, 0, sizeof(worker));
		worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
			BGWORKER_BACKEND_DATABASE_CONNECTION;
		worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
		worker.bgw_restart_time = HUBSYNC_RESTART_SECONDS;
		strlcpy(worker.bgw_library_name, "hubsync", BGW_MAXLEN);
		strlcpy(worker.bgw_function_name, hubsync_worker_entry_points[i], BGW_MAXLEN);
		strlcpy(worker.bgw_name, hubsync_worker_names[i], BGW_MAXLEN);
		strlcpy(worker.bgw_type, hubsync_worker_names[i], BGW_MAXLEN);
		RegisterBackgroundWorker(&worker);
	}
}

/* hubsync_worker_set_state -- publish this worker's state */
void
hubsync_worker_set_state(HubsyncWorkerState state)
{
	HubsyncWorkerSlot *slot = &hubsync_shared->workers[hubsync_my_worker_kind];

	SpinLockAcquire(&hubsync_shared->mutex);
	slot->state = state;
	SpinLockRelease(&hubsync_shared->mutex);
}

/* hubsync_worker_state -- this worker's published state */
static HubsyncWorkerState
hubsync_worker_state(void)
{
	HubsyncWorkerState state;

	SpinLockAcquire(&hubsync_shared->mutex);
	state = hubsync_shared->workers[hubsync_my_worker_kind].state;
	SpinLockRelease(&hubsync_shared->mutex);
	return state;
}

/* worker_detach -- clear our slot on exit so nobody sets a stale latch */
static void
worker_detach(int code, Datum arg)
{
	HubsyncWorkerSlot *slot = &hubsync_shared->workers[hubsync_my_worker_kind];

	SpinLockAcquire(&hubsync_shared->mutex);
	slot->pid = 0;
	slot->latch = NULL;
	slot->state = HUBSYNC_STATE_STOPPED;
	SpinLockRelease(&hubsync_shared->mutex);
}

/*
 * hubsync_worker_begin_xact -- start a short transaction with a snapshot,
 * the way worker_spi does: the statement timestamp makes now() current,
 * and the snapshot lets SPI see committed data.  Returns false when the
 * extension is gone: the caller then does nothing and ends the
 * transaction.
 */
static MemoryContext xact_caller_cxt = NULL;

bool
hubsync_worker_begin_xact(const char *activity)
{
	Oid			nsp;
	Oid			outbox = InvalidOid;

	xact_caller_cxt = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (activity)
		pgstat_report_activity(STATE_RUNNING, activity);

	/*
	 * The extension may have been dropped since the last readiness check.
	 * Holding a lock on its outbox keeps DROP EXTENSION waiting until this
	 * transaction ends, so what we found stays true meanwhile.
	 */
	if (OidIsValid(get_extension_oid("hubsync", true)) &&
		OidIsValid(nsp = get_namespace_oid("hubsync", true)))
		outbox = get_relname_relid("outbox", nsp);
	if (!OidIsValid(outbox))
		return false;
	LockRelationOid(outbox, AccessShareLock);
	return SearchSysCacheExists1(RELOID, ObjectIdGetDatum(outbox));
}

/*
 * hubsync_worker_end_xact -- commit, flush table statistics (bgworkers
 * must do it themselves or autovacuum never sees their writes) and go
 * back to the memory context the caller was in before begin_xact.
 */
void
hubsync_worker_end_xact(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	MemoryContextSwitchTo(xact_caller_cxt);
}

/*
 * hubsync_in_subtransaction -- run fn(arg) in an internal subtransaction,
 * so that a failure undoes only its own work.  Returns NULL when it
 * succeeded, else its error (copied into the caller's memory context, for
 * the caller to report and free) after rolling it back.  The caller's
 * memory context and resource owner are restored either way.
 */
ErrorData *
hubsync_in_subtransaction(void (*fn) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	ErrorData  *volatile failure = NULL;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		fn(arg);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		failure = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
	return failure;
}

/*
 * hubsync_transient_error -- an error that heals by itself if the work is
 * simply tried again: a deadlock with an application transaction holding
 * the same mirror rows, a serialization failure, a lock timeout.  Workers
 * retry such work instead of dead-lettering it.
 */
bool
hubsync_transient_error(int sqlerrcode)
{
	return ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_TRANSACTION_ROLLBACK ||
		sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
}

/*
 * hubsync_keep_plan -- prepare a statement once and keep the plan for the
 * life of the worker (PostgreSQL revalidates it when objects change).
 */
SPIPlanPtr
hubsync_keep_plan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *types)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL)
			elog(ERROR, "could not prepare \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*plan = p;
	}
	return *plan;
}

/*
 * installed_version_matches -- whether the installed extension's version
 * is the one this library was built for (HUBSYNC_VERSION); copies the
 * installed version into buf for the log.  Runs inside a transaction.
 * After the library is upgraded and before ALTER EXTENSION hubsync UPDATE
 * the SQL objects are older than the C code that calls them: the workers
 * must wait rather than fail.
 */
static bool
installed_version_matches(Oid ext, char *buf, size_t buflen)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	bool		matches = false;

	strlcpy(buf, "unknown", buflen);
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(ext));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
		{
			char	   *v = text_to_cstring(DatumGetTextPP(d));

			strlcpy(buf, v, buflen);
			matches = strcmp(v, HUBSYNC_VERSION) == 0;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return matches;
}

/*
 * hubsync_worker_check_ready -- whether there is anything to do here: the
 * server is a primary, hubsync is enabled and the extension is installed
 * (and not being created right now) in the version of this library.  A
 * change of answer is logged once; an unchanged one is silent, so an idle
 * worker never fills the log.
 */
bool
hubsync_worker_check_ready(void)
{
	HubsyncWorkerState old_state = hubsync_worker_state();
	HubsyncWorkerState new_state;
	MemoryContext cxt = CurrentMemoryContext;
	char		installed[64] = "";

	if (RecoveryInProgress())
		new_state = HUBSYNC_STATE_IDLE_STANDBY;
	else if (!hubsync_enabled)
		new_state = HUBSYNC_STATE_DISABLED;
	else
	{
		Oid			ext;

		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		ext = get_extension_oid("hubsync", true);
		if (!OidIsValid(ext) ||
			(creating_extension && CurrentExtensionObject == ext))
			new_state = HUBSYNC_STATE_IDLE_NO_EXTENSION;
		else if (!installed_version_matches(ext, installed, sizeof(installed)))
			new_state = HUBSYNC_STATE_IDLE_VERSION;
		else
			new_state = HUBSYNC_STATE_RUNNING;
		CommitTransactionCommand();
		MemoryContextSwitchTo(cxt);
	}

	/* pg_stat_activity says why an idle worker does nothing */
	if (new_state != HUBSYNC_STATE_RUNNING)
		pgstat_report_activity(STATE_IDLE, hubsync_worker_state_name(new_state));

	if (new_state != old_state)
	{
		hubsync_worker_set_state(new_state);
		if (new_state == HUBSYNC_STATE_IDLE_NO_EXTENSION)
			ereport(LOG,
					(errmsg("%s worker is idle: extension \"hubsync\" is not installed in database \"%s\"",
							hubsync_worker_names[hubsync_my_worker_kind],
							hubsync_database),
					 errhint("Run CREATE EXTENSION hubsync in that database, or set hubsync.database.")));
		else if (new_state == HUBSYNC_STATE_IDLE_VERSION)
			ereport(LOG,
					(errmsg("%s worker is idle: extension \"hubsync\" is at version %s in database \"%s\" but the library is version %s",
							hubsync_worker_names[hubsync_my_worker_kind],
							installed, hubsync_database, HUBSYNC_VERSION),
					 errhint("Run ALTER EXTENSION hubsync UPDATE in that database; changes keep queueing meanwhile.")));
		else if (new_state == HUBSYNC_STATE_DISABLED)
			ereport(LOG,
					(errmsg("%s worker is idle: hubsync.enabled is off",
							hubsync_worker_names[hubsync_my_worker_kind]),
					 errhint("Set hubsync.enabled = on and reload the configuration to resume; changes keep queueing meanwhile.")));
		else if (new_state == HUBSYNC_STATE_RUNNING)
			ereport(LOG,
					(errmsg("%s worker started in database \"%s\"",
							hubsync_worker_names[hubsync_my_worker_kind],
							hubsync_database)));
	}
	return new_state == HUBSYNC_STATE_RUNNING;
}

/*
 * hubsync_worker_handle_interrupts -- honour SIGTERM, ProcSignal barriers
 * and SIGHUP.  Call after every wake-up.  Returns true when the
 * configuration was reloaded.
 */
bool
hubsync_worker_handle_interrupts(void)
{
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
		return true;
	}
	return false;
}

/*
 * hubsync_worker_begin_sleep -- declare that we are about to sleep waiting
 * for work, so committing backends signal us.  Returns false (and stays
 * awake) when work already arrived.
 */
bool
hubsync_worker_begin_sleep(void)
{
	HubsyncWorkerSlot *slot = &hubsync_shared->workers[hubsync_my_worker_kind];

	pg_atomic_write_u32(&slot->sleeping, 1);
	pg_memory_barrier();
	if (pg_atomic_read_u32(&slot->wake_pending) != 0)
	{
		pg_atomic_write_u32(&slot->sleeping, 0);
		return false;
	}
	return true;
}

/* hubsync_worker_end_sleep -- awake again: committers need not signal */
void
hubsync_worker_end_sleep(void)
{
	pg_atomic_write_u32(&hubsync_shared->workers[hubsync_my_worker_kind].sleeping, 0);
}

/*
 * hubsync_worker_wait -- sleep on our latch (and nothing else) for at
 * most timeout_ms, woken early by new work, then handle interrupts.
 * Returns true when new work was announced (our wake flag was set).
 */
bool
hubsync_worker_wait(long timeout_ms)
{
	bool		woken;

	if (hubsync_worker_begin_sleep())
	{
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout_ms, PG_WAIT_EXTENSION);
		hubsync_worker_end_sleep();
		ResetLatch(MyLatch);
	}
	woken = hubsync_worker_consume_wake();
	hubsync_worker_handle_interrupts();
	return woken;
}

/*
 * hubsync_worker_pause -- sleep timeout_ms without being woken by new
 * work (signals and SIGHUP still wake us), e.g. to let a batch fill.
 */
void
hubsync_worker_pause(long timeout_ms)
{
	(void) WaitLatch(MyLatch,
					 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 timeout_ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	hubsync_worker_handle_interrupts();
}

/* hubsync_worker_consume_wake -- clear our wake flag; true if it was set */
bool
hubsync_worker_consume_wake(void)
{
	return pg_atomic_exchange_u32(&hubsync_shared->workers[hubsync_my_worker_kind].wake_pending, 0) != 0;
}

/*
 * hubsync_worker_start -- the start-up every hubsync worker's entry point
 * runs first: signals, connection, search_path, then publish ourselves.
 */
void
hubsync_worker_start(HubsyncWorkerKind kind)
{
	HubsyncWorkerSlot *slot;

	hubsync_my_worker_kind = kind;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	BackgroundWorkerInitializeConnection(hubsync_database, NULL, 0);

	/*
	 * Workers run as the bootstrap superuser: nothing a database role can
	 * create (an operator or function in a schema of the default path, a
	 * per-database or per-role setting) may be found by name in their
	 * queries, nor in the hubsync functions and user triggers they fire.
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET,
					PGC_S_OVERRIDE);
	pgstat_report_appname(hubsync_worker_names[hubsync_my_worker_kind]);

	slot = &hubsync_shared->workers[hubsync_my_worker_kind];
	SpinLockAcquire(&hubsync_shared->mutex);
	slot->pid = MyProcPid;
	slot->latch = MyLatch;
	slot->state = HUBSYNC_STATE_STARTING;
	slot->started_at = GetCurrentTimestamp();
	SpinLockRelease(&hubsync_shared->mutex);
	before_shmem_exit(worker_detach, (Datum) 0);
}
