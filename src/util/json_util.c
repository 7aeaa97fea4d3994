/*-------------------------------------------------------------------------
 *
 * json_util.c
 *	  Small helpers over PostgreSQL's JSON parser and jsonb for reading
 *	  HubSpot's responses and webhook bodies.  Nothing here parses JSON by
 *	  hand: validation is pg_parse_json, storage is jsonb.
 *
 * IDENTIFICATION
 *	  src/util/json_util.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "util/compat.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "util/json_util.h"
#include "util/parse_util.h"

/* What the single-pass parser builds: jsonb's own construction state */
typedef struct JsonbBuildState
{
	JsonbParseState *parse;
	JsonbValue *result;
} JsonbBuildState;

/* build_push -- a structural token: start or end of an object or array */
static void
build_push(void *state, JsonbIteratorToken token)
{
	JsonbBuildState *st = state;

	st->result = pushJsonbValue(&st->parse, token, NULL);
}

/* build_object_start -- '{' */
static HUBSYNC_JSON_SEM_RETURN
build_object_start(void *state)
{
	build_push(state, WJB_BEGIN_OBJECT);
	return HUBSYNC_JSON_SEM_DONE;
}

/* build_object_end -- '}' */
static HUBSYNC_JSON_SEM_RETURN
build_object_end(void *state)
{
	build_push(state, WJB_END_OBJECT);
	return HUBSYNC_JSON_SEM_DONE;
}

/* build_array_start -- '[' */
static HUBSYNC_JSON_SEM_RETURN
build_array_start(void *state)
{
	build_push(state, WJB_BEGIN_ARRAY);
	return HUBSYNC_JSON_SEM_DONE;
}

/* build_array_end -- ']' */
static HUBSYNC_JSON_SEM_RETURN
build_array_end(void *state)
{
	build_push(state, WJB_END_ARRAY);
	return HUBSYNC_JSON_SEM_DONE;
}

/* build_field -- an object key (de-escaped by the lexer) */
static HUBSYNC_JSON_SEM_RETURN
build_field(void *state, char *fname, bool isnull)
{
	JsonbBuildState *st = state;
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.len = strlen(fname);
	v.val.string.val = fname;
	st->result = pushJsonbValue(&st->parse, WJB_KEY, &v);
	return HUBSYNC_JSON_SEM_DONE;
}

/* build_scalar -- a string, number, boolean or null, as jsonb_in makes it */
static HUBSYNC_JSON_SEM_RETURN
build_scalar(void *state, char *token, JsonTokenType tokentype)
{
	JsonbBuildState *st = state;
	JsonbValue	v;

	switch (tokentype)
	{
		case JSON_TOKEN_STRING:
			v.type = jbvString;
			v.val.string.len = strlen(token);
			v.val.string.val = token;
			break;
		case JSON_TOKEN_NUMBER:
			v.type = jbvNumeric;
			v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																CStringGetDatum(token),
																ObjectIdGetDatum(InvalidOid),
																Int32GetDatum(-1)));
			break;
		case JSON_TOKEN_TRUE:
		case JSON_TOKEN_FALSE:
			v.type = jbvBool;
			v.val.boolean = (tokentype == JSON_TOKEN_TRUE);
			break;
		default:
			v.type = jbvNull;
			break;
	}
	if (st->parse == NULL)
	{
		/* a lone scalar is a one-element "raw scalar" array in jsonb */
		JsonbValue	va;

		va.type = jbvArray;
		va.val.array.rawScalar = true;
		va.val.array.nElems = 1;
		st->result = pushJsonbValue(&st->parse, WJB_BEGIN_ARRAY, &va);
		st->result = pushJsonbValue(&st->parse, WJB_ELEM, &v);
		st->result = pushJsonbValue(&st->parse, WJB_END_ARRAY, NULL);
	}
	else if (st->parse->contVal.type == jbvArray)
		st->result = pushJsonbValue(&st->parse, WJB_ELEM, &v);
	else
		st->result = pushJsonbValue(&st->parse, WJB_VALUE, &v);
	return HUBSYNC_JSON_SEM_DONE;
}

/*
 * hubsync_json_parse -- jsonb from text, or NULL when the text is not
 * valid JSON in the database encoding, or nests deeper than
 * HUBSYNC_JSON_MAX_DEPTH (checked first, cheaply, without recursion).  One
 * pass: PostgreSQL's JSON parser drives jsonb's own construction (what
 * jsonb_in does), and its syntax errors come back as codes, so malformed
 * input from the network never raises an error.  What could still raise
 * one while building (a number out of numeric's range, an escape the
 * encoding cannot hold) is caught and reported as malformed too: the work
 * is pure computation in palloc'd memory, nothing to undo.
 */
Jsonb *
hubsync_json_parse(const char *text, size_t len)
{
	MemoryContext cxt = CurrentMemoryContext;
	Jsonb	   *volatile result = NULL;

	if (text == NULL || len == 0 || len > MaxAllocSize - 1)
		return NULL;
	if (!pg_verifymbstr(text, (int) len, true))
		return NULL;
	if (memchr(text, '\0', len) != NULL)
		return NULL;
	if (!hubsync_json_depth_ok(text, len, HUBSYNC_JSON_MAX_DEPTH))
		return NULL;
	PG_TRY();
	{
		JsonLexContext *lex;
		JsonSemAction sem;
		JsonbBuildState st;

#if PG_VERSION_NUM >= 170000
		lex = makeJsonLexContextCstringLen(NULL, (char *) text, len, GetDatabaseEncoding(), true);
#else
		lex = makeJsonLexContextCstringLen((char *) text, (int) len, GetDatabaseEncoding(), true);
#endif
		memset(&st, 0, sizeof(st));
		memset(&sem, 0, sizeof(sem));
		sem.semstate = &st;
		sem.object_start = build_object_start;
		sem.object_end = build_object_end;
		sem.array_start = build_array_start;
		sem.array_end = build_array_end;
		sem.object_field_start = build_field;
		sem.scalar = build_scalar;
		if (pg_parse_json(lex, &sem) == JSON_SUCCESS && st.result != NULL)
			result = JsonbValueToJsonb(st.result);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		result = NULL;
	}
	PG_END_TRY();
	return result;
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
