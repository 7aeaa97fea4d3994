/*-------------------------------------------------------------------------
 *
 * metrics.c
 *	  The Prometheus endpoint of the "hubsync webhook" worker: GET /metrics
 *	  on hubsync.metrics_listen_address:hubsync.metrics_port, in the
 *	  Prometheus text exposition format (version 0.0.4).
 *
 * It is a second libmicrohttpd daemon beside the receiver's, run the same
 * way (external select mode: the worker waits on both daemons' sockets,
 * receiver.c's hubsync_receiver_wait, and calls MHD_run), so every
 * callback runs on the worker's main thread and none touches the database.
 *
 * Two kinds of values:
 *  - live ones, read from shared memory at each scrape (atomic counters,
 *    the quota, worker slots): request and webhook counters, the push
 *    latency histogram, quota use, worker states;
 *  - catalog ones (queue depths and ages, dead letters, backfills,
 *    pollers), read by the worker's main loop in one short read-only
 *    transaction with a statement timeout, at most every
 *    METRICS_REFRESH_MS and only when somebody scrapes: a scrape that
 *    finds them older than that is suspended, the loop reads them after
 *    it has stored the webhook deliveries of the same wake-up, and the
 *    scrape is resumed and answered.  Between scrapes nothing is read.
 * A slow scraper only holds a connection of its own (libmicrohttpd writes
 * without blocking); connections are few and time out.
 *
 * Counters live in shared memory: monotonic while the server is up, they
 * start again at zero when it restarts (Prometheus' rate() handles that).
 *
 * IDENTIFICATION
 *	  src/webhook/metrics.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include <sys/socket.h>
#include <microhttpd.h>

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/memutils.h"
#include "bgw/worker.h"
#include "webhook/metrics.h"
#include "webhook/receiver.h"
#include "webhook/settings.h"

#define METRICS_PATH "/metrics"
#define METRICS_REFRESH_MS 5000		/* catalog values at most this old */
#define METRICS_MAX_CONNECTIONS 8
#define METRICS_TIMEOUT_S 10
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* one scrape in progress; malloc'd, freed when libmicrohttpd completes it */
typedef struct Scrape
{
	struct MHD_Connection *conn;
	bool		waited;			/* was suspended for a refresh already */
	bool		queued;			/* on the waiting list */
	struct Scrape *next;
} Scrape;

/* a growing malloc'd text; no palloc, no ereport (callbacks use it) */
typedef struct OutBuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
	bool		failed;
} OutBuf;

static struct MHD_Daemon *metrics_daemon = NULL;
static int	bound_port = 0;
static char bound_address[256];
static bool bind_failed_logged = false;
static Scrape *waiting_head = NULL;

/* the catalog families, as exposition text (malloc'd), and their age */
static char *catalog_text = NULL;
static int64 catalog_read_ms = 0;	/* last successful read, 0 = never */
static int64 catalog_tried_ms = 0;	/* last attempt */
static bool catalog_failed_logged = false;

/* out_printf -- append formatted text; on out of memory remember it */
static void out_printf(OutBuf *b, const char *fmt,...) pg_attribute_printf(2, 3);

static void
out_printf(OutBuf *b, const char *fmt,...)
{
	va_list		ap;
	int			n;

	if (b->failed)
		return;
	for (;;)
	{
		size_t		avail = b->cap - b->len;

		if (b->data != NULL)
		{
			va_start(ap, fmt);
			n = vsnprintf(b->data + b->len, avail, fmt, ap);
			va_end(ap);
			if (n < 0)
			{
				b->failed = true;
				return;
			}
			if ((size_t) n < avail)
			{
				b->len += n;
				return;
			}
		}
		else
			n = 0;
		{
			size_t		cap = Max(b->cap * 2, b->len + n + 4096);
			char	   *d = realloc(b->data, cap);

			if (d == NULL)
			{
				b->failed = true;
				return;
			}
			b->data = d;
			b->cap = cap;
		}
	}
}

/* out_label -- append a label value, escaped as the text format says */
static void
out_label(OutBuf *b, const char *v)
{
	for (; *v; v++)
	{
		if (*v == '\\')
			out_printf(b, "\\\\");
		else if (*v == '"')
			out_printf(b, "\\\"");
		else if (*v == '\n')
			out_printf(b, "\\n");
		else
			out_printf(b, "%c", *v);
	}
}

/* out_family -- the HELP and TYPE lines of a metric family */
static void
out_family(OutBuf *b, const char *name, const char *type, const char *help)
{
	out_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* worker_label -- "push" for "hubsync push" */
static const char *
worker_label(int i)
{
	const char *n = hubsync_worker_names[i];

	return strncmp(n, "hubsync ", 8) == 0 ? n + 8 : n;
}

/*
 * out_live -- the families read from shared memory now.  Runs in a
 * libmicrohttpd callback: spinlocks and atomics only.
 */
static void
out_live(OutBuf *b)
{
	HubsyncMetrics *m = &hubsync_shared->metrics;
	HubsyncQuotaSnapshot q;
	HubsyncWorkerState states[HUBSYNC_NUM_WORKERS];
	uint64		cum = 0;
	int			c,
				s,
				i;

	out_family(b, "hubsync_http_requests_total", "counter",
			   "HubSpot API answers by quota class (realtime, bulk, search) and HTTP status; status \"error\" is no answer (timeout, connection error).");
	for (c = 0; c < HUBSYNC_METRICS_CLASSES; c++)
		for (s = 0; s < HUBSYNC_METRICS_STATUSES; s++)
		{
			uint64		v = pg_atomic_read_u64(&m->requests[c][s]);

			/* 200, 429 and errors always, so rate() and alerts see zero */
			if (v == 0 && s != 0 && s != 200 && s != 429)
				continue;
			if (s == 0)
				out_printf(b, "hubsync_http_requests_total{class=\"%s\",status=\"error\"} " UINT64_FORMAT "\n",
						   hubsync_metrics_class_names[c], v);
			else
				out_printf(b, "hubsync_http_requests_total{class=\"%s\",status=\"%d\"} " UINT64_FORMAT "\n",
						   hubsync_metrics_class_names[c], s, v);
		}

	out_family(b, "hubsync_webhook_events_total", "counter",
			   "Webhook deliveries, events and refusals by result (the counters of hubsync.webhook_stats).");
	for (i = 0; i < HUBSYNC_WH_NUM_COUNTERS; i++)
		out_printf(b, "hubsync_webhook_events_total{result=\"%s\"} " UINT64_FORMAT "\n",
				   hubsync_webhook_counter_names[i],
				   pg_atomic_read_u64(&hubsync_shared->webhook_counters[i]));

	out_family(b, "hubsync_push_latency_seconds", "histogram",
			   "Time from a change's transaction to HubSpot's answer accepting it, per pushed record.");
	for (i = 0; i < HUBSYNC_LATENCY_BUCKETS; i++)
	{
		cum += pg_atomic_read_u64(&m->latency[i]);
		out_printf(b, "hubsync_push_latency_seconds_bucket{le=\"%g\"} " UINT64_FORMAT "\n",
				   hubsync_latency_bounds[i], cum);
	}
	cum += pg_atomic_read_u64(&m->latency[HUBSYNC_LATENCY_BUCKETS]);
	out_printf(b, "hubsync_push_latency_seconds_bucket{le=\"+Inf\"} " UINT64_FORMAT "\n", cum);
	out_printf(b, "hubsync_push_latency_seconds_sum %.6f\n",
			   (double) pg_atomic_read_u64(&m->latency_sum_us) / 1000000.0);
	out_printf(b, "hubsync_push_latency_seconds_count " UINT64_FORMAT "\n", cum);

	hubsync_quota_snapshot(&q);
	out_family(b, "hubsync_rate_limit_used", "gauge",
			   "HubSpot requests sent in the current 10-second window.");
	out_printf(b, "hubsync_rate_limit_used %d\n", q.window_used);
	out_family(b, "hubsync_rate_limit_max", "gauge",
			   "Requests allowed per 10-second window (hubsync.rate_limit, or less if HubSpot's headers say so).");
	out_printf(b, "hubsync_rate_limit_max %d\n", q.window_limit);
	out_family(b, "hubsync_daily_used", "gauge",
			   "HubSpot requests sent in the account's current day.");
	out_printf(b, "hubsync_daily_used " INT64_FORMAT "\n", q.daily_used);
	out_family(b, "hubsync_daily_limit", "gauge",
			   "Requests allowed per day (hubsync.daily_limit; 0 = no limit).");
	out_printf(b, "hubsync_daily_limit " INT64_FORMAT "\n", q.daily_limit);
	out_family(b, "hubsync_rate_limit_blocked", "gauge",
			   "1 while every worker waits after a 429 or for the daily allowance, else 0.");
	out_printf(b, "hubsync_rate_limit_blocked %d\n", q.blocked_until != 0 ? 1 : 0);
	out_family(b, "hubsync_push_retries_total", "counter",
			   "Pushes scheduled for another attempt after a transient error.");
	out_printf(b, "hubsync_push_retries_total " INT64_FORMAT "\n", q.retries);

	/* one reading of every worker's state serves both families */
	SpinLockAcquire(&hubsync_shared->mutex);
	for (i = 0; i < HUBSYNC_NUM_WORKERS; i++)
		states[i] = hubsync_shared->workers[i].state;
	SpinLockRelease(&hubsync_shared->mutex);
	out_family(b, "hubsync_worker_up", "gauge",
			   "1 while the worker runs (state running), else 0.");
	for (i = 0; i < HUBSYNC_NUM_WORKERS; i++)
		out_printf(b, "hubsync_worker_up{worker=\"%s\"} %d\n", worker_label(i),
				   states[i] == HUBSYNC_STATE_RUNNING ? 1 : 0);
	out_family(b, "hubsync_worker_state", "gauge",
			   "1 for each worker's current state, as hubsync.worker_status() says it.");
	for (i = 0; i < HUBSYNC_NUM_WORKERS; i++)
		out_printf(b, "hubsync_worker_state{worker=\"%s\",state=\"%s\"} 1\n",
				   worker_label(i), hubsync_worker_state_name(states[i]));

	out_family(b, "hubsync_auth_failed", "gauge",
			   "1 while HubSpot refuses hubsync's credentials or OAuth refresh token (sync stopped), else 0.");
	out_printf(b, "hubsync_auth_failed %d\n",
			   pg_atomic_read_u32(&hubsync_shared->auth_failed) != HUBSYNC_AUTH_OK ? 1 : 0);
	out_family(b, "hubsync_paused", "gauge",
			   "1 while hubsync.pause() holds every worker, else 0.");
	out_printf(b, "hubsync_paused %d\n",
			   pg_atomic_read_u32(&hubsync_shared->paused) != 0 ? 1 : 0);

	out_family(b, "hubsync_metrics_catalog_age_seconds", "gauge",
			   "Age of the values read from the database (queues, dead letters, backfills, pollers); -1 before the first read.");
	if (catalog_read_ms == 0)
		out_printf(b, "hubsync_metrics_catalog_age_seconds -1\n");
	else
		out_printf(b, "hubsync_metrics_catalog_age_seconds %.3f\n",
				   (double) (hubsync_now_ms() - catalog_read_ms) / 1000.0);
}

/*
 * The catalog families: name, type, help, the query giving their samples
 * (label values then the value, all as text) and the label names.  The
 * queries use the queue tables' partial indexes where there are some;
 * the outbox and dead letters are counted whole, which costs what their
 * backlog is (hubsync.status costs the same).
 */
typedef struct CatalogFamily
{
	const char *name;
	const char *type;
	const char *help;
	const char *labels[2];
	const char *sql;
} CatalogFamily;

static const CatalogFamily catalog_families[] = {
	{"hubsync_outbox_pending", "gauge",
		"Local changes waiting for HubSpot (pending or in flight), per object type.",
		{"object_type", NULL},
		"SELECT coalesce(t.object_type, o.object_type), coalesce(o.n, 0) "
		"FROM hubsync.object_types t FULL JOIN "
		"(SELECT object_type, count(*) AS n FROM hubsync.outbox GROUP BY 1) o "
		"ON o.object_type = t.object_type ORDER BY 1"},
	{"hubsync_outbox_oldest_age_seconds", "gauge",
		"Age of the oldest change waiting for HubSpot, per object type (0 when none waits).",
		{"object_type", NULL},
		"SELECT coalesce(t.object_type, o.object_type), "
		"round(coalesce(extract(epoch FROM now() - o.oldest), 0)::numeric, 3) "
		"FROM hubsync.object_types t FULL JOIN "
		"(SELECT object_type, min(created_at) AS oldest FROM hubsync.outbox GROUP BY 1) o "
		"ON o.object_type = t.object_type ORDER BY 1"},
	{"hubsync_dead_letters", "gauge",
		"Changes HubSpot refused for good (rows of hubsync.dead_letters), per object type.",
		{"object_type", NULL},
		"SELECT coalesce(t.object_type, d.object_type), coalesce(d.n, 0) "
		"FROM hubsync.object_types t FULL JOIN "
		"(SELECT object_type, count(*) AS n FROM hubsync.dead_letters GROUP BY 1) d "
		"ON d.object_type = t.object_type ORDER BY 1"},
	{"hubsync_inbox_pending", "gauge",
		"Webhook events stored and not yet applied.",
		{NULL, NULL},
		"SELECT count(*) FROM hubsync.inbox WHERE state = 'pending'"},
	{"hubsync_inbox_lag_seconds", "gauge",
		"Age (by HubSpot's occurredAt) of the oldest webhook event not yet applied (0 when none waits).",
		{NULL, NULL},
		"SELECT round(greatest(coalesce(extract(epoch FROM now()) - min(occurred_at) / 1000.0, 0), 0), 3) "
		"FROM hubsync.inbox WHERE state = 'pending'"},
	{"hubsync_inbox_failed", "gauge",
		"Webhook events that failed to apply and wait for hubsync.retry_inbox().",
		{NULL, NULL},
		"SELECT count(*) FROM hubsync.inbox WHERE state = 'failed'"},
	{"hubsync_backfill_records", "gauge",
		"Records imported or matched so far by the latest backfill of each object type.",
		{"object_type", NULL},
		"SELECT object_type, done FROM hubsync.backfills ORDER BY 1"},
	{"hubsync_backfill_total_estimate", "gauge",
		"Records HubSpot reported when the latest backfill of each object type started.",
		{"object_type", NULL},
		"SELECT object_type, total_estimate FROM hubsync.backfills "
		"WHERE total_estimate IS NOT NULL ORDER BY 1"},
	{"hubsync_backfill_state", "gauge",
		"1 for the state (running, done, failed) of the latest backfill of each object type.",
		{"object_type", "state"},
		"SELECT object_type, state, 1 FROM hubsync.backfills ORDER BY 1"},
	{"hubsync_object_type_paused", "gauge",
		"1 while hubsync.pause() holds an object type, else 0.",
		{"object_type", NULL},
		"SELECT object_type, paused::int FROM hubsync.object_types ORDER BY 1"},
	{"hubsync_poll_failing", "gauge",
		"1 while the poller of an object type (not paused) fails, else 0.",
		{"object_type", NULL},
		"SELECT p.object_type, (p.last_error IS NOT NULL AND NOT t.paused)::int "
		"FROM hubsync.poll_state p JOIN hubsync.object_types t USING (object_type) ORDER BY 1"},
};

/*
 * read_catalog -- run the catalog queries (in a transaction the caller
 * opened) and write their families to b.
 */
static void
read_catalog(OutBuf *b)
{
	int			f;

	SPI_connect();
	/* a scrape is never worth a long wait: give up and keep the old values */
	SPI_execute("SET LOCAL statement_timeout = '1s'", false, 0);
	SPI_execute("SET LOCAL lock_timeout = '1s'", false, 0);
	for (f = 0; f < lengthof(catalog_families); f++)
	{
		const CatalogFamily *cf = &catalog_families[f];
		int			nlabels = (cf->labels[0] != NULL) + (cf->labels[1] != NULL);
		uint64		r;

		if (SPI_execute(cf->sql, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "hubsync metrics query failed: %s", cf->sql);
		out_family(b, cf->name, cf->type, cf->help);
		for (r = 0; r < SPI_processed; r++)
		{
			HeapTuple	tup = SPI_tuptable->vals[r];
			TupleDesc	td = SPI_tuptable->tupdesc;
			char	   *value = SPI_getvalue(tup, td, nlabels + 1);
			int			l;

			out_printf(b, "%s", cf->name);
			for (l = 0; l < nlabels; l++)
			{
				char	   *lv = SPI_getvalue(tup, td, l + 1);

				out_printf(b, "%s%s=\"", l == 0 ? "{" : ",", cf->labels[l]);
				out_label(b, lv ? lv : "");
				out_printf(b, "\"");
			}
			out_printf(b, "%s %s\n", nlabels > 0 ? "}" : "", value ? value : "0");
		}
	}
	SPI_finish();
}

/* empty_catalog -- the catalog families without samples */
static void
empty_catalog(OutBuf *b)
{
	int			f;

	for (f = 0; f < lengthof(catalog_families); f++)
		out_family(b, catalog_families[f].name, catalog_families[f].type,
				   catalog_families[f].help);
}

/*
 * refresh_catalog -- read the catalog families (main loop only).  When
 * hubsync is not ready (no extension, standby, disabled) they are shown
 * without samples; when the read fails, the previous values stay, and
 * hubsync_metrics_catalog_age_seconds shows how old they are.
 */
static void
refresh_catalog(bool ready)
{
	MemoryContext cxt = CurrentMemoryContext;
	OutBuf		b = {0};
	volatile bool ok = true;

	catalog_tried_ms = hubsync_now_ms();
	if (!ready)
		empty_catalog(&b);
	else
	{
		PG_TRY();
		{
			if (hubsync_worker_begin_xact("reading metrics"))
				read_catalog(&b);
			else
			{
				free(b.data);
				memset(&b, 0, sizeof(b));
				empty_catalog(&b);
			}
			hubsync_worker_end_xact();
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			MemoryContextSwitchTo(cxt);
			if (!catalog_failed_logged)
				ereport(WARNING,
						(errmsg("hubsync metrics could not read queue depths: %s", edata->message),
						 errhint("The endpoint keeps serving the last values read; hubsync_metrics_catalog_age_seconds shows their age.")));
			catalog_failed_logged = true;
			FreeErrorData(edata);
			ok = false;
		}
		PG_END_TRY();
	}
	if (!ok || b.failed)
	{
		free(b.data);
		return;
	}
	catalog_failed_logged = false;
	free(catalog_text);
	catalog_text = b.data;
	catalog_read_ms = catalog_tried_ms;
}

/* answer_text -- a short plain-text answer (errors) */
static enum MHD_Result
answer_text(struct MHD_Connection *conn, unsigned int status, const char *text)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(text), (void *) text,
										   MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
	if (status == 405)
		MHD_add_response_header(resp, "Allow", "GET");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* answer_metrics -- the exposition: live families, then catalog ones */
static enum MHD_Result
answer_metrics(struct MHD_Connection *conn)
{
	OutBuf		b = {0};
	struct MHD_Response *resp;
	enum MHD_Result ret;

	out_live(&b);
	if (catalog_text)
		out_printf(&b, "%s", catalog_text);
	else
		empty_catalog(&b);
	if (b.failed)
	{
		free(b.data);
		return answer_text(conn, 503, "out of memory\n");
	}
	resp = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL)
	{
		free(b.data);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", METRICS_CONTENT_TYPE);
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/*
 * handle_scrape -- libmicrohttpd's access handler (main thread, inside
 * MHD_run): refuse what is not GET /metrics, suspend a scrape whose
 * catalog values are stale until the main loop has read them, answer.
 * Never calls into the database and never raises an error.
 */
static enum MHD_Result
handle_scrape(void *cls, struct MHD_Connection *conn, const char *url,
			  const char *method, const char *version,
			  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	Scrape	   *s = *con_cls;

	if (s == NULL)
	{
		s = calloc(1, sizeof(Scrape));
		if (s == NULL)
			return MHD_NO;
		s->conn = conn;
		*con_cls = s;
		if (strcmp(method, "GET") != 0)
			return answer_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
							   "only GET is served here\n");
		if (url == NULL || strcmp(url, METRICS_PATH) != 0)
			return answer_text(conn, MHD_HTTP_NOT_FOUND,
							   "not found: the metrics are at " METRICS_PATH "\n");
		return MHD_YES;
	}
	if (*upload_data_size > 0)
	{
		*upload_data_size = 0;	/* a GET body means nothing: discard */
		return MHD_YES;
	}
	if (!s->waited && hubsync_now_ms() - catalog_tried_ms >= METRICS_REFRESH_MS)
	{
		s->waited = true;
		s->queued = true;
		s->next = waiting_head;
		waiting_head = s;
		MHD_suspend_connection(conn);
		return MHD_YES;
	}
	return answer_metrics(conn);
}

/* scrape_completed -- libmicrohttpd is done with a scrape: free it */
static void
scrape_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
				 enum MHD_RequestTerminationCode toe)
{
	Scrape	   *s = *con_cls;
	Scrape	  **p;

	if (s == NULL)
		return;
	if (s->queued)
		for (p = &waiting_head; *p; p = &(*p)->next)
			if (*p == s)
			{
				*p = s->next;
				break;
			}
	free(s);
	*con_cls = NULL;
}

/*
 * resume_all -- resume every suspended scrape (answered at the next
 * MHD_run)
 */
static void
resume_all(void)
{
	while (waiting_head)
	{
		Scrape	   *s = waiting_head;

		waiting_head = s->next;
		s->next = NULL;
		s->queued = false;
		MHD_resume_connection(s->conn);
	}
}

/*
 * hubsync_metrics_run -- let the metrics daemon do its I/O; if scrapes
 * wait for fresh catalog values, read them (ready: hubsync is installed
 * and this is a primary) and answer those scrapes.
 */
void
hubsync_metrics_run(bool ready)
{
	if (metrics_daemon == NULL)
		return;
	MHD_run(metrics_daemon);
	if (waiting_head == NULL)
		return;
	refresh_catalog(ready);
	resume_all();
	MHD_run(metrics_daemon);
}

/* hubsync_metrics_stop -- close the metrics endpoint */
void
hubsync_metrics_stop(void)
{
	if (metrics_daemon == NULL)
		return;
	resume_all();				/* libmicrohttpd closes them now */
	MHD_stop_daemon(metrics_daemon);
	metrics_daemon = NULL;
	waiting_head = NULL;
	bound_port = 0;
	ereport(LOG, (errmsg("hubsync metrics endpoint stopped listening")));
}

/*
 * hubsync_metrics_configure -- make the endpoint match the settings:
 * start it, stop it (port 0) or rebind it.  Returns whether it listens.
 */
bool
hubsync_metrics_configure(void)
{
	struct sockaddr_storage ss;
	unsigned int flags;

	if (metrics_daemon != NULL &&
		(hubsync_metrics_port != bound_port ||
		 strcmp(hubsync_metrics_listen_address, bound_address) != 0))
		hubsync_metrics_stop();
	if (hubsync_metrics_port == 0)
	{
		bind_failed_logged = false;
		return false;
	}
	if (metrics_daemon != NULL)
		return true;
	if (!hubsync_listen_address(hubsync_metrics_listen_address, hubsync_metrics_port,
								"metrics endpoint", "hubsync.metrics_listen_address",
								!bind_failed_logged, &ss, &flags))
	{
		bind_failed_logged = true;
		return false;
	}
	metrics_daemon = MHD_start_daemon(flags, (uint16_t) hubsync_metrics_port,
									  NULL, NULL,
									  &handle_scrape, NULL,
									  MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
									  MHD_OPTION_CONNECTION_LIMIT, (unsigned int) METRICS_MAX_CONNECTIONS,
									  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) METRICS_TIMEOUT_S,
									  MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int) 1,
									  MHD_OPTION_NOTIFY_COMPLETED, &scrape_completed, NULL,
									  MHD_OPTION_END);
	if (metrics_daemon == NULL)
	{
		if (!bind_failed_logged)
			ereport(WARNING,
					(errmsg("hubsync metrics endpoint could not listen on %s port %d",
							hubsync_metrics_listen_address, hubsync_metrics_port),
					 errhint("Check that hubsync.metrics_port is free and hubsync.metrics_listen_address is an address of this host; hubsync retries every few seconds.")));
		bind_failed_logged = true;
		return false;
	}
	bind_failed_logged = false;
	bound_port = hubsync_metrics_port;
	strlcpy(bound_address, hubsync_metrics_listen_address, sizeof(bound_address));
	ereport(LOG,
			(errmsg("hubsync metrics endpoint listening on %s port %d, path %s",
					hubsync_metrics_listen_address, hubsync_metrics_port, METRICS_PATH)));
	return true;
}

/*
 * hubsync_metrics_fdset -- add the endpoint's sockets to the worker's wait
 * and lower *timeout to libmicrohttpd's own; false when it is off.
 */
bool
hubsync_metrics_fdset(fd_set *rs, fd_set *ws, fd_set *es, int *max_fd,
					  long *timeout)
{
	MHD_socket	fd = *max_fd;
	MHD_UNSIGNED_LONG_LONG t;

	if (metrics_daemon == NULL)
		return false;
	if (MHD_get_fdset2(metrics_daemon, rs, ws, es, &fd, FD_SETSIZE) == MHD_YES)
		*max_fd = Max(*max_fd, (int) fd);
	if (MHD_get_timeout(metrics_daemon, &t) == MHD_YES && (long) t < *timeout)
		*timeout = (long) t;
	return true;
}
