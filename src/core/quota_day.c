/*-------------------------------------------------------------------------
 *
 * quota_day.c
 *	  The HubSpot account's day, for the daily request allowance.
 *
 * HubSpot resets the daily allowance at midnight in the account's time
 * zone (hubsync.account_timezone), not at UTC midnight.  The quota in
 * shared memory remembers the instant (ms since the epoch) the counted day
 * began, and every worker compares it with the instant its own day began:
 * instants compare the same whatever zone a process has loaded, so when a
 * reload reaches the workers one after the other the count is started
 * again once at the new midnight, never back and forth.  PostgreSQL's own
 * time zone library does the calendar work (daylight saving changes, a
 * midnight a clock change skips).
 *
 * IDENTIFICATION
 *	  src/core/quota_day.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "pgtime.h"

#include "core/quota.h"

#define SECS_PER_DAY 86400
#define SEARCH_SPAN (2 * SECS_PER_DAY)	/* beyond any UTC offset change */

/* the zone hubsync.account_timezone names (guc.c sets it) */
const pg_tz *hubsync_account_tz = NULL;

/* local_day -- the account's local date at t, as days since 1970-01-01 */
static int64
local_day(pg_time_t t, const pg_tz *tz)
{
	struct pg_tm *tm = pg_localtime(&t, tz);
	int64		local = t + (tm ? tm->tm_gmtoff : 0);

	return local >= 0 ? local / SECS_PER_DAY : -((-local - 1) / SECS_PER_DAY) - 1;
}

/*
 * first_after -- the first second in (lo, hi] whose local date is later
 * than day; hi's must be.  Local dates grow with time, except across a
 * rare clock change back over midnight, where this finds one of the two
 * boundaries (the shared count only ever moves forward, see quota.c).
 */
static pg_time_t
first_after(pg_time_t lo, pg_time_t hi, int64 day, const pg_tz *tz)
{
	while (hi - lo > 1)
	{
		pg_time_t	mid = lo + (hi - lo) / 2;

		if (local_day(mid, tz) > day)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

/*
 * hubsync_quota_day -- the instant (ms since the epoch) the account's day
 * containing now_ms began, and in *next_day_ms the instant the next one
 * begins: local midnight, or the first instant after it when a clock
 * change skips it.  The bounds are cached per process, so the usual call
 * costs two comparisons.
 */
int64
hubsync_quota_day(int64 now_ms, int64 *next_day_ms)
{
	static const pg_tz *cached_tz = NULL;
	static int64 cached_start_ms;
	static int64 cached_next_ms;
	const pg_tz *tz = hubsync_account_tz;

	if (tz == NULL)
		tz = pg_tzset("UTC");
	if (tz == NULL)				/* no time zone data at all: UTC days */
	{
		int64		day_ms = SECS_PER_DAY * (int64) 1000;

		if (next_day_ms)
			*next_day_ms = (now_ms / day_ms + 1) * day_ms;
		return now_ms / day_ms * day_ms;
	}
	if (tz != cached_tz || now_ms < cached_start_ms || now_ms >= cached_next_ms)
	{
		pg_time_t	t = (pg_time_t) (now_ms / 1000);
		int64		day = local_day(t, tz);

		cached_next_ms = (int64) first_after(t, t + SEARCH_SPAN, day, tz) * 1000;
		cached_start_ms = (int64) first_after(t - SEARCH_SPAN, t, day - 1, tz) * 1000;
		cached_tz = tz;
	}
	if (next_day_ms)
		*next_day_ms = cached_next_ms;
	return cached_start_ms;
}
