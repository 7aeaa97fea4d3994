/*-------------------------------------------------------------------------
 *
 * push_assoc.c
 *	  The push worker's association round: hubsync.association_outbox to
 *	  HubSpot's v4 association API.
 *
 * INSERTs and DELETEs of hubspot.associations are queued by a trigger.
 * Once the record outbox is drained, the push worker runs a round here:
 *
 *	1. claim (short transaction): hubsync._assoc_claim() leases the entries
 *	   whose two records have HubSpot ids -- an association to a record
 *	   created in the same transaction waits for that record's create --
 *	   and names the pairs of object types whose labels must be read;
 *	2. labels (no transaction): GET /crm/associations/{v}/{from}/{to}/labels,
 *	   cached by hubsync._assoc_types_store() for the next round;
 *	3. send (no transaction): batch/create and batch/labels/archive per
 *	   pair of object types, up to 100 inputs each, up to
 *	   hubsync.max_inflight requests at once;
 *	4. record (short transaction): done, retry with back-off, or failed.
 *
 * A batch HubSpot refuses as a whole (400) is sent again entry by entry,
 * so one bad association never holds back the others.  A batch answered
 * with per-entry errors (207, or 200 with errors[] under 2026-09) marks
 * done only what its results list; the rest is sent again alone.
 *
 * IDENTIFICATION
 *	  src/push/push_assoc.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "core/remote_apply.h"
#include "hubspot/api_paths.h"
#include "hubspot/hubspot_api.h"
#include "util/json_util.h"
#include "push/push.h"
#include "bgw/worker.h"
#include "hubspot/settings.h"
#include "push/settings.h"

#define ASSOC_MAX_BATCH 100
#define ASSOC_CLAIM_LIMIT 500

/* One claimed association change */
typedef struct AssocEntry
{
	char	   *kind;			/* create, archive or labels */
	char	   *id;				/* association_outbox id */
	char	   *from_api;
	char	   *to_api;
	char	   *from_type;
	char	   *to_type;
	char	   *from_id;
	char	   *to_id;
	char	   *type_id;
	char	   *category;
	int			attempts;
	/* outcome */
	bool		done;
	bool		failed;
	bool		count_attempt;
	long		delay_ms;
	int			status;
	char	   *error;
} AssocEntry;

/* assoc_backoff_ms -- exponential back-off with jitter, capped at 10 min */
static long
assoc_backoff_ms(int attempts)
{
	double		ms = 1000;

	for (int i = 1; i < attempts && ms < 600000; i++)
		ms *= 2;
	ms = Min(ms, 600000);
	return (long) (ms * (0.75 + pg_prng_double(&pg_global_prng_state) * 0.5));
}

/* claim -- lease ready entries; returns a List of AssocEntry */
static List *
claim(void)
{
	List	   *out = NIL;
	Datum		args[2];
	MemoryContext keep = CurrentMemoryContext;

	if (!hubsync_worker_begin_xact("claiming association changes"))
	{
		hubsync_worker_end_xact();
		return NIL;
	}
	SPI_connect();
	/* a database still on an older extension version has no queue */
	if (SPI_execute("SELECT to_regprocedure('hubsync._assoc_claim(integer,integer)') IS NOT NULL",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1 ||
		strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") != 0)
	{
		SPI_finish();
		hubsync_worker_end_xact();
		return NIL;
	}
	args[0] = Int32GetDatum(ASSOC_CLAIM_LIMIT);
	args[1] = Int32GetDatum(hubsync_request_timeout / 1000 * 3 + 60);
	if (SPI_execute_with_args("SELECT kind, id, from_api, to_api, from_type, to_type, from_id, "
							  "to_id, type_id, category, attempts "
							  "FROM hubsync._assoc_claim($1, $2)", 2,
							  (Oid[]) {INT4OID, INT4OID}, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "hubsync._assoc_claim() failed");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(keep);
		AssocEntry *e = palloc0(sizeof(AssocEntry));
		char	   *att;

		e->kind = SPI_getvalue(tup, td, 1);
		e->id = SPI_getvalue(tup, td, 2);
		e->from_api = SPI_getvalue(tup, td, 3);
		e->to_api = SPI_getvalue(tup, td, 4);
		e->from_type = SPI_getvalue(tup, td, 5);
		e->to_type = SPI_getvalue(tup, td, 6);
		e->from_id = SPI_getvalue(tup, td, 7);
		e->to_id = SPI_getvalue(tup, td, 8);
		e->type_id = SPI_getvalue(tup, td, 9);
		e->category = SPI_getvalue(tup, td, 10);
		att = SPI_getvalue(tup, td, 11);
		e->attempts = att ? atoi(att) : 1;
		out = lappend(out, e);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	hubsync_worker_end_xact();
	return out;
}

/* read_labels -- GET a pair's labels and cache them; false on failure */
static bool
read_labels(AssocEntry *e)
{
	HubsyncHttpRequest *req;
	Jsonb	   *body;
	JsonbContainer *results;
	bool		ok = false;
	char	   *results_text = NULL;

	req = hubsync_request_send(HUBSYNC_QUOTA_REALTIME, "GET",
							   hubsync_api_url(hubsync_path_association_labels(e->from_api, e->to_api)),
							   NULL, NULL);
	if (req->status == 200 &&
		(body = hubsync_json_parse(req->response, req->response_len)) != NULL &&
		(results = hubsync_json_get_container(&body->root, "results")) != NULL)
		results_text = JsonbToCString(NULL, results, -1);
	else
		ereport(LOG,
				(errmsg("hubsync could not read HubSpot's association labels from %s to %s: HTTP %ld",
						e->from_type, e->to_type, req->status)));
	hubsync_http_release(req);
	if (results_text == NULL)
		return false;

	if (!hubsync_worker_begin_xact("caching association labels"))
	{
		hubsync_worker_end_xact();
		return false;
	}
	SPI_connect();
	{
		Datum		args[3];

		args[0] = CStringGetTextDatum(e->from_type);
		args[1] = CStringGetTextDatum(e->to_type);
		args[2] = DirectFunctionCall1(jsonb_in, CStringGetDatum(results_text));
		ok = SPI_execute_with_args("SELECT hubsync._assoc_types_store($1, $2, $3)", 3,
								   (Oid[]) {TEXTOID, TEXTOID, JSONBOID}, args, NULL,
								   false, 0) == SPI_OK_SELECT;
	}
	SPI_finish();
	hubsync_worker_end_xact();
	return ok;
}

/* build_body -- {"inputs":[{from, to, types}]} for entries[0..n) */
static char *
build_body(AssocEntry **entries, int n)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"inputs\":[");
	for (int i = 0; i < n; i++)
	{
		AssocEntry *e = entries[i];

		if (i > 0)
			appendStringInfoChar(&buf, ',');
		appendStringInfoString(&buf, "{\"from\":{\"id\":");
		hubsync_json_escape(&buf, e->from_id);
		appendStringInfoString(&buf, "},\"to\":{\"id\":");
		hubsync_json_escape(&buf, e->to_id);
		appendStringInfoString(&buf, "},\"types\":[{\"associationCategory\":");
		hubsync_json_escape(&buf, e->category ? e->category : "HUBSPOT_DEFINED");
		appendStringInfo(&buf, ",\"associationTypeId\":%s}]}", e->type_id);
	}
	appendStringInfoString(&buf, "]}");
	return buf.data;
}

/* set_outcome -- one entry's outcome */
static void
set_outcome(AssocEntry *e, bool done, bool failed, int status, const char *error)
{
	e->done = done;
	e->failed = failed;
	e->status = status;
	e->error = error ? pstrdup(error) : NULL;
	e->count_attempt = true;
	e->delay_ms = (done || failed) ? 0 : assoc_backoff_ms(e->attempts);
	/* transient errors give up after hubsync.max_attempts */
	if (!done && !failed && e->attempts >= hubsync_max_attempts)
	{
		e->failed = true;
		e->error = psprintf("gave up after %d attempts: %s", e->attempts,
							error ? error : "transient error");
	}
}

/* text_is -- whether a JSON scalar's text is s (ids come as strings or numbers) */
static bool
text_is(char *text, const char *s)
{
	return text != NULL && strcmp(text, s) == 0;
}

/*
 * errors_name -- whether an errors[] entry names this entry's ends in
 * context.fromObjectId/toObjectId.  HubSpot's documented invalid-association
 * error ("One or more associations are invalid", context INVALID_OBJECT_IDS
 * and the like) names no input, so this is only a shortcut: what is not
 * named is settled by the answer's results or by sending it alone.
 */
static bool
errors_name(JsonbContainer *err, AssocEntry *e)
{
	JsonbContainer *context = hubsync_json_get_container(err, "context");
	JsonbContainer *from = hubsync_json_get_container(context, "fromObjectId");
	JsonbContainer *to = hubsync_json_get_container(context, "toObjectId");
	bool		f = false,
				t = (to == NULL);

	for (int i = 0; i < hubsync_json_array_size(from); i++)
		if (text_is(hubsync_json_array_text(from, i), e->from_id))
			f = true;
	for (int i = 0; i < hubsync_json_array_size(to); i++)
		if (text_is(hubsync_json_array_text(to, i), e->to_id))
			t = true;
	return f && t;
}

/* results_list -- whether a create answer's results[] list this entry's pair */
static bool
results_list(JsonbContainer *results, AssocEntry *e)
{
	for (int i = 0; i < hubsync_json_array_size(results); i++)
	{
		JsonbContainer *res = hubsync_json_array_container(results, i);

		if (text_is(hubsync_json_get_text(res, "fromObjectId"), e->from_id) &&
			text_is(hubsync_json_get_text(res, "toObjectId"), e->to_id))
			return true;
	}
	return false;
}

/*
 * shares_pair -- whether another entry of the batch links the same two
 * records (another type): one result stands for both, so an error naming
 * no input could be either's
 */
static bool
shares_pair(AssocEntry **entries, int n, AssocEntry *e)
{
	for (int i = 0; i < n; i++)
		if (entries[i] != e && strcmp(entries[i]->from_id, e->from_id) == 0 &&
			strcmp(entries[i]->to_id, e->to_id) == 0)
			return true;
	return false;
}

/* error_reason -- "CATEGORY: message {context}" of one error entry */
static char *
error_reason(JsonbContainer *err)
{
	char	   *category = hubsync_json_get_text(err, "category");
	char	   *message = hubsync_json_get_text(err, "message");
	JsonbContainer *context = hubsync_json_get_container(err, "context");

	return psprintf("%s: %s%s%s", category ? category : "error",
					message ? message : "HubSpot refused the association",
					context ? " " : "",
					context ? JsonbToCString(NULL, context, -1) : "");
}

/*
 * set_error -- one entry's outcome from the error HubSpot gave for it: an
 * archive of what is not there is done; a refusal that will not heal
 * (validation, unknown object, scopes) is failed; anything else retried.
 */
static void
set_error(AssocEntry *e, int status, JsonbContainer *err)
{
	char	   *category = hubsync_json_get_text(err, "category");
	bool		permanent = category != NULL &&
		(strcmp(category, "VALIDATION_ERROR") == 0 ||
		 strcmp(category, "OBJECT_NOT_FOUND") == 0 ||
		 strcmp(category, "MISSING_SCOPES") == 0 ||
		 strncmp(category, "INVALID_", 8) == 0);

	if (strcmp(e->kind, "archive") == 0 && category != NULL &&
		strcmp(category, "OBJECT_NOT_FOUND") == 0)
		set_outcome(e, true, false, status, NULL);
	else
		set_outcome(e, false, permanent, status, error_reason(err));
}

static void send_batch(AssocEntry **entries, int n);

/*
 * apply_answer -- a 2xx answer with a body: 207 (legacy, 2026-03) or
 * 200/201 with errors[] inside (2026-09).  A create is done only when
 * results[] lists its pair and no error names it; an archive (whose
 * results say nothing) only when the answer has no errors.  An entry
 * named by an error gets that error; the others are sent again alone,
 * where any error is theirs.
 */
static void
apply_answer(AssocEntry **entries, int n, int status, JsonbContainer *root, bool create)
{
	JsonbContainer *results = hubsync_json_get_container(root, "results");
	JsonbContainer *errors = hubsync_json_get_container(root, "errors");
	int			nerr = hubsync_json_array_size(errors);
	AssocEntry **alone = palloc(sizeof(AssocEntry *) * n);
	int			nalone = 0;

	bool		unnamed = false;

	/* is there an error that names no entry of this batch? */
	for (int k = 0; k < nerr && !unnamed; k++)
	{
		JsonbContainer *err = hubsync_json_array_container(errors, k);

		unnamed = true;
		for (int i = 0; i < n && unnamed; i++)
			if (errors_name(err, entries[i]))
				unnamed = false;
	}
	for (int i = 0; i < n; i++)
	{
		AssocEntry *e = entries[i];
		JsonbContainer *named = NULL;

		for (int k = 0; k < nerr && named == NULL; k++)
		{
			JsonbContainer *err = hubsync_json_array_container(errors, k);

			if (errors_name(err, e))
				named = err;
		}
		if (named != NULL)
			set_error(e, status, named);
		else if (create ? (results_list(results, e) && !(unnamed && shares_pair(entries, n, e)))
				 : nerr == 0)
			set_outcome(e, true, false, status, NULL);
		else if (n > 1)
			alone[nalone++] = e;
		else if (nerr > 0)
			set_error(e, status, hubsync_json_array_container(errors, 0));
		else
			set_outcome(e, false, false, status, "HubSpot did not report this association");
	}
	for (int i = 0; i < nalone; i++)
		send_batch(&alone[i], 1);
}

/* batch_url -- the batch endpoint of entries[0]'s kind and pair */
static char *
batch_url(AssocEntry *first)
{
	return hubsync_api_url(hubsync_path_associations(first->from_api, first->to_api,
													 strcmp(first->kind, "create") == 0 ?
													 "/batch/create" : "/batch/labels/archive"));
}

/*
 * handle_answer -- set each entry's outcome of entries[0..n) from HubSpot's
 * answer to their batch request (observed already), and release it
 */
static void
handle_answer(AssocEntry **entries, int n, HubsyncHttpRequest *req)
{
	AssocEntry *first = entries[0];
	bool		create = strcmp(first->kind, "create") == 0;
	int			status;
	Jsonb	   *body;
	JsonbContainer *root;
	char	   *category;
	char	   *message;

	status = (int) req->status;
	body = hubsync_json_parse(req->response, req->response_len);
	root = body ? &body->root : NULL;
	category = hubsync_json_get_text(root, "category");
	message = hubsync_json_get_text(root, "message");

	if (status >= 200 && status < 300 && root != NULL && JsonContainerIsObject(root))
	{
		hubsync_http_release(req);
		apply_answer(entries, n, status, root, create);
		return;
	}
	else if (status >= 200 && status < 300 && !create)
	{
		/* 204: every label archived */
		for (int i = 0; i < n; i++)
			set_outcome(entries[i], true, false, status, NULL);
	}
	else if (status >= 200 && status < 300)
	{
		/* a create answered without a usable body: nothing is known done */
		for (int i = 0; i < n; i++)
			set_outcome(entries[i], false, false, status,
						"HubSpot's answer did not list the associations created");
	}
	else if (status == 429 || status == 401 || status == 477)
	{
		for (int i = 0; i < n; i++)
		{
			set_outcome(entries[i], false, false, status,
						message ? message : "HubSpot asked us to wait");
			entries[i]->count_attempt = false;
			entries[i]->failed = false;
			entries[i]->delay_ms = 10000;
		}
	}
	else if (status >= 400 && status < 500 && status != 423)
	{
		if (n > 1)
		{
			/* find the bad one: each entry on its own */
			hubsync_http_release(req);
			for (int i = 0; i < n; i++)
				send_batch(&entries[i], 1);
			return;
		}
		set_outcome(first, false, true, status,
					root != NULL && JsonContainerIsObject(root) ? error_reason(root) :
					psprintf("%s: %s", category ? category : "HTTP error",
							 message ? message : "HubSpot refused the association"));
	}
	else
	{
		for (int i = 0; i < n; i++)
			set_outcome(entries[i], false, false, status,
						status == 0 ? (req->error[0] ? req->error : "no response") :
						(message ? message : "HubSpot answered with a server error"));
	}
	hubsync_http_release(req);
}

/*
 * send_batch -- send entries[0..n) (one kind, one pair of object types)
 * and wait for the answer: the entry-by-entry resends of a refused batch
 */
static void
send_batch(AssocEntry **entries, int n)
{
	handle_answer(entries, n,
				  hubsync_request_send(HUBSYNC_QUOTA_REALTIME, "POST", batch_url(entries[0]),
									   build_body(entries, n), NULL));
}

/* one batch request of a round */
typedef struct AssocBatch
{
	AssocEntry **entries;
	int			n;
	HubsyncHttpRequest *req;
} AssocBatch;

/*
 * send_batches -- send a round's batches, up to hubsync.max_inflight at
 * once (each after the shared quota lets it go), and handle each answer
 * as it comes: one request at a time would leave most of the quota
 * unused while each waited for its round trip.
 */
static void
send_batches(AssocBatch *batches, int nbatches)
{
	int			next = 0;
	int			answered = 0;
	int			inflight = 0;

	pgstat_report_activity(STATE_RUNNING, "sending associations to HubSpot");
	while (answered < nbatches)
	{
		HubsyncHttpRequest *req;

		while (next < nbatches && inflight < hubsync_max_inflight)
		{
			AssocBatch *b = &batches[next];

			hubsync_request_quota(HUBSYNC_QUOTA_REALTIME);
			b->req = hubsync_request_new("POST", batch_url(b->entries[0]),
										 build_body(b->entries, b->n), NULL);
			b->req->quota_class = (int) HUBSYNC_QUOTA_REALTIME;
			b->req->owner = b;
			hubsync_http_start(b->req);
			next++;
			inflight++;
		}
		(void) hubsync_http_wait(1000);
		CHECK_FOR_INTERRUPTS();
		while ((req = hubsync_http_next_done()) != NULL)
		{
			AssocBatch *b = (AssocBatch *) req->owner;

			hubsync_observe_response(req);
			inflight--;
			answered++;
			handle_answer(b->entries, b->n, req);
		}
	}
}

/* record -- write every sent entry's outcome in one short transaction */
static void
record(List *entries)
{
	ListCell   *lc;
	StringInfoData done;
	bool		any_done = false;

	if (!hubsync_worker_begin_xact("recording association results"))
	{
		hubsync_worker_end_xact();
		return;
	}
	SPI_connect();
	initStringInfo(&done);
	appendStringInfoChar(&done, '{');
	foreach(lc, entries)
	{
		AssocEntry *e = lfirst(lc);

		if (strcmp(e->kind, "labels") == 0)
			continue;
		if (e->done)
		{
			appendStringInfo(&done, "%s%s", any_done ? "," : "", e->id);
			any_done = true;
		}
		else
		{
			Datum		v[6];
			char		nulls[6] = "      ";

			v[0] = CStringGetTextDatum(psprintf("{%s}", e->id));
			v[1] = Int32GetDatum(e->status);
			v[2] = e->error ? CStringGetTextDatum(e->error) : (Datum) 0;
			nulls[2] = e->error ? ' ' : 'n';
			v[3] = Int64GetDatum(e->delay_ms);
			v[4] = BoolGetDatum(e->count_attempt);
			v[5] = BoolGetDatum(e->failed);
			if (SPI_execute_with_args("SELECT hubsync._assoc_retry($1::bigint[], $2, $3, $4, $5, $6)", 6,
									  (Oid[]) {TEXTOID, INT4OID, TEXTOID, INT8OID, BOOLOID, BOOLOID},
									  v, nulls, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "hubsync._assoc_retry() failed");
		}
	}
	appendStringInfoChar(&done, '}');
	if (any_done)
	{
		Datum		v[1];

		v[0] = CStringGetTextDatum(done.data);
		/* the mirror rows it removes went in HubSpot: not queued back */
		hubsync_remote_apply_begin();
		if (SPI_execute_with_args("SELECT hubsync._assoc_done($1::bigint[])", 1,
								  (Oid[]) {TEXTOID}, v, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "hubsync._assoc_done() failed");
		hubsync_remote_apply_end();
	}
	SPI_finish();
	hubsync_worker_end_xact();
}

/* same_batch -- whether two entries can share one request */
static bool
same_batch(AssocEntry *a, AssocEntry *b)
{
	return strcmp(a->kind, b->kind) == 0 &&
		strcmp(a->from_api, b->from_api) == 0 &&
		strcmp(a->to_api, b->to_api) == 0;
}

/*
 * hubsync_push_associations -- one association round (see the file
 * header).  Returns true when it found work, so the caller comes back
 * soon (labels just read make more entries ready).
 */
bool
hubsync_push_associations(void)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "hubsync associations",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	List	   *entries;
	List	   *sendable = NIL;
	ListCell   *lc;
	bool		labels_read = false;
	int			nsend;
	AssocEntry **arr;
	AssocBatch *batches;
	int			nbatches = 0;
	int			i;

	entries = claim();
	if (entries == NIL)
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		return false;
	}
	foreach(lc, entries)
	{
		AssocEntry *e = lfirst(lc);

		if (strcmp(e->kind, "labels") == 0)
			labels_read |= read_labels(e);
		else
			sendable = lappend(sendable, e);
	}

	/* group by kind and pair, in claim order, 100 per request */
	nsend = list_length(sendable);
	arr = palloc(sizeof(AssocEntry *) * Max(nsend, 1));
	batches = palloc(sizeof(AssocBatch) * Max(nsend, 1));
	i = 0;
	while (sendable != NIL)
	{
		List	   *rest = NIL;
		AssocEntry *head = linitial(sendable);
		int			n = 0;

		foreach(lc, sendable)
		{
			AssocEntry *e = lfirst(lc);

			if (n < ASSOC_MAX_BATCH && same_batch(head, e))
				arr[i + n++] = e;
			else
				rest = lappend(rest, e);
		}
		batches[nbatches].entries = &arr[i];
		batches[nbatches].n = n;
		batches[nbatches].req = NULL;
		nbatches++;
		i += n;
		list_free(sendable);
		sendable = rest;
	}
	send_batches(batches, nbatches);
	if (nsend > 0)
		record(entries);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return labels_read || nsend > 0;
}
