/*-------------------------------------------------------------------------
 *
 * quota.c
 *	  The HubSpot request budget every hubsync worker shares: the rolling
 *	  10-second burst window, the daily allowance and the search API's
 *	  per-second limit.
 *
 * A worker asks before each request (hubsync_quota_acquire) and is told to
 * send now or how long to wait; real-time pushes may use the whole window,
 * bulk work (backfill, reconciliation) only what leaves a reserve for
 * them.  HubSpot counts a request when it arrives, not when we send it,
 * and nothing tells us when that was, only that it was before the answer:
 * a request holds its place in our window from its send time until its
 * answer has been a window old (unanswered, until the latest it could
 * arrive: the request timeout), so requests that reach HubSpot late -- a
 * slow network, a slow HubSpot that queues them before counting --
 * never crowd a window (issue 21).  The price is one round trip per
 * window: at 200 ms, 10 s / 10.2 s of the ceiling.  The window's length is HubSpot's
 * X-HubSpot-RateLimit-Interval-Milliseconds once seen, its size
 * X-HubSpot-RateLimit-Max, and HubSpot's -Remaining corrects the count
 * when another client shares the bucket.
 * The goal is zero 429s in steady state; a 429 that still happens blocks
 * everybody for the period its policy names.
 *
 * IDENTIFICATION
 *	  src/core/quota.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include <sys/time.h>

#include "core/quota.h"
#include "datatype/timestamp.h"

#define WINDOW_MS 10000
#define BULK_RESERVE_PERCENT 20 /* share of the window kept for real time */
#define REALTIME_QUIET_MS 2000	/* no real-time demand this long: bulk may take the reserve */

/* hubsync_now_ms -- wall clock in milliseconds since the Unix epoch */
int64
hubsync_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* hubsync_quota_init -- zero the shared quota at server start */
void
hubsync_quota_init(HubsyncQuota *q)
{
	memset(q, 0, sizeof(*q));
	SpinLockInit(&q->lock);
}

static uint64 my_ticket = 0;	/* this process's last window entry */

/* window_ms -- HubSpot's window length: as its headers say, else 10 s */
static int64
window_ms(HubsyncQuota *q)
{
	return q->window_ms > 0 ? q->window_ms : WINDOW_MS;
}

/* a window entry's state */
/*
 * the longest a request may be in flight (hubsync.request_timeout, which
 * the HubSpot client's settings keep here): an unanswered request may
 * still arrive at HubSpot until then
 */
int			hubsync_quota_flight_ms = 30000;

#define QUOTA_ENTRY_LEFT 0		/* out of the window */
#define QUOTA_ENTRY_ANSWERED 1	/* counts from its (estimated) arrival */
#define QUOTA_ENTRY_FLIGHT 2	/* sent, not answered yet */

/*
 * leaves_at -- when entry i leaves the window: its answer (after its
 * arrival) plus the window, or for a request still unanswered its send
 * time plus the request timeout (the latest it can arrive) plus the
 * window (lock held)
 */
static int64
leaves_at(HubsyncQuota *q, int i)
{
	int64		at = q->sent[i] + window_ms(q);

	if (q->state[i] == QUOTA_ENTRY_FLIGHT)
		at += hubsync_quota_flight_ms;
	return at;
}

/* drop_head -- forget the oldest entry (lock held) */
static void
drop_head(HubsyncQuota *q)
{
	if (q->state[q->head] != QUOTA_ENTRY_LEFT)
		q->count--;
	q->state[q->head] = QUOTA_ENTRY_LEFT;
	q->head = (q->head + 1) % HUBSYNC_QUOTA_RING;
	q->head_seq++;
	q->slots--;
}

/*
 * push_entry -- count one request in the window at time t; returns its
 * ticket (lock held)
 */
static uint64
push_entry(HubsyncQuota *q, int64 t, bool flight)
{
	int			i;

	if (q->head_seq == 0)
		q->head_seq = 1;		/* ticket 0 means none */
	if (q->slots >= HUBSYNC_QUOTA_RING)
		drop_head(q);
	i = (q->head + q->slots) % HUBSYNC_QUOTA_RING;
	q->sent[i] = t;
	q->state[i] = flight ? QUOTA_ENTRY_FLIGHT : QUOTA_ENTRY_ANSWERED;
	q->slots++;
	q->count++;
	return q->head_seq + q->slots - 1;
}

/*
 * expire -- drop requests that left the window (lock held).  Entries leave
 * out of order (one may wait for its answer while later ones are
 * answered), so every entry is looked at; a ring of at most
 * HUBSYNC_QUOTA_RING entries.
 */
static void
expire(HubsyncQuota *q, int64 now)
{
	for (int k = 0; k < q->slots; k++)
	{
		int			i = (q->head + k) % HUBSYNC_QUOTA_RING;

		if (q->state[i] != QUOTA_ENTRY_LEFT && leaves_at(q, i) <= now)
		{
			q->state[i] = QUOTA_ENTRY_LEFT;
			q->count--;
		}
	}
	while (q->slots > 0 && q->state[q->head] == QUOTA_ENTRY_LEFT)
		drop_head(q);
	while (q->search_count > 0 && q->search_sent[q->search_head] <= now - 1000)
	{
		q->search_head = (q->search_head + 1) % HUBSYNC_SEARCH_RING;
		q->search_count--;
	}
}

/*
 * next_leave_ms -- ms until the window frees a place: when its first entry
 * leaves, but at most 50 ms while requests await their answer, which
 * may come sooner (lock held)
 */
static long
next_leave_ms(HubsyncQuota *q, int64 now)
{
	int64		first = PG_INT64_MAX;
	bool		flight = false;

	for (int k = 0; k < q->slots; k++)
	{
		int			i = (q->head + k) % HUBSYNC_QUOTA_RING;

		if (q->state[i] == QUOTA_ENTRY_LEFT)
			continue;
		first = Min(first, leaves_at(q, i));
		flight |= (q->state[i] == QUOTA_ENTRY_FLIGHT);
	}
	if (first == PG_INT64_MAX)
		return 1;
	return (long) Max(Min(first - now + 1, flight ? 50 : PG_INT64_MAX), 1);
}

/*
 * window_limit -- requests allowed per window for a class (lock held).
 * Bulk work leaves a reserve for real-time work, unless no real-time work
 * has asked for a while: then an idle reserve is not wasted, and the next
 * real-time request shrinks bulk's share again at once.  Bulk needs no
 * margin of its own: its requests are counted when sent, like real-time
 * ones, and the window guard covers their transit.
 */
static int
window_limit(HubsyncQuota *q, HubsyncQuotaClass cls, int64 now)
{
	int			limit = hubsync_rate_limit;

	if (q->header_max > 0 && q->header_max < limit)
		limit = q->header_max;
	limit = Min(limit, HUBSYNC_QUOTA_RING);
	if (cls == HUBSYNC_QUOTA_BULK && now - q->realtime_wanted < REALTIME_QUIET_MS)
		limit -= Max(1, limit * BULK_RESERVE_PERCENT / 100);
	return Max(limit, 1);
}

/*
 * hubsync_quota_acquire -- take one request from the budget.  Returns 0
 * when the caller may send now (the request is counted), otherwise the
 * number of milliseconds to wait before asking again.  The caller puts
 * the request on the wire at once and starts it with hubsync_http_start,
 * which takes this window entry's ticket (hubsync_quota_take_ticket) so
 * that the answer settles the entry.
 */
long
hubsync_quota_acquire(HubsyncQuotaClass cls)
{
	HubsyncQuota *q = &hubsync_shared->quota;
	int64		now = hubsync_now_ms();
	long		wait = 0;
	int64		next_day_ms;
	int64		day_start = hubsync_quota_day(now, &next_day_ms);

	SpinLockAcquire(&q->lock);
	expire(q, now);
	if (cls != HUBSYNC_QUOTA_BULK && cls != HUBSYNC_QUOTA_SEARCH)
		q->realtime_wanted = now;
	if (day_start > q->daily_start) /* a new day began: see quota_day.c */
	{
		q->daily_start = day_start;
		q->daily_used = 0;
	}
	if (now < q->daily_blocked_until)
		wait = (long) (q->daily_blocked_until - now);
	else if (hubsync_daily_limit > 0 && q->daily_used >= hubsync_daily_limit)
		wait = (long) (next_day_ms - now);
	else if (now < q->blocked_until)
		wait = (long) (q->blocked_until - now);
	else if (cls == HUBSYNC_QUOTA_SEARCH)
	{
		if (now < q->search_blocked_until)
			wait = (long) (q->search_blocked_until - now);
		else if (q->search_count >= Min(hubsync_search_rate, HUBSYNC_SEARCH_RING))
			wait = (long) (q->search_sent[q->search_head] + 1000 - now + 1);
		else
		{
			q->search_sent[(q->search_head + q->search_count) % HUBSYNC_SEARCH_RING] = now;
			q->search_count++;
		}
	}
	else if (q->count >= window_limit(q, cls, now))
		wait = next_leave_ms(q, now);
	else
	{
		my_ticket = push_entry(q, now, true);
		q->max_in_window = Max(q->max_in_window, q->count);
	}
	if (wait == 0)
	{
		q->daily_used++;
		q->requests++;
	}
	SpinLockRelease(&q->lock);
	return Max(wait, 0);
}

/*
 * hubsync_quota_observe -- learn from a response: count its status class
 * and correct the window from HubSpot's own view of it.  When HubSpot has
 * counted more requests in the window than we sent, another client shares
 * the bucket: its requests are added as if sent now.
 */
void
hubsync_quota_observe(long status, long rl_max, long rl_remaining,
					  long rl_daily_remaining)
{
	HubsyncQuota *q = &hubsync_shared->quota;
	int64		now = hubsync_now_ms();
	int64		next_day_ms;

	(void) hubsync_quota_day(now, &next_day_ms);
	SpinLockAcquire(&q->lock);
	if (status >= 200 && status < 300)
		q->responses_2xx++;
	else if (status >= 400 && status < 500)
		q->responses_4xx++;
	else if (status >= 500)
		q->responses_5xx++;
	else
		q->transport_errors++;
	if (status == 429)
		q->throttled_429++;
	if (rl_max > 0)
		q->header_max = (int) Min(rl_max, HUBSYNC_QUOTA_RING);
	if (rl_max > 0 && rl_remaining >= 0)
	{
		int			used = (int) (rl_max - rl_remaining);

		expire(q, now);
		while (q->count < used && q->count < HUBSYNC_QUOTA_RING)
			(void) push_entry(q, now, false);
	}
	if (rl_daily_remaining == 0)
		q->daily_blocked_until = next_day_ms;
	SpinLockRelease(&q->lock);
}

/*
 * hubsync_rate_limit_policy -- the 429 policy a HubSpot answer names:
 * its policyName when it has one (matched exactly: DAILY, SECONDLY,
 * TEN_SECONDLY_ROLLING), else the one its message names -- the secondly
 * (search) limit's 429 carries only "You have reached your secondly
 * limit.", while the 10-second one says "ten_secondly_rolling", which
 * contains "secondly" and so must be told apart word for word.  NULL when
 * neither says: callers take the 10-second window then.
 */
const char *
hubsync_rate_limit_policy(const char *policy, const char *message)
{
	if (policy != NULL)
	{
		if (strcmp(policy, "DAILY") == 0)
			return "DAILY";
		if (strcmp(policy, "SECONDLY") == 0)
			return "SECONDLY";
		if (strcmp(policy, "TEN_SECONDLY_ROLLING") == 0)
			return "TEN_SECONDLY_ROLLING";
	}
	if (message != NULL)
	{
		if (strstr(message, "your secondly limit") != NULL)
			return "SECONDLY";
		if (strstr(message, "your daily limit") != NULL)
			return "DAILY";
		if (strstr(message, "ten_secondly_rolling") != NULL)
			return "TEN_SECONDLY_ROLLING";
	}
	return NULL;
}

/*
 * hubsync_quota_rate -- the sustained rate the window allows, in requests
 * per second: hubsync.rate_limit (or HubSpot's lower Max) per window
 */
double
hubsync_quota_rate(void)
{
	HubsyncQuota *q = &hubsync_shared->quota;
	int			limit = hubsync_rate_limit;
	double		rate;

	SpinLockAcquire(&q->lock);
	if (q->header_max > 0 && q->header_max < limit)
		limit = q->header_max;
	rate = (double) Min(limit, HUBSYNC_QUOTA_RING) * 1000.0 / (double) window_ms(q);
	SpinLockRelease(&q->lock);
	return rate;
}

/*
 * hubsync_quota_take_ticket -- the window entry of the request this
 * process was last allowed to send (0 if none), handed over once: the
 * HTTP layer keeps it with the request it starts, and gives it back to
 * hubsync_quota_answered with the answer.
 */
uint64
hubsync_quota_take_ticket(void)
{
	uint64		t = my_ticket;

	my_ticket = 0;
	return t;
}

/* timestamp_ms -- a TimestampTz as ms since the Unix epoch */
static int64
timestamp_ms(TimestampTz t)
{
	return t / 1000 + (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;
}

/*
 * hubsync_quota_answered -- a request with window entry ticket was
 * answered (or failed) at finished_at: HubSpot counted it before that,
 * and its entry counts from then on.  No estimate of the arrival from
 * round trips is safe: a HubSpot that queues requests before counting
 * them makes the return trip look longer than it is.  Also learns
 * HubSpot's window length from its Interval header.
 */
void
hubsync_quota_answered(uint64 ticket, long rl_interval_ms, TimestampTz finished_at)
{
	HubsyncQuota *q = &hubsync_shared->quota;
	int64		end = timestamp_ms(finished_at);

	SpinLockAcquire(&q->lock);
	if (rl_interval_ms >= 1000 && rl_interval_ms <= 60000)
		q->window_ms = (int) rl_interval_ms;
	if (ticket != 0 && ticket >= q->head_seq && ticket < q->head_seq + q->slots)
	{
		int			i = (int) ((q->head + (ticket - q->head_seq)) % HUBSYNC_QUOTA_RING);

		if (q->state[i] == QUOTA_ENTRY_FLIGHT)
		{
			q->sent[i] = Max(q->sent[i], end);
			q->state[i] = QUOTA_ENTRY_ANSWERED;
		}
	}
	SpinLockRelease(&q->lock);
}

/*
 * hubsync_quota_throttled -- HubSpot answered 429: stop everybody for the
 * period the policy names (HubSpot sends no Retry-After on CRM 429s).
 */
void
hubsync_quota_throttled(const char *policy, HubsyncQuotaClass cls)
{
	HubsyncQuota *q = &hubsync_shared->quota;
	int64		now = hubsync_now_ms();
	int64		next_day_ms;

	(void) hubsync_quota_day(now, &next_day_ms);
	SpinLockAcquire(&q->lock);
	if (policy && strcmp(policy, "DAILY") == 0)
		q->daily_blocked_until = next_day_ms;	/* the account's midnight */
	else if (cls == HUBSYNC_QUOTA_SEARCH ||
			 (policy && strcmp(policy, "SECONDLY") == 0))
		q->search_blocked_until = now + 1000;
	else
		q->blocked_until = now + WINDOW_MS;
	SpinLockRelease(&q->lock);
}

/* hubsync_quota_count_retry -- a push was scheduled for another attempt */
void
hubsync_quota_count_retry(void)
{
	HubsyncQuota *q = &hubsync_shared->quota;

	SpinLockAcquire(&q->lock);
	q->retries++;
	SpinLockRelease(&q->lock);
}

/*
 * hubsync_quota_snapshot -- a consistent copy of the budget and the
 * counters for hubsync.quota_status(): what the window, the day and the
 * search limit have used now, and when sending may resume if blocked.
 */
void
hubsync_quota_snapshot(HubsyncQuotaSnapshot *out)
{
	HubsyncQuota *q = &hubsync_shared->quota;
	int64		now = hubsync_now_ms();
	int64		blocked;
	int64		day_start = hubsync_quota_day(now, NULL);

	memset(out, 0, sizeof(*out));
	SpinLockAcquire(&q->lock);
	expire(q, now);
	out->window_used = q->count;
	out->window_limit = window_limit(q, HUBSYNC_QUOTA_REALTIME, now);
	out->search_used = q->search_count;
	out->search_limit = Min(hubsync_search_rate, HUBSYNC_SEARCH_RING);
	out->daily_used = (q->daily_start >= day_start) ? q->daily_used : 0;
	out->daily_limit = hubsync_daily_limit;
	blocked = Max(q->blocked_until, q->daily_blocked_until);
	out->blocked_until = blocked > now ? blocked : 0;
	out->requests = q->requests;
	out->responses_2xx = q->responses_2xx;
	out->responses_4xx = q->responses_4xx;
	out->responses_5xx = q->responses_5xx;
	out->transport_errors = q->transport_errors;
	out->throttled_429 = q->throttled_429;
	out->retries = q->retries;
	SpinLockRelease(&q->lock);
}
