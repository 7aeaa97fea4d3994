/*-------------------------------------------------------------------------
 *
 * metrics.h
 *	  The Prometheus endpoint (GET /metrics) of the "hubsync webhook"
 *	  worker: its own libmicrohttpd daemon, in external select mode.
 *
 * IDENTIFICATION
 *	  src/webhook/metrics.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_WEBHOOK_METRICS_H
#define HUBSYNC_WEBHOOK_METRICS_H

#include <sys/select.h>

extern bool hubsync_metrics_configure(void);
extern void hubsync_metrics_stop(void);
extern bool hubsync_metrics_fdset(fd_set *rs, fd_set *ws, fd_set *es,
								  int *max_fd, long *timeout);
extern void hubsync_metrics_run(bool ready);

#endif							/* HUBSYNC_WEBHOOK_METRICS_H */
