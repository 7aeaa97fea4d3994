/*
 * fuzz_webhook.c -- libFuzzer harness for the webhook path: v3 URI
 * decoding, v1/v2/v3 signatures and their constant-time check
 * (src/signature.c, unchanged), and the JSON event body: guards, parse,
 * and the fields the dedupe key is made of.
 *
 * Input: "uri\nsignature\ntimestamp\nbody" (missing lines take defaults).
 */
#include "fuzz_common.h"

#include <openssl/sha.h>

#include "signature.h"

#define SECRET "hubsync-fuzz-secret"

/* the event fields hashed into hubsync.inbox.dedupe_key */
static const char *const dedupe_fields[] = {
	"subscriptionId", "objectId", "occurredAt", "propertyName", "propertyValue", "eventId"
};

typedef struct EventState
{
	int			depth;
	int			field;			/* index into dedupe_fields, -1 if other */
	char		key[1024];		/* the dedupe key being built */
	size_t		keylen;
	int			events;
} EventState;

static void
ev_object_start(void *state)
{
	EventState *s = state;

	if (++s->depth == 2)
	{
		s->keylen = 0;
		s->key[0] = '\0';
	}
}

static void
ev_object_end(void *state)
{
	EventState *s = state;

	if (s->depth-- == 2)
	{
		unsigned char md[SHA256_DIGEST_LENGTH];

		SHA256((unsigned char *) s->key, s->keylen, md);
		s->events++;
	}
}

static void
ev_array_start(void *state)
{
	((EventState *) state)->depth++;
}

static void
ev_array_end(void *state)
{
	((EventState *) state)->depth--;
}

static void
ev_field_start(void *state, char *fname, bool isnull)
{
	EventState *s = state;

	s->field = -1;
	if (s->depth == 2)
		for (int i = 0; i < (int) lengthof(dedupe_fields); i++)
			if (strcmp(fname, dedupe_fields[i]) == 0)
				s->field = i;
	pfree(fname);
}

static void
ev_scalar(void *state, char *token, JsonTokenType type)
{
	EventState *s = state;

	if (s->depth == 2 && s->field >= 0)
	{
		size_t		n = strlen(token);

		/* concat_ws(chr(31), ...) like the SQL that stores the event */
		if (s->keylen + n + 2 < sizeof(s->key))
		{
			memcpy(s->key + s->keylen, token, n);
			s->keylen += n;
			s->key[s->keylen++] = 31;
			s->key[s->keylen] = '\0';
		}
	}
	pfree(token);
}

/* next_line -- split off the next line of the input (in place) */
static char *
next_line(char **p, char *end, const char *dflt)
{
	char	   *start = *p;
	char	   *nl;

	if (start >= end)
		return (char *) dflt;
	nl = memchr(start, '\n', end - start);
	if (nl == NULL)
		return (char *) dflt;
	*nl = '\0';
	*p = nl + 1;
	return start;
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *buf = palloc(size + 1);
	char	   *p = buf;
	char	   *end = buf + size;
	char	   *uri,
			   *sig,
			   *ts,
			   *body,
			   *decoded;
	size_t		body_len;
	char		good[HUBSYNC_SIG_HEX_LEN + 1];
	EventState	st = {0};
	JsonSemAction sem = {0};

	memcpy(buf, data, size);
	buf[size] = '\0';
	uri = next_line(&p, end, "https://hooks.example.com/hubspot/webhooks");
	sig = next_line(&p, end, "");
	ts = next_line(&p, end, "1700000000000");
	body = p < end ? p : "";
	body_len = p < end ? (size_t) (end - p) : 0;

	/* v3 URI decoding only ever shortens */
	decoded = hubsync_v3_uri(uri);
	FUZZ_CHECK(strlen(decoded) <= strlen(uri));
	pfree(decoded);

	/* every version: the right signature verifies, any other does not */
	for (int v = 1; v <= 3; v++)
	{
		FUZZ_CHECK(hubsync_signature_compute(v, SECRET, "POST", uri, body, body_len, ts,
											 good, sizeof(good)));
		FUZZ_CHECK(hubsync_signature_verify(v, SECRET, "POST", uri, body, body_len, ts, good));
		FUZZ_CHECK(hubsync_signature_verify(v, SECRET, "POST", uri, body, body_len, ts, sig) ==
				   (strcmp(sig, good) == 0));
		FUZZ_CHECK(!hubsync_signature_verify(v, "", "POST", uri, body, body_len, ts, good));
	}

	/* the body as an event list, and the dedupe key of each event */
	sem.semstate = &st;
	sem.object_start = ev_object_start;
	sem.object_end = ev_object_end;
	sem.array_start = ev_array_start;
	sem.array_end = ev_array_end;
	sem.object_field_start = ev_field_start;
	sem.scalar = ev_scalar;
	if (body_len > 0)
	{
		char	   *copy = pnstrdup(body, body_len);

		/* pnstrdup stops at a NUL: the guard must see the real length */
		if (strlen(copy) == body_len)
			(void) fuzz_parse_json(copy, body_len, &sem);
		pfree(copy);
	}
	pfree(buf);
	return 0;
}
