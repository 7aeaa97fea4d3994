/*
 * fuzz_common.h -- what both libFuzzer harnesses share: PostgreSQL's own
 * JSON parser (libpgcommon's jsonapi) behind hubsync's guards, exactly as
 * the server runs it: UTF-8 check, no NUL, nesting depth, then parse.
 */
#ifndef HUBSYNC_FUZZ_COMMON_H
#define HUBSYNC_FUZZ_COMMON_H

#include "postgres_fe.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "parse_util.h"

/* fuzz_abort -- an invariant broke: make libFuzzer keep the input */
#define FUZZ_CHECK(cond) do { if (!(cond)) { fprintf(stderr, "invariant failed: %s\n", #cond); abort(); } } while (0)

/*
 * fuzz_parse_json -- hubsync_json_parse's checks, then pg_parse_json with
 * the given callbacks; true if the text is accepted.  text must be
 * NUL-terminated at len.
 */
static inline bool
fuzz_parse_json(char *text, size_t len, JsonSemAction *sem)
{
	JsonLexContext *lex;
	JsonParseErrorType err;

	if (len == 0 || len > 64 * 1024 * 1024)
		return false;
	if (pg_encoding_verifymbstr(PG_UTF8, text, (int) len) != (int) len)
		return false;
	if (memchr(text, '\0', len) != NULL)
		return false;
	if (!hubsync_json_depth_ok(text, len, HUBSYNC_JSON_MAX_DEPTH))
		return false;
	lex = makeJsonLexContextCstringLen(text, (int) len, PG_UTF8, true);
	err = pg_parse_json(lex, sem);
	if (lex->strval)
	{
		pfree(lex->strval->data);
		pfree(lex->strval);
	}
	pfree(lex);
	return err == JSON_SUCCESS;
}

#endif
