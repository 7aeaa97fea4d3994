/*-------------------------------------------------------------------------
 *
 * metrics.c
 *	  Shared-memory counters for the Prometheus endpoint: HubSpot answers
 *	  by quota class and HTTP status, and the histogram of the time from a
 *	  change's transaction to HubSpot's answer accepting it.  Lock-free
 *	  (atomic adds), so any worker may count from anywhere.
 *
 * IDENTIFICATION
 *	  src/core/metrics.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "core/metrics.h"

const char *const hubsync_metrics_class_names[HUBSYNC_METRICS_CLASSES] = {
	"realtime", "bulk", "search"
};

const double hubsync_latency_bounds[HUBSYNC_LATENCY_BUCKETS] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
};

/* hubsync_metrics_init -- zero the counters at server start */
void
hubsync_metrics_init(HubsyncMetrics *m)
{
	int			c,
				s;

	for (c = 0; c < HUBSYNC_METRICS_CLASSES; c++)
		for (s = 0; s < HUBSYNC_METRICS_STATUSES; s++)
			pg_atomic_init_u64(&m->requests[c][s], 0);
	for (s = 0; s <= HUBSYNC_LATENCY_BUCKETS; s++)
		pg_atomic_init_u64(&m->latency[s], 0);
	pg_atomic_init_u64(&m->latency_sum_us, 0);
}

/*
 * hubsync_metrics_count_request -- count one HubSpot answer of quota
 * class cls; a status outside 100..599 (0: no answer) counts as an error.
 */
void
hubsync_metrics_count_request(int cls, long status)
{
	if (!hubsync_shmem_available())
		return;
	if (cls < 0 || cls >= HUBSYNC_METRICS_CLASSES)
		cls = 0;
	if (status < 100 || status >= HUBSYNC_METRICS_STATUSES)
		status = 0;
	pg_atomic_fetch_add_u64(&hubsync_shared->metrics.requests[cls][status], 1);
}

/*
 * hubsync_metrics_observe_push_latency -- record one pushed change that
 * HubSpot accepted usec microseconds after its transaction wrote it.
 */
void
hubsync_metrics_observe_push_latency(int64 usec)
{
	int			b;

	if (!hubsync_shmem_available())
		return;
	if (usec < 0)
		usec = 0;
	for (b = 0; b < HUBSYNC_LATENCY_BUCKETS; b++)
		if ((double) usec <= hubsync_latency_bounds[b] * 1000000.0)
			break;
	pg_atomic_fetch_add_u64(&hubsync_shared->metrics.latency[b], 1);
	pg_atomic_fetch_add_u64(&hubsync_shared->metrics.latency_sum_us, (uint64) usec);
}
