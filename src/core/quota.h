/*-------------------------------------------------------------------------
 *
 * quota.h
 *	  One HubSpot API quota, in shared memory, for every hubsync worker.
 *
 * IDENTIFICATION
 *	  src/core/quota.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_QUOTA_H
#define HUBSYNC_QUOTA_H

#include "storage/spin.h"
#include "utils/timestamp.h"

#define HUBSYNC_QUOTA_RING 1024		/* >= the largest hubsync.rate_limit */
#define HUBSYNC_SEARCH_RING 128

typedef enum HubsyncQuotaClass
{
	HUBSYNC_QUOTA_REALTIME,		/* pushes of committed changes: first */
	HUBSYNC_QUOTA_BULK,			/* backfill, reconciliation: leftovers */
	HUBSYNC_QUOTA_SEARCH		/* search API: its own per-second limit */
} HubsyncQuotaClass;

typedef struct HubsyncQuota
{
	slock_t		lock;
	int64		sent[HUBSYNC_QUOTA_RING];	/* send times (ms) in the window,
											 * then estimated arrivals */
	uint8		state[HUBSYNC_QUOTA_RING];	/* QUOTA_ENTRY_* */
	int			head;			/* oldest entry */
	int			slots;			/* entries from head on, left ones included */
	int			count;			/* entries still in the window */
	uint64		head_seq;		/* ticket of the oldest entry (from 1) */
	int			window_ms;		/* X-HubSpot-RateLimit-Interval-Milliseconds, 0 = none */
	int64		search_sent[HUBSYNC_SEARCH_RING];
	int			search_head;
	int			search_count;
	int64		blocked_until;	/* ms; after a 429 nobody sends before */
	int64		search_blocked_until;
	int			header_max;		/* X-HubSpot-RateLimit-Max seen, 0 = none */
	int64		daily_start;	/* ms; start of the account's day counted */
	int64		daily_used;
	int64		daily_blocked_until;
	int64		realtime_wanted;	/* ms; last time real-time work asked */
	/* counters for hubsync.status */
	int64		requests;
	int64		responses_2xx;
	int64		responses_4xx;
	int64		responses_5xx;
	int64		transport_errors;
	int64		throttled_429;
	int64		max_in_window;
	int64		retries;		/* pushes scheduled for another attempt */
} HubsyncQuota;

/* what hubsync.quota_status() shows: a consistent copy of the quota */
typedef struct HubsyncQuotaSnapshot
{
	int			window_used;
	int			window_limit;
	int			search_used;
	int			search_limit;
	int64		daily_used;
	int64		daily_limit;	/* 0 = none */
	int64		blocked_until;	/* ms since epoch, 0 = not blocked */
	int64		requests;
	int64		responses_2xx;
	int64		responses_4xx;
	int64		responses_5xx;
	int64		transport_errors;
	int64		throttled_429;
	int64		retries;
} HubsyncQuotaSnapshot;

extern int	hubsync_quota_flight_ms;

extern void hubsync_quota_init(HubsyncQuota *q);
extern long hubsync_quota_acquire(HubsyncQuotaClass cls);
extern void hubsync_quota_observe(long status, long rl_max, long rl_remaining,
								  long rl_daily_remaining);
extern uint64 hubsync_quota_take_ticket(void);
extern double hubsync_quota_rate(void);
extern void hubsync_quota_answered(uint64 ticket, long rl_interval_ms,
								   TimestampTz finished_at);
extern void hubsync_quota_throttled(const char *policy, HubsyncQuotaClass cls);
extern const char *hubsync_rate_limit_policy(const char *policy, const char *message);
extern void hubsync_quota_count_retry(void);
extern void hubsync_quota_snapshot(HubsyncQuotaSnapshot *out);
extern int64 hubsync_now_ms(void);

/* the account's day (quota_day.c): HubSpot's daily allowance resets at its midnight */
extern const pg_tz *hubsync_account_tz;
extern int64 hubsync_quota_day(int64 now_ms, int64 *next_day_ms);

#endif							/* HUBSYNC_QUOTA_H */
