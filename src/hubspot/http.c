/*-------------------------------------------------------------------------
 *
 * http.c
 *	  HTTP client for the workers: libcurl's multi interface, driven by the
 *	  worker's own WaitEventSet so that the latch, postmaster death and
 *	  interrupts are honoured while requests are in flight.
 *
 * Rules this file keeps (see reference/extension-style.md, lessons 1 and 5):
 * libcurl is initialised in the worker, never in the postmaster; every
 * wait includes MyLatch and is followed by CHECK_FOR_INTERRUPTS by the
 * caller; no callback ever calls ereport or palloc (curl's callbacks run
 * inside curl, and a longjmp out of them would skip its cleanup); the
 * response buffers are malloc'd and freed by hubsync_http_release.
 *
 * IDENTIFICATION
 *	  src/hubspot/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include <curl/curl.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "util/compat.h"
#include "hubspot/http.h"
#include "hubspot/settings.h"
#include "util/parse_util.h"

#define MAX_SOCKETS 256
#define HEADER_MAX 1000000000L	/* largest rate-limit header value taken */

typedef struct CurlSocket
{
	curl_socket_t fd;
	int			what;			/* CURL_POLL_IN / OUT / INOUT */
} CurlSocket;

static CURLM *multi = NULL;
static CurlSocket sockets[MAX_SOCKETS];
static int	nsockets = 0;
static long timer_ms = -1;		/* curl's requested timeout, -1 = none */
static TimestampTz timer_set_at = 0;
static int	inflight = 0;

/* completed requests waiting for the caller, oldest first */
static HubsyncHttpRequest *done_queue[1024];
static int	done_head = 0;
static int	done_count = 0;

/* socket_cb -- curl tells us which sockets to watch for what */
static int
socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	int			i;

	for (i = 0; i < nsockets; i++)
		if (sockets[i].fd == fd)
			break;
	if (what == CURL_POLL_REMOVE)
	{
		if (i < nsockets)
			sockets[i] = sockets[--nsockets];
		return 0;
	}
	if (i == nsockets)
	{
		if (nsockets == MAX_SOCKETS)
			return -1;			/* curl fails that transfer */
		nsockets++;
	}
	sockets[i].fd = fd;
	sockets[i].what = what;
	return 0;
}

/* timer_cb -- curl asks to be called back after timeout_ms */
static int
timer_cb(CURLM *m, long timeout_ms, void *userp)
{
	timer_ms = timeout_ms;
	timer_set_at = GetCurrentTimestamp();
	return 0;
}

/* write_cb -- append response bytes, refusing oversized bodies */
static size_t
write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
	HubsyncHttpRequest *req = (HubsyncHttpRequest *) userp;
	size_t		n = size * nmemb;
	char	   *grown;

	if (req->response_len + n > HUBSYNC_HTTP_MAX_RESPONSE)
	{
		req->too_large = true;
		return 0;				/* aborts the transfer */
	}
	grown = realloc(req->response, req->response_len + n + 1);
	if (grown == NULL)
		return 0;
	req->response = grown;
	memcpy(req->response + req->response_len, data, n);
	req->response_len += n;
	req->response[req->response_len] = '\0';
	return n;
}

/* header_cb -- pick HubSpot's rate-limit headers and Retry-After */
static size_t
header_cb(char *line, size_t size, size_t nmemb, void *userp)
{
	HubsyncHttpRequest *req = (HubsyncHttpRequest *) userp;
	size_t		len = size * nmemb;

	/* every number is bounded here, so no caller's arithmetic can overflow */
	(void) (hubsync_header_number(line, len, "X-HubSpot-RateLimit-Max", HEADER_MAX, &req->rl_max) ||
			hubsync_header_number(line, len, "X-HubSpot-RateLimit-Remaining", HEADER_MAX, &req->rl_remaining) ||
			hubsync_header_number(line, len, "X-HubSpot-RateLimit-Interval-Milliseconds", HEADER_MAX,
								  &req->rl_interval_ms) ||
			hubsync_header_number(line, len, "X-HubSpot-RateLimit-Daily-Remaining", HEADER_MAX,
								  &req->rl_daily_remaining) ||
			hubsync_header_number(line, len, "Retry-After", HUBSYNC_MAX_RETRY_AFTER_S,
								  &req->retry_after_s));
	return len;
}

/*
 * hubsync_http_init -- initialise libcurl in this worker.  Requires a
 * build with an asynchronous resolver: the alternative uses SIGALRM and
 * siglongjmp, which is unsafe inside PostgreSQL.
 */
void
hubsync_http_init(void)
{
	curl_version_info_data *info;

	if (multi != NULL)
		return;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		ereport(ERROR, (errmsg("could not initialise libcurl")));
	info = curl_version_info(CURLVERSION_NOW);
	if (!(info->features & CURL_VERSION_ASYNCHDNS))
		ereport(WARNING,
				(errmsg("libcurl was built without an asynchronous resolver"),
				 errdetail("DNS lookups cannot be interrupted and may stall the worker.")));
	multi = curl_multi_init();
	if (multi == NULL)
		ereport(ERROR, (errmsg("could not create a libcurl multi handle")));
	if (curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
		curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
		curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 64L) != CURLM_OK)
	{
		curl_multi_cleanup(multi);
		multi = NULL;
		ereport(ERROR, (errmsg("could not configure the libcurl multi handle")));
	}
}

/*
 * fail_at_once -- complete a request that never went on the wire, as a
 * transport error its caller already handles (it is harvested like any
 * other finished request).
 */
static void
fail_at_once(HubsyncHttpRequest *req, const char *why)
{
	strlcpy(req->error, why, sizeof(req->error));
	req->finished_at = req->started_at;
	req->done = true;
	req->easy = req->headers = NULL;
	Assert(done_count < lengthof(done_queue));
	done_queue[(done_head + done_count) % lengthof(done_queue)] = req;
	done_count++;
	inflight++;
}

/*
 * Set a libcurl option, or record which one libcurl refused and leave the
 * function: every option matters (a timeout, the allowed protocols, the
 * headers), so a request is never sent with one of them missing.
 */
#define SETOPT(easy, opt, val) \
	do { \
		CURLcode	rc_ = curl_easy_setopt((easy), (opt), (val)); \
		if (rc_ != CURLE_OK) \
		{ \
			snprintf(err, errlen, "libcurl refused option %s: %s", #opt, \
					 curl_easy_strerror(rc_)); \
			return false; \
		} \
	} while (0)

/*
 * set_options -- every option of a request's easy handle; false with the
 * reason in err when libcurl refuses one.
 */
static bool
set_options(CURL *easy, HubsyncHttpRequest *req, struct curl_slist *headers,
			char *err, size_t errlen)
{
	long		timeout = req->timeout_ms > 0 ? req->timeout_ms : (long) hubsync_request_timeout;

	SETOPT(easy, CURLOPT_URL, req->url);
	SETOPT(easy, CURLOPT_NOSIGNAL, 1L);
	SETOPT(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(easy, CURLOPT_USERAGENT, HUBSYNC_USER_AGENT);
	SETOPT(easy, CURLOPT_TIMEOUT_MS, timeout);
	SETOPT(easy, CURLOPT_CONNECTTIMEOUT_MS, Min(timeout, 10000L));
	SETOPT(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(easy, CURLOPT_TCP_NODELAY, 1L);
	SETOPT(easy, CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(easy, CURLOPT_WRITEDATA, req);
	SETOPT(easy, CURLOPT_HEADERFUNCTION, header_cb);
	SETOPT(easy, CURLOPT_HEADERDATA, req);
	SETOPT(easy, CURLOPT_PRIVATE, req);
	SETOPT(easy, CURLOPT_CUSTOMREQUEST, req->method);
	if (req->body != NULL)
	{
		SETOPT(easy, CURLOPT_POSTFIELDS, req->body);
		SETOPT(easy, CURLOPT_POSTFIELDSIZE, (long) strlen(req->body));
	}
	SETOPT(easy, CURLOPT_HTTPHEADER, headers);
	return true;
}

/*
 * append_header -- add a line to a header list; on failure (out of
 * memory) free the whole list and return NULL.
 */
static struct curl_slist *
append_header(struct curl_slist *headers, const char *line)
{
	struct curl_slist *next = curl_slist_append(headers, line);

	if (next == NULL)
		curl_slist_free_all(headers);
	return next;
}

/*
 * build_headers -- the request's header list (content type, accept, the
 * bearer token), or NULL when libcurl could not allocate it.
 */
static struct curl_slist *
build_headers(HubsyncHttpRequest *req)
{
	struct curl_slist *headers;
	char		line[1024];

	snprintf(line, sizeof(line), "Content-Type: %s",
			 req->content_type ? req->content_type : "application/json");
	headers = append_header(NULL, line);
	if (headers != NULL)
		headers = append_header(headers, "Accept: application/json");
	if (headers != NULL)
		headers = append_header(headers, "Expect:");
	if (headers != NULL && req->bearer != NULL)
	{
		snprintf(line, sizeof(line), "Authorization: Bearer %s", req->bearer);
		headers = append_header(headers, line);
		explicit_bzero(line, sizeof(line));
	}
	return headers;
}

/*
 * hubsync_http_start -- begin a request; it completes during later calls
 * of hubsync_http_wait and is then returned by hubsync_http_next_done.
 */
void
hubsync_http_start(HubsyncHttpRequest *req)
{
	CURL	   *easy;
	struct curl_slist *headers;
	char		err[sizeof(req->error)];

	hubsync_http_init();
	req->done = false;
	req->status = 0;
	req->timed_out = false;
	req->error[0] = '\0';
	req->response = NULL;
	req->response_len = 0;
	req->too_large = false;
	req->rl_max = req->rl_remaining = req->rl_interval_ms = -1;
	req->rl_daily_remaining = req->retry_after_s = -1;
	req->started_at = GetCurrentTimestamp();
	req->quota_ticket = hubsync_quota_take_ticket();

	/*
	 * Defense in depth behind the checks at configuration time: a token or
	 * key never leaves in clear text for another machine.  The request
	 * fails at once, as a transport error its caller already handles.
	 */
	if (!hubsync_allow_insecure_http && hubsync_url_cleartext_remote(req->url))
	{
		fail_at_once(req, "refused to send over plain http:// to a host that is not loopback "
					 "(hubsync.allow_insecure_http is off)");
		return;
	}

	easy = curl_easy_init();
	if (easy == NULL)
		ereport(ERROR, (errmsg("could not create a libcurl handle")));
	headers = build_headers(req);
	if (headers == NULL || !set_options(easy, req, headers, err, sizeof(err)))
	{
		if (headers == NULL)
			strlcpy(err, "libcurl could not allocate the request headers", sizeof(err));
		curl_slist_free_all(headers);
		curl_easy_cleanup(easy);
		fail_at_once(req, err);
		return;
	}
	req->easy = easy;
	req->headers = headers;

	if (curl_multi_add_handle(multi, easy) != CURLM_OK)
	{
		curl_slist_free_all(headers);
		curl_easy_cleanup(easy);
		req->easy = req->headers = NULL;
		ereport(ERROR, (errmsg("could not start an HTTP request")));
	}
	inflight++;
}

/* hubsync_http_inflight -- requests started and not yet harvested */
int
hubsync_http_inflight(void)
{
	return inflight;
}

/* harvest -- move finished transfers to the done queue */
static void
harvest(void)
{
	CURLMsg    *msg;
	int			left;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		HubsyncHttpRequest *req;

		if (msg->msg != CURLMSG_DONE)
			continue;
		/* we set CURLOPT_PRIVATE on every handle: this cannot fail */
		if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &req) != CURLE_OK ||
			req == NULL)
			elog(ERROR, "libcurl lost a request's private pointer");
		if (curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &req->status) != CURLE_OK)
			req->status = 0;
		if (msg->data.result != CURLE_OK)
		{
			req->timed_out = (msg->data.result == CURLE_OPERATION_TIMEDOUT);
			if (req->too_large)
				strlcpy(req->error, "response body too large", sizeof(req->error));
			else
				strlcpy(req->error, curl_easy_strerror(msg->data.result),
						sizeof(req->error));
			req->status = 0;
		}
		req->finished_at = GetCurrentTimestamp();
		req->done = true;
		(void) curl_multi_remove_handle(multi, msg->easy_handle);	/* ours: cannot fail */
		Assert(done_count < lengthof(done_queue));
		done_queue[(done_head + done_count) % lengthof(done_queue)] = req;
		done_count++;
	}
}

/*
 * socket_action -- let libcurl act on a socket that is ready (or on its
 * timer); it fails only on a broken multi handle or out of memory, which
 * this worker cannot go on from.
 */
static void
socket_action(curl_socket_t fd, int flags)
{
	int			running;
	CURLMcode	rc = curl_multi_socket_action(multi, fd, flags, &running);

	if (rc != CURLM_OK)
		ereport(ERROR,
				(errmsg("libcurl could not drive its transfers: %s",
						curl_multi_strerror(rc))));
}

/* curl_timer_remaining -- ms until curl's timer fires, -1 if none */
static long
curl_timer_remaining(void)
{
	long		elapsed;

	if (timer_ms < 0)
		return -1;
	elapsed = (long) ((GetCurrentTimestamp() - timer_set_at) / 1000);
	return Max(timer_ms - elapsed, 0);
}

/*
 * hubsync_http_wait -- wait up to timeout_ms for the latch, postmaster
 * death or network activity, and let curl progress.  Returns true when
 * the latch was set (it is reset here; the caller checks its flags and
 * interrupts).
 */
int
hubsync_http_wait(long timeout_ms)
{
	WaitEventSet *set;
	WaitEvent	events[MAX_SOCKETS + 2];
	long		curl_wait = curl_timer_remaining();
	int			nevents;
	int			i;
	bool		latch_set = false;

	hubsync_http_init();
	if (curl_wait >= 0 && (timeout_ms < 0 || curl_wait < timeout_ms))
		timeout_ms = curl_wait;

	set = hubsync_create_wait_event_set(nsockets + 2);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (i = 0; i < nsockets; i++)
	{
		uint32		ev = 0;

		if (sockets[i].what & CURL_POLL_IN)
			ev |= WL_SOCKET_READABLE;
		if (sockets[i].what & CURL_POLL_OUT)
			ev |= WL_SOCKET_WRITEABLE;
		AddWaitEventToSet(set, ev, sockets[i].fd, NULL, NULL);
	}
	nevents = WaitEventSetWait(set, timeout_ms, events, lengthof(events),
							   PG_WAIT_EXTENSION);
	FreeWaitEventSet(set);

	for (i = 0; i < nevents; i++)
	{
		int			flags = 0;

		if (events[i].events & WL_LATCH_SET)
		{
			ResetLatch(MyLatch);
			latch_set = true;
			continue;
		}
		if (events[i].events & WL_SOCKET_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events[i].events & WL_SOCKET_WRITEABLE)
			flags |= CURL_CSELECT_OUT;
		if (flags)
			socket_action(events[i].fd, flags);
	}
	if (curl_timer_remaining() == 0)
	{
		/* the timer is one-shot: curl sets a new one if it needs it */
		timer_ms = -1;
		socket_action(CURL_SOCKET_TIMEOUT, 0);
	}
	harvest();
	return latch_set;
}

/* hubsync_http_next_done -- the oldest finished request, or NULL */
HubsyncHttpRequest *
hubsync_http_next_done(void)
{
	HubsyncHttpRequest *req;

	if (done_count == 0)
		return NULL;
	req = done_queue[done_head];
	done_head = (done_head + 1) % lengthof(done_queue);
	done_count--;
	inflight--;
	return req;
}

/* hubsync_http_release -- free what libcurl and the buffers hold */
void
hubsync_http_release(HubsyncHttpRequest *req)
{
	if (req->easy)
	{
		if (!req->done)
		{
			(void) curl_multi_remove_handle(multi, req->easy);	/* ours: cannot fail */
			inflight--;
		}
		curl_easy_cleanup(req->easy);
	}
	if (req->headers)
		curl_slist_free_all(req->headers);
	free(req->response);
	req->easy = req->headers = NULL;
	req->response = NULL;
}

/*
 * hubsync_http_perform -- run one request to completion (for the few
 * calls made outside the pipelined push path), still honouring
 * interrupts.  Other requests in flight progress meanwhile and are left
 * in the done queue for their owner.
 */
HubsyncHttpRequest *
hubsync_http_perform(HubsyncHttpRequest *req)
{
	hubsync_http_start(req);
	while (!req->done)
	{
		hubsync_http_wait(1000);
		CHECK_FOR_INTERRUPTS();
	}
	/* take it out of the done queue, keeping the others' order */
	{
		int			i,
					j = 0;
		HubsyncHttpRequest *keep[lengthof(done_queue)];

		for (i = 0; i < done_count; i++)
		{
			HubsyncHttpRequest *r = done_queue[(done_head + i) % lengthof(done_queue)];

			if (r != req)
				keep[j++] = r;
		}
		for (i = 0; i < j; i++)
			done_queue[i] = keep[i];
		done_head = 0;
		done_count = j;
		inflight--;
	}
	return req;
}
