/*-------------------------------------------------------------------------
 *
 * hubsync.h
 *	  Shared declarations of the hubsync extension: settings, shared
 *	  memory, workers and the helpers every module uses.
 *
 * IDENTIFICATION
 *	  src/core/hubsync.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_H
#define HUBSYNC_H

#include "postgres.h"

#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/timestamp.h"

#ifndef HUBSYNC_VERSION
#define HUBSYNC_VERSION "unknown"
#endif

#define HUBSYNC_USER_AGENT "hubsync/" HUBSYNC_VERSION

/* ---- settings every area reads (core/settings.c) ---- */
#include "core/settings.h"

/* ---- workers (worker.c) ---- */
typedef enum HubsyncWorkerKind
{
	HUBSYNC_WORKER_PUSH = 0,
	HUBSYNC_WORKER_PULL,
	HUBSYNC_WORKER_WEBHOOK,
	HUBSYNC_WORKER_ENRICH,
	HUBSYNC_NUM_WORKERS
} HubsyncWorkerKind;

typedef enum HubsyncWorkerState
{
	HUBSYNC_STATE_STOPPED = 0,
	HUBSYNC_STATE_STARTING,
	HUBSYNC_STATE_IDLE_NO_EXTENSION,
	HUBSYNC_STATE_IDLE_STANDBY,
	HUBSYNC_STATE_DISABLED,
	HUBSYNC_STATE_IDLE_VERSION, /* installed extension version is not ours */
	HUBSYNC_STATE_RUNNING
} HubsyncWorkerState;

extern const char *const hubsync_worker_names[HUBSYNC_NUM_WORKERS];
extern const char *hubsync_worker_state_name(HubsyncWorkerState state);

/* ---- shared memory (shmem.c) ---- */
#include "core/quota.h"
#include "core/metrics.h"

typedef struct HubsyncWorkerSlot
{
	pid_t		pid;
	Latch	   *latch;
	HubsyncWorkerState state;
	TimestampTz started_at;
	pg_atomic_uint32 wake_pending;	/* work arrived since the last look */
	pg_atomic_uint32 sleeping;	/* idle, waiting for work: signal it */
} HubsyncWorkerSlot;

/*
 * Counters of the webhook receiver and the inbox processor (inbox.c,
 * apply.c); names in hubsync_webhook_counter_names.  Refusals leave no
 * other trace.
 */
typedef enum HubsyncWebhookCounter
{
	HUBSYNC_WH_DELIVERIES = 0,	/* deliveries accepted (200) */
	HUBSYNC_WH_EVENTS_STORED,	/* new events stored in the inbox */
	HUBSYNC_WH_EVENTS_DUPLICATE,	/* events already in the inbox */
	HUBSYNC_WH_REFUSED_SIGNATURE,	/* 401: missing or wrong signature */
	HUBSYNC_WH_REFUSED_TIMESTAMP,	/* 401: stale, future or missing timestamp */
	HUBSYNC_WH_REFUSED_TOO_LARGE,	/* 413 */
	HUBSYNC_WH_REFUSED_METHOD,	/* 405 */
	HUBSYNC_WH_REFUSED_PATH,	/* 404 */
	HUBSYNC_WH_REFUSED_MALFORMED,	/* 400 */
	HUBSYNC_WH_REFUSED_UNAVAILABLE, /* 503: no client secret, or storing failed */
	HUBSYNC_WH_EVENTS_APPLIED,	/* inbox events applied to the mirror */
	HUBSYNC_WH_EVENTS_ECHO,		/* echoes of our own pushes, ignored */
	HUBSYNC_WH_EVENTS_REVERTED, /* HubSpot edits of postgres-owned properties */
	HUBSYNC_WH_EVENTS_SKIPPED,	/* stale, or record gone */
	HUBSYNC_WH_EVENTS_UNKNOWN,	/* subscription types hubsync does not handle */
	HUBSYNC_WH_EVENTS_FAILED,	/* poison events, state failed */
	HUBSYNC_WH_CONNECTIONS_CUT, /* closed still waiting for their headers */
	HUBSYNC_WH_NUM_COUNTERS
} HubsyncWebhookCounter;

extern const char *const hubsync_webhook_counter_names[HUBSYNC_WH_NUM_COUNTERS];

/* values of HubsyncShared.auth_failed */
#define HUBSYNC_AUTH_OK				0
#define HUBSYNC_AUTH_REFUSED		1	/* HubSpot answered 401 to our token */
#define HUBSYNC_AUTH_REFRESH_FAILED 2	/* HubSpot refused the refresh token */

typedef struct HubsyncShared
{
	slock_t		mutex;			/* protects the fields below it that say so */
	HubsyncWorkerSlot workers[HUBSYNC_NUM_WORKERS];
	pg_atomic_uint64 credentials_version;	/* bumped by set_credentials */
	pg_atomic_uint32 auth_failed;	/* HUBSYNC_AUTH_*, until creds change */
	pg_atomic_uint64 oauth_refresh_claim;	/* OAuth refresh under way until
											 * this TimestampTz (oauth.c) */
	pg_atomic_uint32 paused;	/* hubsync.pause() */
	HubsyncQuota quota;			/* see quota.c */
	pg_atomic_uint64 webhook_counters[HUBSYNC_WH_NUM_COUNTERS]; /* inbox.c */
	HubsyncMetrics metrics;		/* core/metrics.c */
} HubsyncShared;

extern HubsyncShared *hubsync_shared;

extern void hubsync_shmem_init_hooks(void);
extern bool hubsync_shmem_available(void);
extern void hubsync_require_shmem(void);
extern void hubsync_wake_worker(HubsyncWorkerKind kind);
extern void hubsync_alert_worker(HubsyncWorkerKind kind);
extern void hubsync_wake_all_workers(void);
extern void hubsync_count_webhook(HubsyncWebhookCounter c, uint64 n);

/* ---- credentials (credentials.c) ---- */
extern uint64 hubsync_credentials_version(void);

#endif							/* HUBSYNC_H */
