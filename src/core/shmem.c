/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  hubsync's shared memory: worker slots, wake-up flags and shared
 *	  counters that every backend and worker sees.
 *
 * IDENTIFICATION
 *	  src/core/shmem.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "core/at_commit.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

PG_FUNCTION_INFO_V1(hubsync_wake_workers);

HubsyncShared *hubsync_shared = NULL;


static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* hubsync_shmem_size -- bytes of shared memory hubsync needs */
static Size
hubsync_shmem_size(void)
{
	return MAXALIGN(sizeof(HubsyncShared));
}

/* hubsync_shmem_request -- reserve our share at postmaster start */
static void
hubsync_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(hubsync_shmem_size());
}

/*
 * hubsync_shmem_startup -- attach to (and on first use, initialise) the
 * shared struct.  Runs in the postmaster and, with EXEC_BACKEND, in every
 * child.
 */
static void
hubsync_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	hubsync_shared = NULL;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	hubsync_shared = ShmemInitStruct("hubsync", hubsync_shmem_size(), &found);
	if (!found)
	{
		int			i;

		memset(hubsync_shared, 0, sizeof(HubsyncShared));
		SpinLockInit(&hubsync_shared->mutex);
		for (i = 0; i < HUBSYNC_NUM_WORKERS; i++)
		{
			pg_atomic_init_u32(&hubsync_shared->workers[i].wake_pending, 0);
			pg_atomic_init_u32(&hubsync_shared->workers[i].sleeping, 0);
		}
		pg_atomic_init_u64(&hubsync_shared->credentials_version, 0);
		pg_atomic_init_u32(&hubsync_shared->auth_failed, 0);
		pg_atomic_init_u64(&hubsync_shared->oauth_refresh_claim, 0);
		pg_atomic_init_u32(&hubsync_shared->paused, 0);
		hubsync_quota_init(&hubsync_shared->quota);
		for (i = 0; i < HUBSYNC_WH_NUM_COUNTERS; i++)
			pg_atomic_init_u64(&hubsync_shared->webhook_counters[i], 0);
		hubsync_metrics_init(&hubsync_shared->metrics);
	}
	LWLockRelease(AddinShmemInitLock);
}

/* hubsync_shmem_init_hooks -- install the hooks (from _PG_init) */
void
hubsync_shmem_init_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = hubsync_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = hubsync_shmem_startup;
}

/* hubsync_shmem_available -- true when the library was preloaded */
bool
hubsync_shmem_available(void)
{
	return hubsync_shared != NULL;
}

/*
 * hubsync_require_shmem -- raise a clear error in SQL functions that need
 * the workers when the library was not preloaded.
 */
void
hubsync_require_shmem(void)
{
	if (hubsync_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("hubsync must be loaded via \"shared_preload_libraries\""),
				 errhint("Add hubsync to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* set_worker_latch -- set a worker's latch, if it is running */
static void
set_worker_latch(HubsyncWorkerSlot *slot)
{
	Latch	   *latch;

	SpinLockAcquire(&hubsync_shared->mutex);
	latch = slot->latch;
	SpinLockRelease(&hubsync_shared->mutex);
	if (latch)
		SetLatch(latch);
}

/*
 * hubsync_wake_worker -- tell a worker that work arrived (committing
 * backends call it for every transaction that queued something).  Only a
 * worker that is asleep waiting for work is signalled: a busy one sees the
 * flag when it next looks, so a stream of commits costs no signals.  The
 * exchange here and the worker's barrier between setting "sleeping" and
 * reading "wake_pending" (hubsync_worker_sleep) make sure one of the two
 * sides sees the other.
 */
void
hubsync_wake_worker(HubsyncWorkerKind kind)
{
	HubsyncWorkerSlot *slot;

	if (hubsync_shared == NULL)
		return;
	slot = &hubsync_shared->workers[kind];
	if (pg_atomic_exchange_u32(&slot->wake_pending, 1) != 0)
		return;
	if (pg_atomic_read_u32(&slot->sleeping) != 0)
		set_worker_latch(slot);
}

/* hubsync_alert_worker -- wake a worker whatever it is doing */
void
hubsync_alert_worker(HubsyncWorkerKind kind)
{
	HubsyncWorkerSlot *slot;

	if (hubsync_shared == NULL)
		return;
	slot = &hubsync_shared->workers[kind];
	pg_atomic_write_u32(&slot->wake_pending, 1);
	set_worker_latch(slot);
}

/* hubsync_wake_all_workers -- wake every worker (settings, credentials) */
void
hubsync_wake_all_workers(void)
{
	int			i;

	for (i = 0; i < HUBSYNC_NUM_WORKERS; i++)
		hubsync_alert_worker((HubsyncWorkerKind) i);
}

/*
 * hubsync_wake_workers -- SQL: wake every worker when the calling
 * transaction commits (CREATE EXTENSION uses it, so idle workers start at
 * once).  A no-op without shared_preload_libraries.
 */
Datum
hubsync_wake_workers(PG_FUNCTION_ARGS)
{
	hubsync_at_commit(hubsync_wake_all_workers);
	PG_RETURN_VOID();
}

/* hubsync_count_webhook -- add n to a counter (no-op without shmem) */
void
hubsync_count_webhook(HubsyncWebhookCounter c, uint64 n)
{
	if (hubsync_shmem_available() && n > 0)
		pg_atomic_fetch_add_u64(&hubsync_shared->webhook_counters[c], n);
}
