/*-------------------------------------------------------------------------
 *
 * http.h
 *	  hubsync's HTTP client: libcurl's multi interface driven from a
 *	  worker's latch wait, several requests in flight, keep-alive.
 *
 * IDENTIFICATION
 *	  src/hubspot/http.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_HTTP_H
#define HUBSYNC_HTTP_H

#include "lib/stringinfo.h"

/* Largest response body we keep; longer ones fail the request */
#define HUBSYNC_HTTP_MAX_RESPONSE (32 * 1024 * 1024)

typedef struct HubsyncHttpRequest
{
	/* set by the caller before hubsync_http_start() */
	const char *method;			/* GET, POST, PATCH, PUT, DELETE */
	char	   *url;
	char	   *body;			/* NULL for none */
	const char *content_type;	/* default application/json */
	const char *bearer;			/* access token, or NULL */
	void	   *owner;			/* caller's data */
	long		timeout_ms;		/* 0: hubsync.request_timeout */
	int			quota_class;	/* HubsyncQuotaClass it was sent under (metrics) */

	/* results */
	bool		done;
	long		status;			/* HTTP status; 0 when no response */
	bool		timed_out;
	char		error[256];		/* transport error, empty if none */
	char	   *response;		/* malloc'd, NUL-terminated */
	size_t		response_len;
	bool		too_large;
	long		rl_max;			/* X-HubSpot-RateLimit-Max, -1 if absent */
	long		rl_remaining;	/* X-HubSpot-RateLimit-Remaining, -1 */
	long		rl_interval_ms; /* X-HubSpot-RateLimit-Interval-Milliseconds */
	long		rl_daily_remaining; /* X-HubSpot-RateLimit-Daily-Remaining */
	long		retry_after_s;	/* Retry-After, -1 if absent */
	TimestampTz started_at;
	TimestampTz finished_at;
	uint64		quota_ticket;	/* its entry in the shared quota's window */

	/* private */
	void	   *easy;
	void	   *headers;
} HubsyncHttpRequest;

extern void hubsync_http_init(void);
extern void hubsync_http_start(HubsyncHttpRequest *req);
extern int	hubsync_http_inflight(void);
extern int	hubsync_http_wait(long timeout_ms);
extern HubsyncHttpRequest *hubsync_http_next_done(void);
extern void hubsync_http_release(HubsyncHttpRequest *req);
extern HubsyncHttpRequest *hubsync_http_perform(HubsyncHttpRequest *req);

#endif							/* HUBSYNC_HTTP_H */
