/*-------------------------------------------------------------------------
 *
 * receiver.c
 *	  The embedded webhook receiver of the "hubsync webhook" worker.
 *
 * libmicrohttpd runs without any thread of its own ("external select"
 * mode): the worker asks it for its sockets (MHD_get_fdset2) and its
 * timeout, waits on them in a WaitEventSet together with its latch and
 * postmaster death, and calls MHD_run after every wake-up.  So every
 * callback runs on the worker's main thread, and none of them touches the
 * database: the access handler only collects the body, refuses what it
 * can refuse from the request line and headers (404, 405, 413), and
 * suspends the connection once the body is complete.  The worker's loop
 * then checks every delivery completed at this wake-up and stores all that
 * pass in one transaction (group commit: one WAL flush for all; inbox.c),
 * falling back to a transaction per delivery if the group fails, resumes
 * the connections, and the next MHD_run sends the answers: 200 only after
 * the commit.
 *
 * Connections are limited in number (in total and per client address)
 * and cut off after a timeout, so slow clients cannot hold the receiver.
 * libmicrohttpd's own timeout counts idle time only, so a client sending a
 * header byte every few seconds would never meet it: the receiver keeps
 * its own list of open connections (MHD_OPTION_NOTIFY_CONNECTION) and
 * shuts down the socket of any that has not completed its request line
 * and headers within hubsync.webhook_header_timeout of its start (or of
 * its previous answer).  With the per-address limit that keeps a few
 * client addresses from taking every slot for long.
 *
 * IDENTIFICATION
 *	  src/webhook/receiver.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include <sys/select.h>
#include <sys/socket.h>
#include <netdb.h>
#include <microhttpd.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "webhook/inbox.h"
#include "webhook/metrics.h"
#include "webhook/receiver.h"
#include "bgw/worker.h"
#include "webhook/settings.h"

#define HUBSYNC_RECEIVER_MAX_EVENTS 64	/* socket events reported per wait */
#define HUBSYNC_DEFAULT_PATH "/hubspot/webhooks"
#define HUBSYNC_TLS_FILE_MAX (1024 * 1024)

/* One request in progress; malloc'd, freed when MHD completes it */
typedef struct ReceiverRequest
{
	char	   *body;
	size_t		len;
	TimestampTz started;		/* headers arrived */
	size_t		cap;
	int			status;			/* decided answer, 0 = not yet */
	const char *message;
	int			stored;
	int			duplicates;
	Jsonb	   *events;			/* checked body, palloc'd; only while storing */
	bool		suspended;
	bool		dead;			/* connection closed before we answered */
	char	   *method;
	char	   *signature_v3;
	char	   *timestamp;
	char	   *signature;
	char	   *signature_version;
	struct MHD_Connection *conn;
	struct ReceiverRequest *next_ready; /* list of complete deliveries */
} ReceiverRequest;

/*
 * One open connection, from accept to close; malloc'd, it is the socket
 * context libmicrohttpd hands back.  Linked newest first.
 */
typedef struct ReceiverConn
{
	struct MHD_Connection *conn;
	TimestampTz waiting_since;	/* accepted, or its last request answered */
	bool		in_request;		/* a request's headers arrived */
	bool		cut;			/* socket shut down by us; MHD closes it */
	struct ReceiverConn *prev;
	struct ReceiverConn *next;
} ReceiverConn;

static struct MHD_Daemon *daemon_handle = NULL;
static ReceiverConn *conns_head = NULL;
static ReceiverRequest *ready_head = NULL;
static ReceiverRequest *ready_tail = NULL;

/* what the running daemon was started with, to notice changes on SIGHUP */
static int	bound_port = 0;
static char bound_address[256];
static char public_url[1024];
static char served_path[1024];
static bool bind_failed_logged = false;

/* the limits and TLS files the running daemon was started with */
static int	bound_max_connections = 0;
static int	bound_per_address = 0;
static int	bound_max_header_size = 0;
static int	bound_timeout = 0;
static char bound_tls_cert[MAXPGPATH];
static char bound_tls_key[MAXPGPATH];
static char *tls_cert_pem = NULL;
static char *tls_key_pem = NULL;

/* the client secret, reloaded when the credentials change; never logged */
static char *secret = NULL;
static uint64 secret_version = PG_UINT64_MAX;

/* forget_secret -- wipe the cached client secret */
static void
forget_secret(void)
{
	if (secret)
	{
		explicit_bzero(secret, strlen(secret));
		pfree(secret);
		secret = NULL;
	}
}

/* refresh_secret -- reload the client secret if the credentials changed */
static void
refresh_secret(void)
{
	uint64		version = hubsync_credentials_version();
	char	   *s;

	if (version == secret_version)
		return;
	if (!hubsync_worker_begin_xact(NULL))
	{
		/* the extension is gone: keep what we had, try again next time */
		hubsync_worker_end_xact();
		return;
	}
	s = hubsync_inbox_read_secret();
	forget_secret();
	if (s)
	{
		secret = MemoryContextStrdup(TopMemoryContext, s);
		explicit_bzero(s, strlen(s));
	}
	hubsync_worker_end_xact();
	secret_version = version;
}

/*
 * compute_public_url -- hubsync.webhook_public_url, or the default built
 * from the listen address and port; and the path the receiver serves.
 */
static void
compute_public_url(void)
{
	const char *p;
	size_t		n;

	if (hubsync_webhook_public_url && *hubsync_webhook_public_url)
		strlcpy(public_url, hubsync_webhook_public_url, sizeof(public_url));
	else if (strchr(hubsync_webhook_listen_address, ':'))
		snprintf(public_url, sizeof(public_url), "http://[%s]:%d%s",
				 hubsync_webhook_listen_address, hubsync_webhook_port, HUBSYNC_DEFAULT_PATH);
	else
		snprintf(public_url, sizeof(public_url), "http://%s:%d%s",
				 hubsync_webhook_listen_address, hubsync_webhook_port, HUBSYNC_DEFAULT_PATH);

	/* the path: after scheme://authority, up to '?' or '#' */
	p = strstr(public_url, "://");
	p = p ? strchr(p + 3, '/') : NULL;
	if (p == NULL)
		p = "/";
	n = strcspn(p, "?#");
	if (n >= sizeof(served_path))
		n = sizeof(served_path) - 1;
	memcpy(served_path, p, n);
	served_path[n] = '\0';
}

/* free_request -- release a request's memory */
static void
free_request(ReceiverRequest *req)
{
	free(req->body);
	free(req->method);
	free(req->signature_v3);
	free(req->timestamp);
	free(req->signature);
	free(req->signature_version);
	free(req);
}

/*
 * notify_connection -- libmicrohttpd opened or closed a connection: keep
 * the list of open connections the header deadline is checked against.
 * Main thread, inside MHD_run; no palloc, no ereport.
 */
static void
notify_connection(void *cls, struct MHD_Connection *connection,
				  void **socket_context, enum MHD_ConnectionNotificationCode toe)
{
	ReceiverConn *c = *socket_context;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED)
	{
		c = calloc(1, sizeof(ReceiverConn));
		if (c == NULL)
			return;				/* untracked: only the idle timeout applies */
		c->conn = connection;
		c->waiting_since = GetCurrentTimestamp();
		c->next = conns_head;
		if (conns_head)
			conns_head->prev = c;
		conns_head = c;
		*socket_context = c;
	}
	else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && c != NULL)
	{
		if (c->prev)
			c->prev->next = c->next;
		else
			conns_head = c->next;
		if (c->next)
			c->next->prev = c->prev;
		free(c);
		*socket_context = NULL;
	}
}

/* conn_state -- our record of a connection, or NULL */
static ReceiverConn *
conn_state(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? (ReceiverConn *) ci->socket_context : NULL;
}

/*
 * cut_connection -- shut the socket down; libmicrohttpd reads the end of
 * the stream at its next MHD_run and closes the connection itself (it
 * still owns the socket, so it is never closed under it).
 */
static void
cut_connection(ReceiverConn *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);

	if (ci == NULL || c->cut)
		return;
	(void) shutdown(ci->connect_fd, SHUT_RDWR);
	c->cut = true;
	hubsync_count_webhook(HUBSYNC_WH_CONNECTIONS_CUT, 1);
}

/*
 * cut_slow_connections -- cut every connection still without the headers
 * of a request hubsync.webhook_header_timeout after it started (or after
 * its previous answer), however busy it looks.  Returns the milliseconds
 * until the next such deadline (-1: none).
 */
static long
cut_slow_connections(void)
{
	TimestampTz now = GetCurrentTimestamp();
	int64		limit_ms = (int64) hubsync_webhook_header_timeout * 1000;
	long		next = -1;
	ReceiverConn *c;

	for (c = conns_head; c; c = c->next)
	{
		int64		waited_ms;

		if (c->in_request || c->cut)
			continue;
		waited_ms = (now - c->waiting_since) / 1000;
		if (waited_ms >= limit_ms)
			cut_connection(c);
		else if (next < 0 || limit_ms - waited_ms < next)
			next = (long) (limit_ms - waited_ms);
	}
	return next;
}

/* dup_header -- a copy of a request header, or NULL */
static char *
dup_header(struct MHD_Connection *conn, const char *name)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);

	return v ? strdup(v) : NULL;
}

/* answer -- queue the response of a decided request */
static enum MHD_Result
answer(struct MHD_Connection *conn, int status, const char *message, int stored)
{
	char		buf[256];
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (status == 200)
		snprintf(buf, sizeof(buf), "{\"status\":\"ok\",\"stored\":%d}", stored);
	else
		snprintf(buf, sizeof(buf), "{\"status\":\"error\",\"message\":\"%s\"}", message);
	resp = MHD_create_response_from_buffer(strlen(buf), buf, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json");
	if (status == 405)
		MHD_add_response_header(resp, "Allow", "POST");
	ret = MHD_queue_response(conn, (unsigned int) status, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* refuse_early -- decide a refusal before the body is read, and count it */
static void
refuse_early(ReceiverRequest *req, HubsyncIngestResult r)
{
	req->status = hubsync_ingest_http_status(r);
	req->message = hubsync_ingest_message(r);
	switch (r)
	{
		case HUBSYNC_INGEST_BAD_PATH:
			hubsync_count_webhook(HUBSYNC_WH_REFUSED_PATH, 1);
			break;
		case HUBSYNC_INGEST_BAD_METHOD:
			hubsync_count_webhook(HUBSYNC_WH_REFUSED_METHOD, 1);
			break;
		case HUBSYNC_INGEST_TOO_LARGE:
			hubsync_count_webhook(HUBSYNC_WH_REFUSED_TOO_LARGE, 1);
			break;
		default:
			break;
	}
}

/*
 * handle_request -- libmicrohttpd's access handler.  Runs inside MHD_run
 * on the main thread; never calls into the database and never raises an
 * error (a longjmp out of here would corrupt libmicrohttpd's state).
 */
static enum MHD_Result
handle_request(void *cls, struct MHD_Connection *conn, const char *url,
			   const char *method, const char *version,
			   const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	ReceiverRequest *req = *con_cls;

	if (req == NULL)
	{
		const char *cl;
		ReceiverConn *c = conn_state(conn);

		/* first call: headers only; the header deadline no longer applies */
		if (c)
			c->in_request = true;
		req = calloc(1, sizeof(ReceiverRequest));
		if (req == NULL)
			return MHD_NO;
		req->conn = conn;
		req->started = GetCurrentTimestamp();
		*con_cls = req;
		if (url == NULL || strcmp(url, served_path) != 0)
			refuse_early(req, HUBSYNC_INGEST_BAD_PATH);
		else if (strcmp(method, "POST") != 0)
			refuse_early(req, HUBSYNC_INGEST_BAD_METHOD);
		else if ((cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length")) != NULL &&
				 strtoll(cl, NULL, 10) > (long long) hubsync_webhook_max_body)
			refuse_early(req, HUBSYNC_INGEST_TOO_LARGE);
		if (req->status != 0 && (req->status == 404 || req->status == 405 || req->status == 413))
		{
			/* answer at once; the body (if any) is not read */
			return answer(conn, req->status, req->message, 0);
		}
		return MHD_YES;
	}

	if (*upload_data_size > 0)
	{
		size_t		n = *upload_data_size;

		*upload_data_size = 0;
		/* a client trickling its body is cut off, however busy it looks */
		if (TimestampDifferenceExceeds(req->started, GetCurrentTimestamp(),
									   hubsync_webhook_timeout * 1000))
			return MHD_NO;
		if (req->status != 0)
			return MHD_YES;		/* refused already: discard */
		if (req->len + n > (size_t) hubsync_webhook_max_body)
		{
			refuse_early(req, HUBSYNC_INGEST_TOO_LARGE);
			free(req->body);
			req->body = NULL;
			req->len = req->cap = 0;
			return MHD_YES;
		}
		if (req->len + n + 1 > req->cap)
		{
			size_t		cap = Max(req->cap * 2, req->len + n + 1);
			char	   *b;

			cap = Max(cap, 4096);
			b = realloc(req->body, cap);
			if (b == NULL)
				return MHD_NO;
			req->body = b;
			req->cap = cap;
		}
		memcpy(req->body + req->len, upload_data, n);
		req->len += n;
		req->body[req->len] = '\0';
		return MHD_YES;
	}

	/* the whole body is here */
	if (req->status != 0)
		return answer(conn, req->status, req->message, req->stored);

	if (!req->suspended)
	{
		req->method = strdup(method);
		req->signature_v3 = dup_header(conn, "X-HubSpot-Signature-v3");
		req->timestamp = dup_header(conn, "X-HubSpot-Request-Timestamp");
		req->signature = dup_header(conn, "X-HubSpot-Signature");
		req->signature_version = dup_header(conn, "X-HubSpot-Signature-Version");
		req->suspended = true;
		req->next_ready = NULL;
		if (ready_tail)
			ready_tail->next_ready = req;
		else
			ready_head = req;
		ready_tail = req;
		MHD_suspend_connection(conn);
		return MHD_YES;
	}
	/* resumed without a decision cannot happen; be safe */
	return answer(conn, 500, "internal error", 0);
}

/* request_completed -- libmicrohttpd is done with a connection's request */
static void
request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
				  enum MHD_RequestTerminationCode toe)
{
	ReceiverRequest *req = *con_cls;
	ReceiverRequest *r;
	ReceiverConn *c = conn_state(conn);

	/* kept alive: the next request's headers are due within the deadline */
	if (c)
	{
		c->in_request = false;
		c->waiting_since = GetCurrentTimestamp();
	}
	if (req == NULL)
		return;
	/* still queued for processing (daemon stopping): unlink it */
	for (r = ready_head; r; r = r->next_ready)
	{
		if (r == req)
		{
			req->dead = true;
			return;				/* freed when the queue is drained */
		}
	}
	free_request(req);
	*con_cls = NULL;
}

/*
 * check_delivery -- run every check on one complete delivery (no database
 * access); on success req->events holds its events and true is returned,
 * else the refusal is decided.
 */
static bool
check_delivery(ReceiverRequest *req)
{
	HubsyncDelivery d;
	HubsyncIngestResult r;

	memset(&d, 0, sizeof(d));
	d.method = req->method;
	d.uri = public_url;
	d.body = req->body ? req->body : "";
	d.body_len = req->len;
	d.signature_v3 = req->signature_v3;
	d.timestamp = req->timestamp;
	d.signature = req->signature;
	d.signature_version = req->signature_version;

	r = hubsync_inbox_check(&d, secret, &req->events);
	req->status = hubsync_ingest_http_status(r);
	req->message = hubsync_ingest_message(r);
	return r == HUBSYNC_INGEST_OK;
}

/* refuse_unavailable -- answer 503 to a delivery we could not store */
static void
refuse_unavailable(ReceiverRequest *req)
{
	hubsync_count_webhook(HUBSYNC_WH_REFUSED_UNAVAILABLE, 1);
	req->status = 503;
	req->message = "could not store the delivery";
	req->stored = 0;
	req->events = NULL;
}

/*
 * store_deliveries -- store the events of n checked deliveries in one
 * transaction (group commit: one commit, one WAL flush for all of them).
 * Returns false, with nothing stored, if that transaction failed; the
 * error is logged.  Answers are decided only after the commit.
 */
static bool
store_deliveries(ReceiverRequest **reqs, int n)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool ok = true;
	int			i;

	PG_TRY();
	{
		if (!hubsync_worker_begin_xact("storing webhook deliveries"))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("extension \"hubsync\" is not installed"),
					 errhint("HubSpot retries the delivery once hubsync is back.")));
		for (i = 0; i < n; i++)
		{
			reqs[i]->stored = hubsync_inbox_store(reqs[i]->events, &reqs[i]->duplicates);
			CHECK_FOR_INTERRUPTS();
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
		ereport(WARNING,
				(errmsg("could not store %d webhook deliveries: %s", n, edata->message),
				 errhint(n > 1 ? "Each delivery is stored on its own instead." :
						 "HubSpot retries the delivery; check the server log for the cause.")));
		FreeErrorData(edata);
		ok = false;
	}
	PG_END_TRY();
	if (!ok)
		return false;
	for (i = 0; i < n; i++)
	{
		hubsync_inbox_count_stored(reqs[i]->stored, reqs[i]->duplicates);
		reqs[i]->events = NULL;
	}
	return true;
}

/*
 * process_deliveries -- check the n complete deliveries, then store all
 * that passed in one transaction; if that group fails, store each one in
 * a transaction of its own, so one bad delivery cannot fail the others
 * (it alone gets a 503, and HubSpot retries it).
 */
static void
process_deliveries(ReceiverRequest **reqs, int n)
{
	ReceiverRequest **ok = palloc(sizeof(ReceiverRequest *) * Max(n, 1));
	int			nok = 0;
	int			i;
	bool		any = false;

	refresh_secret();
	for (i = 0; i < n; i++)
		if (check_delivery(reqs[i]))
			ok[nok++] = reqs[i];
	if (nok == 0)
		return;
	if (!store_deliveries(ok, nok))
	{
		for (i = 0; i < nok; i++)
		{
			if (nok == 1 || !store_deliveries(&ok[i], 1))
				refuse_unavailable(ok[i]);
		}
	}
	for (i = 0; i < nok; i++)
		if (ok[i]->status == 200 && ok[i]->stored > 0)
			any = true;
	if (any)
		hubsync_wake_worker(HUBSYNC_WORKER_PULL);
}

/*
 * hubsync_receiver_run -- let libmicrohttpd do its I/O, then process the
 * deliveries it completed (all those complete at this wake-up together)
 * and let it send their answers.
 */
void
hubsync_receiver_run(void)
{
	int			rounds;

	if (daemon_handle == NULL)
		return;
	for (rounds = 0; rounds < 4; rounds++)
	{
		ReceiverRequest **batch;
		ReceiverRequest *req;
		int			n = 0,
					cap = 0,
					i;

		MHD_run(daemon_handle);
		(void) cut_slow_connections();
		for (req = ready_head; req; req = req->next_ready)
			cap++;
		if (cap == 0)
			break;
		batch = palloc(sizeof(ReceiverRequest *) * cap);
		while (ready_head)
		{
			req = ready_head;
			ready_head = req->next_ready;
			req->next_ready = NULL;
			if (req->dead)
				free_request(req);
			else
				batch[n++] = req;
		}
		ready_tail = NULL;
		if (n > 0)
			process_deliveries(batch, n);
		for (i = 0; i < n; i++)
			MHD_resume_connection(batch[i]->conn);
		pfree(batch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * hubsync_listen_address -- the socket address for a listen address ("*":
 * every address) and port, and the libmicrohttpd flags every hubsync
 * daemon starts with (external select mode on the worker's main thread,
 * suspend/resume, IPv6 for an IPv6 address).  Shared by the receiver and
 * the metrics endpoint.  An address that does not resolve is a WARNING
 * naming the daemon and its setting, when warn is set (the callers warn
 * once, not at every retry).
 */
bool
hubsync_listen_address(const char *host, int port, const char *daemon_name,
					   const char *setting, bool warn,
					   struct sockaddr_storage *ss, unsigned int *mhd_flags)
{
	struct addrinfo hints,
			   *res = NULL;
	char		portstr[16];
	int			rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, portstr, &hints, &res);
	if (rc != 0 || res == NULL)
	{
		if (warn)
			ereport(WARNING,
					(errmsg("hubsync %s cannot resolve listen address \"%s\"",
							daemon_name, host),
					 errhint("Set %s to an IP address of this host.", setting)));
		return false;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);

	*mhd_flags = MHD_ALLOW_SUSPEND_RESUME;
#ifdef MHD_USE_NO_THREAD_SAFETY
	*mhd_flags |= MHD_USE_NO_THREAD_SAFETY;
#endif
	if (ss->ss_family == AF_INET6)
		*mhd_flags |= MHD_USE_IPv6;
	return true;
}

/* forget_tls -- wipe the certificate and key read for the daemon */
static void
forget_tls(void)
{
	if (tls_key_pem)
	{
		explicit_bzero(tls_key_pem, strlen(tls_key_pem));
		pfree(tls_key_pem);
		tls_key_pem = NULL;
	}
	if (tls_cert_pem)
	{
		pfree(tls_cert_pem);
		tls_cert_pem = NULL;
	}
	bound_tls_cert[0] = bound_tls_key[0] = '\0';
}

/*
 * read_pem -- a TLS file's contents (TopMemoryContext), or NULL with a
 * WARNING naming the file (never its contents).
 */
static char *
read_pem(const char *path, const char *what, int elevel)
{
	FILE	   *f = AllocateFile(path, "r");
	char	   *buf;
	size_t		n;

	if (f == NULL)
	{
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("hubsync webhook receiver could not open TLS %s file \"%s\": %m", what, path),
				 errhint("Check hubsync.webhook_tls_%s_file; the receiver stays off until it can be read.", what)));
		return NULL;
	}
	buf = MemoryContextAllocZero(TopMemoryContext, HUBSYNC_TLS_FILE_MAX + 1);
	n = fread(buf, 1, HUBSYNC_TLS_FILE_MAX, f);
	FreeFile(f);
	if (n == 0 || n == HUBSYNC_TLS_FILE_MAX || strstr(buf, "-----BEGIN") == NULL)
	{
		explicit_bzero(buf, HUBSYNC_TLS_FILE_MAX);
		pfree(buf);
		ereport(elevel,
				(errmsg("hubsync webhook receiver: TLS %s file \"%s\" is not a PEM file", what, path),
				 errhint("Give a PEM-encoded %s.", strcmp(what, "key") == 0 ? "private key" : "certificate (chain)")));
		return NULL;
	}
	return buf;
}

/*
 * limits_changed -- the settings the daemon was started with changed
 * (limits, TLS files): it must be restarted to apply them.
 */
static bool
limits_changed(void)
{
	return hubsync_webhook_max_connections != bound_max_connections ||
		Min(hubsync_webhook_max_connections_per_address, hubsync_webhook_max_connections) != bound_per_address ||
		hubsync_webhook_max_header_size != bound_max_header_size ||
		hubsync_webhook_timeout != bound_timeout ||
		strcmp(hubsync_webhook_tls_cert_file, bound_tls_cert) != 0 ||
		strcmp(hubsync_webhook_tls_key_file, bound_tls_key) != 0;
}

/* hubsync_receiver_stop -- close the listening socket and connections */
void
hubsync_receiver_stop(void)
{
	ReceiverRequest *req;

	if (daemon_handle == NULL)
		return;
	/* deliveries not yet answered are dropped: HubSpot retries them */
	for (req = ready_head; req; req = req->next_ready)
		req->dead = true;
	MHD_stop_daemon(daemon_handle);
	daemon_handle = NULL;
	/* MHD_stop_daemon closed (and notified) every connection; be sure */
	while (conns_head)
	{
		ReceiverConn *c = conns_head;

		conns_head = c->next;
		free(c);
	}
	while (ready_head)
	{
		req = ready_head;
		ready_head = req->next_ready;
		free_request(req);
	}
	ready_tail = NULL;
	ereport(LOG, (errmsg("hubsync webhook receiver stopped listening")));
	bound_port = 0;
	forget_tls();
}

/* hubsync_receiver_running -- whether the receiver listens */
bool
hubsync_receiver_running(void)
{
	return daemon_handle != NULL;
}

/*
 * hubsync_receiver_configure -- make the receiver match the settings:
 * start it, stop it (port 0), or rebind when the address or port changed.
 * Returns whether it listens.
 */
bool
hubsync_receiver_configure(void)
{
	struct sockaddr_storage ss;
	unsigned int flags;

	compute_public_url();
	if (daemon_handle != NULL &&
		(hubsync_webhook_port != bound_port ||
		 strcmp(hubsync_webhook_listen_address, bound_address) != 0 ||
		 limits_changed()))
		hubsync_receiver_stop();
	if (hubsync_webhook_port == 0)
	{
		hubsync_receiver_stop();
		return false;
	}
	if (daemon_handle != NULL)
		return true;

	if (!hubsync_listen_address(hubsync_webhook_listen_address, hubsync_webhook_port,
								"webhook receiver", "hubsync.webhook_listen_address",
								!bind_failed_logged, &ss, &flags))
	{
		bind_failed_logged = true;
		return false;
	}

	/* TLS when both files are set */
	forget_tls();
	if (hubsync_webhook_tls_cert_file[0] != '\0' || hubsync_webhook_tls_key_file[0] != '\0')
	{
		int			elevel = bind_failed_logged ? DEBUG1 : WARNING;

		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
		{
			if (!bind_failed_logged)
				ereport(WARNING,
						(errmsg("hubsync webhook receiver: this libmicrohttpd has no TLS support"),
						 errhint("Clear hubsync.webhook_tls_cert_file and hubsync.webhook_tls_key_file and terminate TLS in a proxy (see docs/nginx.md).")));
			bind_failed_logged = true;
			return false;
		}
		if (hubsync_webhook_tls_cert_file[0] == '\0' || hubsync_webhook_tls_key_file[0] == '\0')
		{
			if (!bind_failed_logged)
				ereport(WARNING,
						(errmsg("hubsync webhook receiver needs both hubsync.webhook_tls_cert_file and hubsync.webhook_tls_key_file for TLS"),
						 errhint("Set both, or neither for plain HTTP.")));
			bind_failed_logged = true;
			return false;
		}
		tls_cert_pem = read_pem(hubsync_webhook_tls_cert_file, "cert", elevel);
		tls_key_pem = tls_cert_pem ? read_pem(hubsync_webhook_tls_key_file, "key", elevel) : NULL;
		if (tls_key_pem == NULL)
		{
			forget_tls();
			bind_failed_logged = true;
			return false;
		}
		flags |= MHD_USE_TLS;
	}

	/*
	 * Headers are read into the connection's memory pool, so its size bounds
	 * them; the rest of the pool holds the answer.  The timeout is idle time;
	 * the header deadline is ours (cut_slow_connections).
	 */
	daemon_handle = MHD_start_daemon(flags, (uint16_t) hubsync_webhook_port,
									 NULL, NULL,
									 &handle_request, NULL,
									 MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
									 MHD_OPTION_CONNECTION_LIMIT, (unsigned int) hubsync_webhook_max_connections,
									 MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) Min(hubsync_webhook_max_connections_per_address, hubsync_webhook_max_connections),
									 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) hubsync_webhook_timeout,
									 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) (hubsync_webhook_max_header_size + 4096),
									 MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int) 1,
									 MHD_OPTION_NOTIFY_COMPLETED, &request_completed, NULL,
									 MHD_OPTION_NOTIFY_CONNECTION, &notify_connection, NULL,
									 tls_cert_pem ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, tls_cert_pem,
									 MHD_OPTION_HTTPS_MEM_KEY, tls_key_pem,
									 MHD_OPTION_END);
	if (daemon_handle == NULL)
	{
		forget_tls();
		if (!bind_failed_logged)
			ereport(WARNING,
					(errmsg("hubsync webhook receiver could not listen on %s port %d",
							hubsync_webhook_listen_address, hubsync_webhook_port),
					 errhint("Check that hubsync.webhook_port is free, hubsync.webhook_listen_address is an address of this host and, with TLS, that the certificate and key match; hubsync retries every few seconds.")));
		bind_failed_logged = true;
		return false;
	}
	bind_failed_logged = false;
	bound_port = hubsync_webhook_port;
	bound_max_connections = hubsync_webhook_max_connections;
	bound_per_address = Min(hubsync_webhook_max_connections_per_address, hubsync_webhook_max_connections);
	bound_max_header_size = hubsync_webhook_max_header_size;
	bound_timeout = hubsync_webhook_timeout;
	strlcpy(bound_tls_cert, hubsync_webhook_tls_cert_file, sizeof(bound_tls_cert));
	strlcpy(bound_tls_key, hubsync_webhook_tls_key_file, sizeof(bound_tls_key));
	strlcpy(bound_address, hubsync_webhook_listen_address, sizeof(bound_address));
	ereport(LOG,
			(errmsg("hubsync webhook receiver listening on %s port %d, path %s%s",
					hubsync_webhook_listen_address, hubsync_webhook_port, served_path,
					tls_cert_pem ? " (TLS)" : "")));
	return true;
}

/*
 * hubsync_receiver_wait -- sleep until a receiver socket is ready, our
 * latch is set, libmicrohttpd's own timeout passes or max_timeout_ms
 * elapses; then handle interrupts.
 */
void
hubsync_receiver_wait(long max_timeout_ms)
{
	fd_set		rs,
				ws,
				es;
	MHD_socket	max_fd = 0;
	MHD_UNSIGNED_LONG_LONG mhd_timeout;
	long		timeout = max_timeout_ms;
	WaitEventSet *set;
	WaitEvent	events[HUBSYNC_RECEIVER_MAX_EVENTS];
	int			nfds = 0;
	int			fd;
	int			metrics_max_fd = -1;

	FD_ZERO(&rs);
	FD_ZERO(&ws);
	FD_ZERO(&es);
	/* the metrics endpoint (metrics.c) is waited on with the receiver */
	if (!hubsync_metrics_fdset(&rs, &ws, &es, &metrics_max_fd, &timeout) &&
		daemon_handle == NULL)
	{
		hubsync_worker_wait(max_timeout_ms);
		return;
	}
	if (daemon_handle == NULL)
		max_fd = -1;
	else
	{
		if (MHD_get_fdset2(daemon_handle, &rs, &ws, &es, &max_fd, FD_SETSIZE) != MHD_YES)
			max_fd = -1;
		if (MHD_get_timeout(daemon_handle, &mhd_timeout) == MHD_YES &&
			(long) mhd_timeout < timeout)
			timeout = (long) mhd_timeout;
		/* wake up for the next header deadline too (cutting any that passed) */
		{
			long		next = cut_slow_connections();

			if (next >= 0 && next < timeout)
				timeout = next;
		}
	}
	max_fd = Max(max_fd, metrics_max_fd);

	for (fd = 0; fd <= max_fd; fd++)
		if (FD_ISSET(fd, &rs) || FD_ISSET(fd, &ws))
			nfds++;
	set = CreateWaitEventSet(CurrentMemoryContext, nfds + 2);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (fd = 0; fd <= max_fd; fd++)
	{
		uint32		ev = 0;

		if (FD_ISSET(fd, &rs))
			ev |= WL_SOCKET_READABLE;
		if (FD_ISSET(fd, &ws))
			ev |= WL_SOCKET_WRITEABLE;
		if (ev)
			AddWaitEventToSet(set, ev, fd, NULL, NULL);
	}
	(void) WaitEventSetWait(set, timeout, events, lengthof(events), PG_WAIT_EXTENSION);
	FreeWaitEventSet(set);
	ResetLatch(MyLatch);
	hubsync_worker_consume_wake();
	CHECK_FOR_INTERRUPTS();
}
