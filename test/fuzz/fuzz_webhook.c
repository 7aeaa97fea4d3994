/*
 * fuzz_webhook.c -- libFuzzer harness for the backend-free part of the
 * webhook path: v3 URI decoding, v1/v2/v3 signatures and their
 * constant-time check (src/signature.c, unchanged), and the JSON guards
 * (src/parse_util.c).  Event validation and the dedupe key need jsonb:
 * the probe fuzzer (probe_fuzz.c, kind "webhook") runs the server's own
 * hubsync_inbox_check and hubsync_inbox_store for them.
 *
 * Input: "uri\nsignature\ntimestamp\nbody" (missing lines take defaults).
 */
#include "fuzz_common.h"

#include "signature.h"

#define SECRET "hubsync-fuzz-secret"

/* JSON callbacks: the body only has to get through the parser */
static void
ev_field_start(void *state, char *fname, bool isnull)
{
	pfree(fname);
}

static void
ev_scalar(void *state, char *token, JsonTokenType type)
{
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

	/* the body through the guards and the parser */
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
