/*-------------------------------------------------------------------------
 *
 * json_util.c
 *	  Small helpers over PostgreSQL's JSON parser and jsonb for reading
 *	  HubSpot's responses and webhook bodies.  Nothing here parses JSON by
 *	  hand: validation is pg_parse_json, storage is jsonb.
 *
 * IDENTIFICATION
 *	  src/json_util.c
 *
 *-------------------------------------------------------------------------
 */
#include "hubsync.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "json_util.h"
#include "parse_util.h"

/*
 * hubsync_json_parse -- jsonb from text, or NULL when the text is not
 * valid UTF-8 JSON or nests deeper than HUBSYNC_JSON_MAX_DEPTH.
 * Validation runs first with the non-throwing parser, so malformed input
 * from the network never raises an error.
 */
Jsonb *
hubsync_json_parse(const char *text, size_t len)
{
	JsonLexContext *lex;
	JsonParseErrorType err;
	char	   *copy;

	if (text == NULL || len == 0 || len > MaxAllocSize - 1)
		return NULL;
	if (!pg_verifymbstr(text, (int) len, true))
		return NULL;
	if (memchr(text, '\0', len) != NULL)
		return NULL;
	if (!hubsync_json_depth_ok(text, len, HUBSYNC_JSON_MAX_DEPTH))
		return NULL;
	copy = pnstrdup(text, len);
#if PG_VERSION_NUM >= 170000
	lex = makeJsonLexContextCstringLen(NULL, copy, len, PG_UTF8, true);
#else
	lex = makeJsonLexContextCstringLen(copy, (int) len, PG_UTF8, true);
#endif
	err = pg_parse_json(lex, &nullSemAction);
	if (err != JSON_SUCCESS)
		return NULL;
	/* \u0000 passes the parser but not jsonb */
	if (strstr(copy, "\\u0000") != NULL)
		return NULL;
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(copy)));
}

/* hubsync_json_get -- the value under key in an object, or NULL */
JsonbValue *
hubsync_json_get(JsonbContainer *c, const char *key)
{
	if (c == NULL || !JsonContainerIsObject(c))
		return NULL;
	return getKeyJsonValueFromContainer(c, key, strlen(key), NULL);
}

/* hubsync_json_get_container -- a nested object or array under key */
JsonbContainer *
hubsync_json_get_container(JsonbContainer *c, const char *key)
{
	JsonbValue *v = hubsync_json_get(c, key);

	if (v == NULL || v->type != jbvBinary)
		return NULL;
	return v->val.binary.data;
}

/*
 * hubsync_json_value_text -- a scalar as text (strings as they are,
 * numbers in their exact decimal form, booleans as true/false); NULL for
 * null, objects and arrays.
 */
char *
hubsync_json_value_text(JsonbValue *v)
{
	if (v == NULL)
		return NULL;
	switch (v->type)
	{
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		default:
			return NULL;
	}
}

/* hubsync_json_get_text -- hubsync_json_value_text of the value at key */
char *
hubsync_json_get_text(JsonbContainer *c, const char *key)
{
	return hubsync_json_value_text(hubsync_json_get(c, key));
}

/* hubsync_json_array_size -- elements in an array container, 0 if not one */
int
hubsync_json_array_size(JsonbContainer *c)
{
	if (c == NULL || !JsonContainerIsArray(c))
		return 0;
	return JsonContainerSize(c);
}

/* hubsync_json_array_container -- element i when it is an object/array */
JsonbContainer *
hubsync_json_array_container(JsonbContainer *c, int i)
{
	JsonbValue *v;

	if (c == NULL || !JsonContainerIsArray(c))
		return NULL;
	v = getIthJsonbValueFromContainer(c, i);
	if (v == NULL || v->type != jbvBinary)
		return NULL;
	return v->val.binary.data;
}

/* hubsync_json_array_text -- element i as text when it is a scalar */
char *
hubsync_json_array_text(JsonbContainer *c, int i)
{
	if (c == NULL || !JsonContainerIsArray(c))
		return NULL;
	return hubsync_json_value_text(getIthJsonbValueFromContainer(c, i));
}

/* hubsync_json_escape -- append s as a JSON string literal */
void
hubsync_json_escape(StringInfo buf, const char *s)
{
	escape_json(buf, s);
}
