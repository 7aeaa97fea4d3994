/*-------------------------------------------------------------------------
 *
 * push_request.c
 *	  The HubSpot side of a push batch: the request body, and what each
 *	  record's outcome is given HubSpot's answer.
 *
 * Errors are data here, never ereport: every answer becomes one outcome
 * per record.  Only permanent errors (4xx other than 401, 423 and 429)
 * dead-letter; transient ones (429, 423, 477, 5xx, timeouts, resets,
 * malformed answers and per-record errors of those kinds) are retried with
 * jittered exponential back-off, and dead-lettered only after
 * hubsync.max_attempts attempts *and* hubsync.retry_window.  A 429 or 401
 * never counts as a failed attempt.
 *
 * IDENTIFICATION
 *	  src/push/push_request.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "common/pg_prng.h"
#include "utils/timestamp.h"
#include "util/json_util.h"
#include "util/parse_util.h"
#include "push/push.h"
#include "push/settings.h"

const char *const push_kind_paths[] = {"upsert", "update", "archive"};

#define BACKOFF_BASE_MS 1000
/* HubSpot asks for a few seconds on 5xx; a minute bounds a long outage */
#define BACKOFF_MAX_MS (60 * 1000)
#define LOCKED_MIN_MS 2000

/*
 * push_build_body -- {"inputs":[...]} for the batch.  Each input carries
 * objectWriteTraceId = hubsync_id so that HubSpot's per-input errors can
 * be traced back to their record.
 */
char *
push_build_body(PushBatch *batch)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"inputs\":[");
	for (i = 0; i < batch->nrecords; i++)
	{
		PushRecord *r = batch->records[i];

		if (i > 0)
			appendStringInfoChar(&buf, ',');
		appendStringInfoString(&buf, "{\"id\":");
		if (batch->kind == PUSH_UPSERT)
		{
			hubsync_json_escape(&buf, r->hubsync_id);
			appendStringInfoString(&buf, ",\"idProperty\":\"hubsync_id\"");
		}
		else
			hubsync_json_escape(&buf, r->hs_object_id);
		if (batch->kind != PUSH_ARCHIVE)
		{
			appendStringInfoString(&buf, ",\"objectWriteTraceId\":");
			hubsync_json_escape(&buf, r->hubsync_id);
			appendStringInfoString(&buf, ",\"properties\":");
			appendStringInfoString(&buf, r->props);
		}
		appendStringInfoChar(&buf, '}');
	}
	appendStringInfoString(&buf, "]}");
	return buf.data;
}

/* backoff_ms -- exponential back-off with +-25% jitter */
static long
backoff_ms(int attempts)
{
	double		ms = BACKOFF_BASE_MS;
	int			i;

	for (i = 1; i < attempts && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	ms = Min(ms, BACKOFF_MAX_MS);
	return (long) (ms * (0.75 + pg_prng_double(&pg_global_prng_state) * 0.5));
}

/* set_outcome -- fill one record's outcome */
static void
set_outcome(PushRecord *r, PushOutcomeKind kind, int status, const char *category,
			const char *message)
{
	r->outcome.kind = kind;
	r->outcome.status = status;
	r->outcome.category = category ? pstrdup(category) : NULL;
	r->outcome.message = message ? pstrdup(message) : NULL;
	r->outcome.count_attempt = true;
	r->outcome.delay_ms = (kind == OUTCOME_RETRY) ? backoff_ms(r->attempts) : 0;
	r->outcome.conflict = false;
}

/* set_all -- the same outcome for every record of the batch */
static void
set_all(PushBatch *b, PushOutcomeKind kind, int status, const char *category,
		const char *message)
{
	int			i;

	for (i = 0; i < b->nrecords; i++)
		set_outcome(b->records[i], kind, status, category, message);
}

/*
 * set_permanent -- a whole-batch permanent error: dead letter for a lone
 * record, otherwise resend each record alone so the bad one is found and
 * the others go through.
 */
static void
set_permanent(PushBatch *b, int status, const char *category, const char *message)
{
	if (b->nrecords == 1)
		set_all(b, OUTCOME_DEAD, status, category, message);
	else
		set_all(b, OUTCOME_ALONE, status, category, message);
}

/* find_record -- the record a HubSpot id, hubsync_id or trace id names */
static PushRecord *
find_record(PushBatch *b, const char *id)
{
	int			i;

	if (id == NULL)
		return NULL;
	for (i = 0; i < b->nrecords; i++)
	{
		PushRecord *r = b->records[i];

		if (strcmp(r->hubsync_id, id) == 0 ||
			(r->hs_object_id && strcmp(r->hs_object_id, id) == 0))
			return r;
	}
	return NULL;
}

/* permanent_category -- per-record error categories that will not heal */
static bool
permanent_category(const char *category)
{
	return category != NULL &&
		(strcmp(category, "VALIDATION_ERROR") == 0 ||
		 strcmp(category, "OBJECT_NOT_FOUND") == 0 ||
		 strcmp(category, "CONFLICT") == 0 ||
		 strcmp(category, "MISSING_SCOPES") == 0 ||
		 strncmp(category, "INVALID_", 8) == 0);
}

/* existing_id -- the N of HubSpot's "Existing ID: N", or NULL */
static char *
existing_id(const char *message)
{
	size_t		len;
	const char *p = hubsync_existing_id(message, &len);

	return p ? pnstrdup(p, len) : NULL;
}

/*
 * apply_error_item -- one entry of an answer's errors[] (a 207, or a 200/201
 * under 2026-09) to the records it names, keeping the answer's status
 */
static void
apply_error_item(PushBatch *b, JsonbContainer *err)
{
	char	   *category = hubsync_json_get_text(err, "category");
	char	   *message = hubsync_json_get_text(err, "message");
	JsonbContainer *context = hubsync_json_get_container(err, "context");
	int			status = (int) b->req.status;
	const char *keys[] = {"ids", "objectWriteTraceId", "id"};
	int			k;

	for (k = 0; k < lengthof(keys); k++)
	{
		JsonbContainer *ids = hubsync_json_get_container(context, keys[k]);
		int			n = hubsync_json_array_size(ids);
		int			i;

		for (i = 0; i < n; i++)
		{
			PushRecord *r = find_record(b, hubsync_json_array_text(ids, i));

			if (r == NULL || r->outcome.kind == OUTCOME_DONE)
				continue;
			if (b->kind == PUSH_ARCHIVE && category &&
				strcmp(category, "OBJECT_NOT_FOUND") == 0)
				set_outcome(r, OUTCOME_DONE, status, NULL, NULL);	/* already gone */
			else if (b->kind != PUSH_ARCHIVE && existing_id(message) != NULL &&
					 strcmp(b->object_type, "contacts") == 0)
			{
				/* the email is already in HubSpot: link to that contact */
				set_outcome(r, OUTCOME_LINK, status, category, message);
				r->outcome.hs_object_id = existing_id(message);
			}
			else if (b->kind == PUSH_UPSERT && category && strcmp(category, "CONFLICT") == 0)
			{
				/* another unique value is taken: find its record */
				set_outcome(r, OUTCOME_RETRY, 207, category, message);
				push_mark_conflict(r, push_conflict_property(err, message),
								   existing_id(message));
			}
			else if (b->kind == PUSH_UPDATE && category &&
					 strcmp(category, "OBJECT_NOT_FOUND") == 0)
				set_outcome(r, OUTCOME_GONE, status, category, message);
			else if (permanent_category(category))
				set_outcome(r, OUTCOME_DEAD, status, category, message);
			else
				set_outcome(r, OUTCOME_RETRY, status, category, message);
		}
	}
}

/*
 * apply_results -- a 200/201/207 body: results[] are done (upserts learn
 * their HubSpot id), errors[] are per record, and records HubSpot did not
 * mention are retried.
 */
static void
apply_results(PushBatch *b, JsonbContainer *root)
{
	JsonbContainer *results = hubsync_json_get_container(root, "results");
	JsonbContainer *errors = hubsync_json_get_container(root, "errors");
	int			n = hubsync_json_array_size(results);
	int			i;

	set_all(b, OUTCOME_RETRY, (int) b->req.status, NULL,
			"HubSpot did not report this record");
	for (i = 0; i < n; i++)
	{
		JsonbContainer *res = hubsync_json_array_container(results, i);
		JsonbContainer *props = hubsync_json_get_container(res, "properties");
		char	   *id = hubsync_json_get_text(res, "id");
		PushRecord *r = NULL;
		char	   *trace;

		/*
		 * Each input carries objectWriteTraceId = hubsync_id, which HubSpot's
		 * OpenAPI documents return on SimplePublicObject for exactly this;
		 * whether upserts echo the idProperty is unconfirmed, so the echoed
		 * hubsync_id only serves when no trace id came back.
		 */
		trace = hubsync_json_get_text(res, "objectWriteTraceId");
		if (trace != NULL)
			r = find_record(b, trace);
		else if (b->kind == PUSH_UPSERT)
			r = find_record(b, hubsync_json_get_text(props, "hubsync_id"));
		if (r == NULL && trace == NULL)
			r = find_record(b, id);
		if (r == NULL && b->nrecords == 1 && n == 1)
			r = b->records[0];
		if (r == NULL || !hubsync_valid_object_id(id))
			continue;			/* retried as "not reported" */
		set_outcome(r, OUTCOME_DONE, (int) b->req.status, NULL, NULL);
		r->outcome.hs_object_id = id;
		r->outcome.updated_at = hubsync_json_get_text(res, "updatedAt");
	}
	n = hubsync_json_array_size(errors);
	for (i = 0; i < n; i++)
		apply_error_item(b, hubsync_json_array_container(errors, i));
}

/*
 * rate_limit_delay -- how long a 429 asks us to wait: a second for the
 * search/secondly limit, until midnight in the account's time zone
 * (hubsync.account_timezone) for the daily one, the 10 s window
 * otherwise.
 */
static long
rate_limit_delay(const char *policy_name, const char *message)
{
	const char *policy = hubsync_rate_limit_policy(policy_name, message);

	if (policy && strcmp(policy, "DAILY") == 0)
	{
		int64		now = hubsync_now_ms();
		int64		next_day_ms;

		(void) hubsync_quota_day(now, &next_day_ms);	/* account's midnight */
		return (long) (next_day_ms - now);
	}
	if (policy && strcmp(policy, "SECONDLY") == 0)
		return 1000;
	return 10000;
}

/*
 * give_up_exhausted -- a transient failure becomes a dead letter only
 * after hubsync.max_attempts attempts and hubsync.retry_window.
 */
static void
give_up_exhausted(PushBatch *b)
{
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	for (i = 0; i < b->nrecords; i++)
	{
		PushRecord *r = b->records[i];

		if (r->outcome.kind != OUTCOME_RETRY || !r->outcome.count_attempt)
			continue;
		if (r->attempts < hubsync_max_attempts ||
			!TimestampDifferenceExceeds(r->first_created, now,
										hubsync_retry_window * 1000))
			continue;
		r->outcome.kind = OUTCOME_DEAD;
		r->outcome.message = psprintf("gave up after %d attempts: %s",
									  r->attempts,
									  r->outcome.message ? r->outcome.message : "transient error");
	}
}

/*
 * push_classify -- set every record's outcome from the batch's HTTP result
 */
void
push_classify(PushBatch *b)
{
	HubsyncHttpRequest *req = &b->req;
	int			status = (int) req->status;
	Jsonb	   *body = hubsync_json_parse(req->response, req->response_len);
	JsonbContainer *root = body ? &body->root : NULL;
	char	   *category = hubsync_json_get_text(root, "category");
	char	   *message = hubsync_json_get_text(root, "message");
	int			i;

	if (status == 0)
		set_all(b, OUTCOME_RETRY, 0, req->timed_out ? "TIMEOUT" : "NETWORK",
				req->error[0] ? req->error : "no response");
	else if (status == 204 || (b->kind == PUSH_ARCHIVE && status >= 200 && status < 300))
		set_all(b, OUTCOME_DONE, status, NULL, NULL);
	else if (status >= 200 && status < 300)
	{
		if (root == NULL || !JsonContainerIsObject(root))
			set_all(b, OUTCOME_RETRY, status, "MALFORMED_RESPONSE",
					"HubSpot's answer was not valid JSON");
		else
			apply_results(b, root);
	}
	else if (status == 429)
	{
		char	   *policy = hubsync_json_get_text(root, "policyName");

		set_all(b, OUTCOME_RETRY, status, category ? category : "RATE_LIMITS", message);
		for (i = 0; i < b->nrecords; i++)
		{
			b->records[i]->outcome.delay_ms = rate_limit_delay(policy, message);
			b->records[i]->outcome.count_attempt = false;
		}
	}
	else if (status == 401)
	{
		set_all(b, OUTCOME_RETRY, status, category ? category : "INVALID_AUTHENTICATION", message);
		for (i = 0; i < b->nrecords; i++)
			b->records[i]->outcome.count_attempt = false;
	}
	else if (status == 423)
	{
		set_all(b, OUTCOME_RETRY, status, category ? category : "LOCKED", message);
		for (i = 0; i < b->nrecords; i++)
			b->records[i]->outcome.delay_ms = Max(b->records[i]->outcome.delay_ms, LOCKED_MIN_MS);
	}
	else if (status == 477)
	{
		set_all(b, OUTCOME_RETRY, status, "MIGRATION_IN_PROGRESS", message);
		for (i = 0; i < b->nrecords; i++)
		{
			b->records[i]->outcome.count_attempt = false;
			if (req->retry_after_s > 0)
				b->records[i]->outcome.delay_ms = req->retry_after_s * 1000;
		}
	}
	else if (status == 409 && existing_id(message) != NULL &&
			 strcmp(b->object_type, "contacts") == 0 && b->kind != PUSH_ARCHIVE)
	{
		if (b->nrecords == 1)
		{
			set_all(b, OUTCOME_LINK, status, category, message);
			b->records[0]->outcome.hs_object_id = existing_id(message);
		}
		else
			set_all(b, OUTCOME_ALONE, status, category, message);
	}
	else if (status == 409 && b->kind == PUSH_UPSERT)
	{
		/* a unique value is taken, its record unknown: find it by search */
		if (b->nrecords == 1)
		{
			set_all(b, OUTCOME_RETRY, status, category ? category : "CONFLICT", message);
			push_mark_conflict(b->records[0], push_conflict_property(root, message),
							   existing_id(message));
		}
		else
			set_all(b, OUTCOME_ALONE, status, category, message);
	}
	else if (status == 404)
		set_permanent(b, status, category ? category : "OBJECT_NOT_FOUND",
					  message ? message : "HubSpot has no such record");
	else if (status >= 400 && status < 500)
		set_permanent(b, status, category, message ? message : "HubSpot refused the request");
	else
		set_all(b, OUTCOME_RETRY, status, category ? category : "SERVER_ERROR",
				message ? message : "HubSpot answered with a server error");

	give_up_exhausted(b);
}
