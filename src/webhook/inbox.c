/*-------------------------------------------------------------------------
 *
 * inbox.c
 *	  The checks every webhook delivery passes and the storage of its
 *	  events in hubsync.inbox.  The embedded receiver and the SQL function
 *	  hubsync.ingest_webhook() both run exactly this code.
 *
 * A delivery is accepted when its v3 signature matches the app's client
 * secret and its signed timestamp is within hubsync.webhook_max_age of now
 * (either way); a delivery with only a v1/v2 signature (no signed
 * timestamp, so replayable for ever) only while
 * hubsync.webhook_legacy_signatures is on.  Its body must also fit in
 * hubsync.webhook_max_body and is a JSON array of event objects.  All its
 * events are then stored in one statement, deduplicated on a hash of
 * HubSpot's suggested composite key (eventId alone is not unique).  A
 * refusal stores nothing and only bumps a counter in shared memory.
 *
 * IDENTIFICATION
 *	  src/webhook/inbox.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include <openssl/evp.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "core/at_commit.h"
#include "webhook/inbox.h"
#include "util/json_util.h"
#include "util/signature.h"
#include "webhook/settings.h"

PG_FUNCTION_INFO_V1(hubsync_ingest_webhook);
PG_FUNCTION_INFO_V1(hubsync_webhook_signature);
PG_FUNCTION_INFO_V1(hubsync_webhook_counters);

/* Most events accepted in one delivery (HubSpot sends at most 100) */
#define HUBSYNC_MAX_EVENTS_PER_DELIVERY 1000

const char *const hubsync_webhook_counter_names[HUBSYNC_WH_NUM_COUNTERS] = {
	"deliveries_accepted", "events_stored", "events_duplicate",
	"refused_signature", "refused_timestamp", "refused_too_large",
	"refused_method", "refused_path", "refused_malformed",
	"refused_unavailable", "events_applied", "events_echo",
	"events_reverted", "events_skipped", "events_unknown_type",
	"events_failed", "connections_cut"
};

static SPIPlanPtr store_plan = NULL;
/* hubsync_ingest_http_status -- the HTTP status of an outcome */
int
hubsync_ingest_http_status(HubsyncIngestResult r)
{
	switch (r)
	{
		case HUBSYNC_INGEST_OK:
			return 200;
		case HUBSYNC_INGEST_NO_SIGNATURE:
		case HUBSYNC_INGEST_BAD_SIGNATURE:
		case HUBSYNC_INGEST_BAD_TIMESTAMP:
		case HUBSYNC_INGEST_LEGACY_SIGNATURE:
			return 401;
		case HUBSYNC_INGEST_TOO_LARGE:
			return 413;
		case HUBSYNC_INGEST_BAD_METHOD:
			return 405;
		case HUBSYNC_INGEST_BAD_PATH:
			return 404;
		case HUBSYNC_INGEST_MALFORMED:
			return 400;
		case HUBSYNC_INGEST_NO_SECRET:
			return 503;
	}
	return 500;
}

/* hubsync_ingest_message -- a short, secret-free reason for an outcome */
const char *
hubsync_ingest_message(HubsyncIngestResult r)
{
	switch (r)
	{
		case HUBSYNC_INGEST_OK:
			return "stored";
		case HUBSYNC_INGEST_NO_SIGNATURE:
			return "missing X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp";
		case HUBSYNC_INGEST_BAD_SIGNATURE:
			return "signature does not match";
		case HUBSYNC_INGEST_BAD_TIMESTAMP:
			return "request timestamp is missing, malformed, too old or in the future";
		case HUBSYNC_INGEST_TOO_LARGE:
			return "request body too large";
		case HUBSYNC_INGEST_BAD_METHOD:
			return "only POST is accepted";
		case HUBSYNC_INGEST_BAD_PATH:
			return "not found";
		case HUBSYNC_INGEST_MALFORMED:
			return "body is not a JSON array of webhook events";
		case HUBSYNC_INGEST_NO_SECRET:
			return "webhook receiver has no client secret configured";
		case HUBSYNC_INGEST_LEGACY_SIGNATURE:
			return "v1/v2 signatures are not accepted (hubsync.webhook_legacy_signatures is off); send X-HubSpot-Signature-v3";
	}
	return "error";
}

/* count_refusal -- bump the counter of a refusal */
static void
count_refusal(HubsyncIngestResult r)
{
	static const HubsyncWebhookCounter map[] = {
		HUBSYNC_WH_DELIVERIES,	/* OK: not a refusal */
		HUBSYNC_WH_REFUSED_SIGNATURE, HUBSYNC_WH_REFUSED_SIGNATURE,
		HUBSYNC_WH_REFUSED_TIMESTAMP, HUBSYNC_WH_REFUSED_TOO_LARGE,
		HUBSYNC_WH_REFUSED_METHOD, HUBSYNC_WH_REFUSED_PATH,
		HUBSYNC_WH_REFUSED_MALFORMED, HUBSYNC_WH_REFUSED_UNAVAILABLE,
		HUBSYNC_WH_REFUSED_SIGNATURE	/* LEGACY_SIGNATURE */
	};

	StaticAssertStmt(lengthof(map) == HUBSYNC_INGEST_LEGACY_SIGNATURE + 1,
					 "one counter per ingest outcome");

	if (r != HUBSYNC_INGEST_OK)
		hubsync_count_webhook(map[r], 1);
}

/*
 * timestamp_fresh -- whether the signed timestamp (epoch ms, decimal) is
 * within hubsync.webhook_max_age of now, in either direction.
 */
static bool
timestamp_fresh(const char *ts)
{
	int64		ms = 0;
	const char *p;
	int64		now;

	if (ts == NULL || *ts == '\0' || strlen(ts) > 18)
		return false;
	for (p = ts; *p; p++)
	{
		if (*p < '0' || *p > '9')
			return false;
		ms = ms * 10 + (*p - '0');
	}
	if (hubsync_webhook_max_age == 0)
		return true;
	now = hubsync_now_ms();
	return Abs(now - ms) <= (int64) hubsync_webhook_max_age * 1000;
}

/*
 * events_valid -- the body is a JSON array of objects, each with a string
 * subscriptionType and a numeric occurredAt (and numeric ids when given).
 */
static bool
events_valid(Jsonb *events)
{
	int			n,
				i;

	if (events == NULL || !JB_ROOT_IS_ARRAY(events) || JB_ROOT_IS_SCALAR(events))
		return false;
	n = hubsync_json_array_size(&events->root);
	if (n > HUBSYNC_MAX_EVENTS_PER_DELIVERY)
		return false;
	for (i = 0; i < n; i++)
	{
		JsonbContainer *ev = hubsync_json_array_container(&events->root, i);
		JsonbValue *v;
		static const char *const numeric_keys[] = {
			"occurredAt", "objectId", "fromObjectId", "eventId", "subscriptionId"
		};
		int			k;

		if (ev == NULL || !JsonContainerIsObject(ev))
			return false;
		v = hubsync_json_get(ev, "subscriptionType");
		if (v == NULL || v->type != jbvString || v->val.string.len == 0)
			return false;
		if (hubsync_json_get(ev, "occurredAt") == NULL)
			return false;
		for (k = 0; k < lengthof(numeric_keys); k++)
		{
			v = hubsync_json_get(ev, numeric_keys[k]);
			if (v == NULL)
				continue;
			/* must be a whole number that fits in bigint */
			if (v->type == jbvNumeric)
			{
				char	   *s = hubsync_json_value_text(v);
				const char *p = s;

				if (*p == '-')
					p++;
				if (*p == '\0' || strlen(p) > 18 || strspn(p, "0123456789") != strlen(p))
					return false;
			}
			else if (!(v->type == jbvNull && k > 0))
				return false;
		}
	}
	return true;
}

/*
 * hubsync_inbox_check -- run every check on a delivery; on success,
 * *events is the parsed body.  Counts refusals.  Pure: no database
 * access, so the receiver can call it outside a transaction.
 */
HubsyncIngestResult
hubsync_inbox_check(const HubsyncDelivery *d, const char *secret, Jsonb **events)
{
	HubsyncIngestResult r = HUBSYNC_INGEST_OK;

	*events = NULL;
	if (d->method == NULL || strcmp(d->method, "POST") != 0)
		r = HUBSYNC_INGEST_BAD_METHOD;
	else if (d->body_len > (size_t) hubsync_webhook_max_body)
		r = HUBSYNC_INGEST_TOO_LARGE;
	else if (secret == NULL || *secret == '\0')
		r = HUBSYNC_INGEST_NO_SECRET;
	else if (d->signature_v3 != NULL && *d->signature_v3 != '\0')
	{
		if (!timestamp_fresh(d->timestamp))
			r = HUBSYNC_INGEST_BAD_TIMESTAMP;
		else if (!hubsync_signature_verify(3, secret, d->method, d->uri,
										   d->body, d->body_len,
										   d->timestamp, d->signature_v3))
			r = HUBSYNC_INGEST_BAD_SIGNATURE;
	}
	else if (d->signature != NULL && *d->signature != '\0' &&
			 !hubsync_webhook_legacy_signatures)
		r = HUBSYNC_INGEST_LEGACY_SIGNATURE;
	else if (d->signature != NULL && *d->signature != '\0')
	{
		/*
		 * no v3, and legacy signatures allowed: v1 or v2 per the version
		 * header.  Nothing signed says when it was sent, so nothing stops a
		 * replay of a captured delivery; hence off by default.
		 */
		int			version = (d->signature_version &&
							   strcmp(d->signature_version, "v2") == 0) ? 2 : 1;

		if (d->signature_version && strcmp(d->signature_version, "v1") != 0 &&
			strcmp(d->signature_version, "v2") != 0)
			r = HUBSYNC_INGEST_BAD_SIGNATURE;
		else if (!hubsync_signature_verify(version, secret, d->method, d->uri,
										   d->body, d->body_len, NULL,
										   d->signature))
			r = HUBSYNC_INGEST_BAD_SIGNATURE;
	}
	else
		r = HUBSYNC_INGEST_NO_SIGNATURE;

	if (r == HUBSYNC_INGEST_OK)
	{
		*events = hubsync_json_parse(d->body, d->body_len);
		if (!events_valid(*events))
		{
			*events = NULL;
			r = HUBSYNC_INGEST_MALFORMED;
		}
	}
	count_refusal(r);
	return r;
}

/* The inbox columns one INSERT fills, as parallel arrays */
enum
{
	COL_DEDUPE_KEY,
	COL_SUBSCRIPTION_TYPE,
	COL_OBJECT_TYPE_ID,
	COL_OBJECT_ID,
	COL_OCCURRED_AT,
	COL_EVENT,
	COL_PROPERTY_NAME,
	COL_PROPERTY_VALUE,
	COL_CHANGE_SOURCE,
	COL_SOURCE_ID,
	COL_CHANGE_KEY,
	NUM_INBOX_COLS
};

/*
 * The fields the dedupe key covers, in this order: HubSpot's suggested
 * composite key (API-NOTES 12.2) plus the ends of an association and the
 * event's type.  The key is sha256 over their ->> text forms joined by
 * U+001F, absent and null fields left out (exactly SQL's concat_ws, which
 * computed it before).
 */
static const char *const dedupe_fields[] = {
	"subscriptionId", "objectId", "occurredAt", "propertyName",
	"propertyValue", "eventId", "fromObjectId", "toObjectId",
	"associationType", "associationRemoved", "subscriptionType", "objectTypeId"
};

/*
 * field_text -- a field of an event as SQL's ->> gives it (strings as
 * they are, numbers and booleans in text form, objects and arrays as JSON
 * text), or NULL when absent or JSON null.
 */
static char *
field_text(JsonbContainer *ev, const char *key, int *len)
{
	JsonbValue *v = hubsync_json_get(ev, key);
	char	   *s;

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type == jbvString)
	{
		*len = v->val.string.len;
		return v->val.string.val;	/* not NUL-terminated */
	}
	if (v->type == jbvBinary)
		s = JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
	else
		s = hubsync_json_value_text(v);
	*len = strlen(s);
	return s;
}

/* text_datum -- a field as a text datum, or a NULL */
static void
text_datum(JsonbContainer *ev, const char *key, Datum *value, bool *isnull)
{
	int			len = 0;
	char	   *s = field_text(ev, key, &len);

	*isnull = (s == NULL);
	*value = s ? PointerGetDatum(cstring_to_text_with_len(s, len)) : (Datum) 0;
}

/* int8_datum -- a whole-number field (checked by events_valid) as bigint */
static void
int8_datum(JsonbContainer *ev, const char *key, Datum *value, bool *isnull)
{
	JsonbValue *v = hubsync_json_get(ev, key);

	*isnull = (v == NULL || v->type != jbvNumeric);
	*value = *isnull ? (Datum) 0 :
		DirectFunctionCall1(numeric_int8, NumericGetDatum(v->val.numeric));
}

/*
 * dedupe_key -- sha256 of an event's composite key, as a bytea datum.
 * The text is converted to UTF-8 first, as convert_to() did.  With
 * any_subscription, subscriptionId is left out: the change key, the same
 * for a change whichever subscription brought it (a webhook one or a
 * Webhooks Journal one), so a change that came both ways is stored once.
 */
static Datum
dedupe_key(JsonbContainer *ev, bool any_subscription)
{
	StringInfoData buf;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	bool		first = true;
	char	   *utf8;
	bytea	   *out;
	int			k;

	initStringInfo(&buf);
	for (k = 0; k < lengthof(dedupe_fields); k++)
	{
		int			len = 0;
		char	   *s;

		if (any_subscription && strcmp(dedupe_fields[k], "subscriptionId") == 0)
			continue;
		s = field_text(ev, dedupe_fields[k], &len);
		if (s == NULL)
			continue;
		if (!first)
			appendStringInfoChar(&buf, '\x1f');
		appendBinaryStringInfo(&buf, s, len);
		first = false;
	}
	utf8 = pg_server_to_any(buf.data, buf.len, PG_UTF8);
	if (EVP_Digest(utf8, utf8 == buf.data ? buf.len : strlen(utf8), md, &mdlen,
				   EVP_sha256(), NULL) != 1 || mdlen != 32)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not compute the dedupe key of a webhook event"),
				 errhint("OpenSSL's SHA-256 failed; check the server log.")));
	out = palloc(VARHDRSZ + mdlen);
	SET_VARSIZE(out, VARHDRSZ + mdlen);
	memcpy(VARDATA(out), md, mdlen);
	return PointerGetDatum(out);
}

/*
 * hubsync_inbox_store -- insert a checked delivery's events, skipping
 * those already stored; returns how many are new.  Every column is read
 * from the parsed body here, in C, dedupe key included; then one INSERT
 * ... SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING stores the whole
 * delivery, in the caller's transaction (SPI connected by us); an event
 * whose dedupe key (a retried delivery) or change key (the same change
 * from the Webhooks Journal or the receiver) is stored already is left
 * out.  Counts
 * nothing: see hubsync_inbox_count_stored.
 */
int
hubsync_inbox_store(Jsonb *events, int *duplicates)
{
	static const Oid elem_types[NUM_INBOX_COLS] = {
		BYTEAOID, TEXTOID, TEXTOID, INT8OID, INT8OID, JSONBOID,
		TEXTOID, TEXTOID, TEXTOID, TEXTOID, BYTEAOID
	};
	static const Oid array_types[NUM_INBOX_COLS] = {
		BYTEAARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
		JSONBARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		BYTEAARRAYOID
	};
	int			total = hubsync_json_array_size(&events->root);
	Datum	   *values[NUM_INBOX_COLS];
	bool	   *nulls[NUM_INBOX_COLS];
	Datum		args[NUM_INBOX_COLS];
	int			stored,
				i,
				c;

	*duplicates = 0;
	if (total == 0)
		return 0;
	for (c = 0; c < NUM_INBOX_COLS; c++)
	{
		values[c] = palloc(sizeof(Datum) * total);
		nulls[c] = palloc0(sizeof(bool) * total);
	}
	for (i = 0; i < total; i++)
	{
		JsonbValue *elem = getIthJsonbValueFromContainer(&events->root, i);
		JsonbContainer *ev = elem->val.binary.data; /* an object: checked */

		values[COL_DEDUPE_KEY][i] = dedupe_key(ev, false);
		values[COL_CHANGE_KEY][i] = dedupe_key(ev, true);
		text_datum(ev, "subscriptionType", &values[COL_SUBSCRIPTION_TYPE][i], &nulls[COL_SUBSCRIPTION_TYPE][i]);
		text_datum(ev, "objectTypeId", &values[COL_OBJECT_TYPE_ID][i], &nulls[COL_OBJECT_TYPE_ID][i]);
		int8_datum(ev, "objectId", &values[COL_OBJECT_ID][i], &nulls[COL_OBJECT_ID][i]);
		if (nulls[COL_OBJECT_ID][i])
			int8_datum(ev, "fromObjectId", &values[COL_OBJECT_ID][i], &nulls[COL_OBJECT_ID][i]);
		int8_datum(ev, "occurredAt", &values[COL_OCCURRED_AT][i], &nulls[COL_OCCURRED_AT][i]);
		values[COL_EVENT][i] = JsonbPGetDatum(JsonbValueToJsonb(elem));
		text_datum(ev, "propertyName", &values[COL_PROPERTY_NAME][i], &nulls[COL_PROPERTY_NAME][i]);
		text_datum(ev, "propertyValue", &values[COL_PROPERTY_VALUE][i], &nulls[COL_PROPERTY_VALUE][i]);
		text_datum(ev, "changeSource", &values[COL_CHANGE_SOURCE][i], &nulls[COL_CHANGE_SOURCE][i]);
		text_datum(ev, "sourceId", &values[COL_SOURCE_ID][i], &nulls[COL_SOURCE_ID][i]);
	}
	for (c = 0; c < NUM_INBOX_COLS; c++)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;
		int			dims[1] = {total};
		int			lbs[1] = {1};

		get_typlenbyvalalign(elem_types[c], &typlen, &typbyval, &typalign);
		args[c] = PointerGetDatum(construct_md_array(values[c], nulls[c], 1, dims, lbs,
													 elem_types[c], typlen, typbyval, typalign));
	}

	SPI_connect();
	if (store_plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(
									   "INSERT INTO hubsync.inbox (dedupe_key, subscription_type, object_type_id, "
									   "  object_id, occurred_at, event, property_name, property_value, "
									   "  change_source, source_id, change_key) "
									   "SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), "
									   "  pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5), "
									   "  pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8), "
									   "  pg_catalog.unnest($9), pg_catalog.unnest($10), pg_catalog.unnest($11)) "
									   "ON CONFLICT DO NOTHING",
									   NUM_INBOX_COLS, (Oid *) array_types);

		if (plan == NULL)
			elog(ERROR, "could not prepare the inbox insert: %s",
				 SPI_result_code_string(SPI_result));
		store_plan = SPI_saveplan(plan);
	}
	if (SPI_execute_plan(store_plan, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not store webhook events");
	stored = (int) SPI_processed;
	SPI_finish();
	*duplicates = total - stored;
	return stored;
}

/*
 * hubsync_inbox_count_stored -- count one stored delivery; the receiver
 * calls it after the commit, so a rolled-back group counts nothing.
 */
void
hubsync_inbox_count_stored(int stored, int duplicates)
{
	hubsync_count_webhook(HUBSYNC_WH_DELIVERIES, 1);
	hubsync_count_webhook(HUBSYNC_WH_EVENTS_STORED, stored);
	hubsync_count_webhook(HUBSYNC_WH_EVENTS_DUPLICATE, duplicates);
}

/*
 * hubsync_inbox_read_secret -- the app's client secret (palloc'd in the
 * current context), or NULL.  Needs a transaction; the caller must be
 * able to read hubsync._credentials and must wipe the result.
 */
char *
hubsync_inbox_read_secret(void)
{
	char	   *secret = NULL;

	SPI_connect();
	if (SPI_execute("SELECT client_secret FROM hubsync._credentials", true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		char	   *s = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (s != NULL)
		{
			secret = SPI_palloc(strlen(s) + 1);
			strcpy(secret, s);
			explicit_bzero(s, strlen(s));
		}
	}
	SPI_finish();
	return secret;
}

/* text_arg -- argument i as a C string, or NULL */
static char *
text_arg(FunctionCallInfo fcinfo, int i)
{
	return PG_ARGISNULL(i) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(i));
}

/*
 * hubsync_ingest_webhook -- SQL hubsync.ingest_webhook(method, uri, body,
 * signature_v3, request_timestamp): the receiver's checks and storage for
 * users who terminate HTTP elsewhere.  Returns the number of new events;
 * refusals are errors with the HTTP status in the detail.
 */
Datum
hubsync_ingest_webhook(PG_FUNCTION_ARGS)
{
	HubsyncDelivery d;
	HubsyncIngestResult r;
	Jsonb	   *events;
	char	   *secret;
	int			stored,
				dups;
	text	   *body = PG_ARGISNULL(2) ? NULL : PG_GETARG_TEXT_PP(2);

	memset(&d, 0, sizeof(d));
	d.method = text_arg(fcinfo, 0);
	d.uri = text_arg(fcinfo, 1);
	d.body = body ? VARDATA_ANY(body) : "";
	d.body_len = body ? VARSIZE_ANY_EXHDR(body) : 0;
	d.signature_v3 = text_arg(fcinfo, 3);
	d.timestamp = text_arg(fcinfo, 4);
	if (d.uri == NULL || *d.uri == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("uri must not be empty"),
				 errhint("Pass the full URL HubSpot called, e.g. https://example.com/hubspot/webhooks: it is part of the v3 signature.")));
	if (pg_strncasecmp(d.uri, "http://", 7) != 0 && pg_strncasecmp(d.uri, "https://", 8) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("uri must be the absolute http or https URL HubSpot called"),
				 errhint("Pass scheme, host and path, e.g. https://example.com/hubspot/webhooks, exactly as configured in the HubSpot app: it is part of the v3 signature.")));
	if (body == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("body must not be NULL"),
				 errhint("Pass the raw request body exactly as received.")));

	secret = hubsync_inbox_read_secret();
	r = hubsync_inbox_check(&d, secret, &events);
	if (secret)
		explicit_bzero(secret, strlen(secret));

	switch (r)
	{
		case HUBSYNC_INGEST_OK:
			break;
		case HUBSYNC_INGEST_NO_SIGNATURE:
		case HUBSYNC_INGEST_BAD_SIGNATURE:
		case HUBSYNC_INGEST_LEGACY_SIGNATURE:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("webhook refused: %s", hubsync_ingest_message(r)),
					 errdetail("HTTP status 401."),
					 errhint("Pass the X-HubSpot-Signature-v3 header, the full URL HubSpot called and the raw body as received; the key is the client secret set with hubsync.set_credentials().")));
			break;
		case HUBSYNC_INGEST_BAD_TIMESTAMP:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("webhook refused: %s", hubsync_ingest_message(r)),
					 errdetail("HTTP status 401."),
					 errhint("Pass the X-HubSpot-Request-Timestamp header (epoch milliseconds); it must be within hubsync.webhook_max_age of now.")));
			break;
		case HUBSYNC_INGEST_TOO_LARGE:
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("webhook refused: %s", hubsync_ingest_message(r)),
					 errdetail("HTTP status 413; the limit is %d bytes.", hubsync_webhook_max_body),
					 errhint("Raise hubsync.webhook_max_body if HubSpot really sends bodies this large.")));
			break;
		case HUBSYNC_INGEST_BAD_METHOD:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("webhook refused: %s", hubsync_ingest_message(r)),
					 errdetail("HTTP status 405."),
					 errhint("HubSpot delivers webhooks with POST.")));
			break;
		case HUBSYNC_INGEST_BAD_PATH:
		case HUBSYNC_INGEST_MALFORMED:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("webhook refused: %s", hubsync_ingest_message(r)),
					 errdetail("HTTP status 400."),
					 errhint("The body must be the JSON array HubSpot sent, each event with subscriptionType and occurredAt.")));
			break;
		case HUBSYNC_INGEST_NO_SECRET:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("webhook refused: %s", hubsync_ingest_message(r)),
					 errdetail("HTTP status 503."),
					 errhint("Set the app's client secret with hubsync.set_credentials(client_secret => ...).")));
			break;
	}

	stored = hubsync_inbox_store(events, &dups);
	hubsync_inbox_count_stored(stored, dups);
	/* the pull worker applies them once they are visible */
	if (stored > 0)
		hubsync_wake_at_commit(HUBSYNC_WORKER_PULL);
	PG_RETURN_INT32(stored);
}

/*
 * hubsync_webhook_signature -- SQL hubsync._webhook_signature(version,
 * secret, method, uri, body, timestamp): the signature the receiver
 * expects, for tests and tools.
 */
Datum
hubsync_webhook_signature(PG_FUNCTION_ARGS)
{
	int			version = PG_ARGISNULL(0) ? 3 : PG_GETARG_INT32(0);
	char	   *secret = text_arg(fcinfo, 1);
	char	   *method = text_arg(fcinfo, 2);
	char	   *uri = text_arg(fcinfo, 3);
	text	   *body = PG_ARGISNULL(4) ? NULL : PG_GETARG_TEXT_PP(4);
	char	   *ts = text_arg(fcinfo, 5);
	char		out[HUBSYNC_SIG_HEX_LEN + 1];
	bool		ok;

	if (version < 1 || version > 3)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown signature version %d", version),
				 errhint("Versions are 1, 2 and 3.")));
	if (secret == NULL)
		PG_RETURN_NULL();
	ok = hubsync_signature_compute(version, secret, method ? method : "", uri ? uri : "",
								   body ? VARDATA_ANY(body) : "",
								   body ? VARSIZE_ANY_EXHDR(body) : 0,
								   ts ? ts : "", out, sizeof(out));
	explicit_bzero(secret, strlen(secret));
	if (!ok)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

/* hubsync_webhook_counters -- SQL hubsync.webhook_counters() */
Datum
hubsync_webhook_counters(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			i;

	hubsync_require_shmem();
	InitMaterializedSRF(fcinfo, 0);
	for (i = 0; i < HUBSYNC_WH_NUM_COUNTERS; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = CStringGetTextDatum(hubsync_webhook_counter_names[i]);
		values[1] = Int64GetDatum((int64) pg_atomic_read_u64(&hubsync_shared->webhook_counters[i]));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
