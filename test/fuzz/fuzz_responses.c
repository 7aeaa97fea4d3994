/*
 * fuzz_responses.c -- libFuzzer harness for what hubsync takes from
 * HubSpot's answers (batch, search, list, error and OAuth token bodies):
 * the JSON guards and parse, then the checks applied to the values that
 * matter (src/parse_util.c, unchanged): record ids, "Existing ID: N" in
 * messages, status words kept in errors, tokens, times, paging cursors,
 * Retry-After header lines, which http:// URLs count as loopback.
 */
#include "fuzz_common.h"

#include <errno.h>

typedef struct ResponseState
{
	int			depth;
	char		field[64];
} ResponseState;

static void
rs_object_start(void *state)
{
	((ResponseState *) state)->depth++;
}

static void
rs_object_end(void *state)
{
	((ResponseState *) state)->depth--;
}

static void
rs_field_start(void *state, char *fname, bool isnull)
{
	ResponseState *s = state;

	strlcpy(s->field, fname, sizeof(s->field));
	pfree(fname);
}

/* check_value -- every check hubsync makes of a field's value */
static void
check_value(const char *field, const char *v)
{
	if (strcmp(field, "id") == 0 || strcmp(field, "hs_object_id") == 0)
	{
		if (hubsync_valid_object_id(v))
		{
			char	   *end;
			long long	n;

			errno = 0;
			n = strtoll(v, &end, 10);
			FUZZ_CHECK(errno == 0 && *end == '\0' && n >= 0);	/* fits bigint */
		}
	}
	else if (strcmp(field, "message") == 0)
	{
		size_t		len = 0;
		const char *id = hubsync_existing_id(v, &len);

		if (id)
			FUZZ_CHECK(len >= 1 && len <= 18 && strspn(id, "0123456789") >= len);
	}
	else if (strcmp(field, "status") == 0 || strcmp(field, "error") == 0 ||
			 strcmp(field, "category") == 0)
	{
		char		word[65];
		size_t		n = hubsync_safe_word(v, word, sizeof(word));

		FUZZ_CHECK(n < sizeof(word) && strlen(word) == n);
		FUZZ_CHECK(strspn(word, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") == n);
	}
	else if (strcmp(field, "updatedAt") == 0 || strcmp(field, "createdAt") == 0 ||
			 strcmp(field, "hs_lastmodifieddate") == 0 || strcmp(field, "lastmodifieddate") == 0)
	{
		int64_t		ms;

		/* a time taken is inside years 1..9999 (or 15 digits of epoch ms) */
		if (hubsync_iso_ms(v, &ms))
			FUZZ_CHECK(ms > -62200000000000LL && ms < 1000000000000000LL);
	}
	else if (strcmp(field, "after") == 0)
	{
		if (hubsync_cursor_ok(v))
			FUZZ_CHECK(strlen(v) >= 1 && strlen(v) <= HUBSYNC_MAX_CURSOR_LEN && strpbrk(v, "\r\n") == NULL);
	}
	else if (strcmp(field, "access_token") == 0 || strcmp(field, "refresh_token") == 0)
	{
		if (hubsync_token_ok(v, 4096))
			FUZZ_CHECK(strpbrk(v, "\r\n \"'\\") == NULL);
	}
}

static void
rs_scalar(void *state, char *token, JsonTokenType type)
{
	ResponseState *s = state;

	if (s->depth > 0)
		check_value(s->field, token);
	pfree(token);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *text;
	ResponseState st = {0};
	JsonSemAction sem = {0};
	size_t		len = 0;

	if (size == 0)
		return 0;
	text = palloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';

	/* the raw text is also a message (error bodies that are not JSON) */
	(void) hubsync_existing_id(text, &len);

	/* and a response header line, and a configured URL */
	{
		long		n = -1;

		if (hubsync_header_number(text, size, "Retry-After", HUBSYNC_MAX_RETRY_AFTER_S, &n))
			FUZZ_CHECK(n >= 0 && n <= HUBSYNC_MAX_RETRY_AFTER_S);
		if (strncmp(text, "http://", 7) == 0 && strlen(text) == size && !hubsync_url_cleartext_remote(text))
			FUZZ_CHECK(strpbrk(text + 7, "@\\%") == NULL || strcspn(text + 7, "/?#") < strcspn(text + 7, "@\\%"));
	}

	sem.semstate = &st;
	sem.object_start = rs_object_start;
	sem.object_end = rs_object_end;
	sem.object_field_start = rs_field_start;
	sem.scalar = rs_scalar;
	if (strlen(text) == size)
		(void) fuzz_parse_json(text, size, &sem);
	pfree(text);
	return 0;
}
