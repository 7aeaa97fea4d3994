/*-------------------------------------------------------------------------
 *
 * metrics.h
 *	  Counters behind the Prometheus endpoint (webhook/metrics.c) that no
 *	  other view keeps: HubSpot answers by quota class and status, and the
 *	  push latency histogram.  They live in shared memory, so they are
 *	  monotonic while the server is up and start again at zero with it.
 *
 * IDENTIFICATION
 *	  src/core/metrics.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_METRICS_CORE_H
#define HUBSYNC_METRICS_CORE_H

#include "port/atomics.h"

/* request classes: the quota classes (core/quota.h), same order */
#define HUBSYNC_METRICS_CLASSES 3
/* index = HTTP status 100..599; 0 = no answer (timeout, connection error) */
#define HUBSYNC_METRICS_STATUSES 600
/* finite upper bounds of the push latency histogram, in seconds */
#define HUBSYNC_LATENCY_BUCKETS 13

typedef struct HubsyncMetrics
{
	pg_atomic_uint64 requests[HUBSYNC_METRICS_CLASSES][HUBSYNC_METRICS_STATUSES];
	/* per bucket, not cumulative; the last one counts what is above 60 s */
	pg_atomic_uint64 latency[HUBSYNC_LATENCY_BUCKETS + 1];
	pg_atomic_uint64 latency_sum_us;
} HubsyncMetrics;

extern const char *const hubsync_metrics_class_names[HUBSYNC_METRICS_CLASSES];
extern const double hubsync_latency_bounds[HUBSYNC_LATENCY_BUCKETS];

extern void hubsync_metrics_init(HubsyncMetrics *m);
extern void hubsync_metrics_count_request(int cls, long status);
extern void hubsync_metrics_observe_push_latency(int64 usec);

#endif							/* HUBSYNC_METRICS_CORE_H */
