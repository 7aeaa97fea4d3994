/*-------------------------------------------------------------------------
 *
 * wire.c
 *	  Mirror rows as HubSpot wire strings, for the push path.
 *
 * HubSpot takes every property value as a string: numeric as its decimal
 * text ("1234.50"), timestamptz as ISO 8601 UTC with milliseconds
 * ("2025-06-30T12:00:00.000Z"), date as YYYY-MM-DD, boolean as
 * "true"/"false", text[] joined with ';', NULL as "".  These run once per
 * pushed record, so they are in C (a SQL version was re-planned on every
 * call) and read the typed columns from hubsync.property_map through a
 * cache that any relcache invalidation clears.
 *
 * IDENTIFICATION
 *	  src/hubspot/wire.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "util/json_util.h"

PG_FUNCTION_INFO_V1(hubsync_wire_row);
PG_FUNCTION_INFO_V1(hubsync_props_to_send);

typedef struct WireColumn
{
	char	   *column;
	char	   *property;
	char	   *sql_type;
} WireColumn;

typedef struct WireType
{
	char		object_type[NAMEDATALEN];	/* hash key */
	int			ncolumns;
	WireColumn *columns;
} WireType;

static HTAB *wire_types = NULL;
static MemoryContext wire_cxt = NULL;	/* the cache and its strings */
static bool wire_stale = false;

/*
 * wire_invalidate -- any relcache invalidation makes the cache stale.  It
 * is only marked here: invalidations arrive in the middle of wire_type's
 * own query, and freeing the table then would pull it from under it.
 */
static void
wire_invalidate(Datum arg, Oid relid)
{
	wire_stale = true;
}

/* wire_type -- the typed columns of an object type, cached */
static WireType *
wire_type(const char *object_type)
{
	static bool registered = false;
	WireType   *wt;
	bool		found;
	char		key[NAMEDATALEN];
	Datum		arg;
	uint64		i;

	if (!registered)
	{
		CacheRegisterRelcacheCallback(wire_invalidate, (Datum) 0);
		registered = true;
	}
	if (wire_stale && wire_cxt != NULL)
	{
		MemoryContextDelete(wire_cxt);
		wire_cxt = NULL;
		wire_types = NULL;
	}
	wire_stale = false;
	if (wire_types == NULL)
	{
		HASHCTL		ctl;

		wire_cxt = AllocSetContextCreate(CacheMemoryContext, "hubsync wire types",
										 ALLOCSET_SMALL_SIZES);
		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(WireType);
		ctl.hcxt = wire_cxt;
		wire_types = hash_create("hubsync wire types", 16, &ctl,
								 HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	memset(key, 0, sizeof(key));
	strlcpy(key, object_type, sizeof(key));
	wt = hash_search(wire_types, key, HASH_FIND, NULL);
	if (wt)
		return wt;

	SPI_connect();
	arg = CStringGetTextDatum(object_type);
	if (SPI_execute_with_args("SELECT column_name::text, property, sql_type "
							  "FROM hubsync.property_map WHERE object_type = $1",
							  1, (Oid[]) {TEXTOID}, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read hubsync.property_map");
	wt = hash_search(wire_types, key, HASH_ENTER, &found);
	wt->ncolumns = (int) SPI_processed;
	wt->columns = MemoryContextAllocZero(wire_cxt,
										 sizeof(WireColumn) * Max(SPI_processed, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;

		wt->columns[i].column = MemoryContextStrdup(wire_cxt, SPI_getvalue(tup, td, 1));
		wt->columns[i].property = MemoryContextStrdup(wire_cxt, SPI_getvalue(tup, td, 2));
		wt->columns[i].sql_type = MemoryContextStrdup(wire_cxt, SPI_getvalue(tup, td, 3));
	}
	SPI_finish();
	return wt;
}

/*
 * timestamptz_wire -- "YYYY-MM-DDTHH:MM:SS.mmmZ" from to_jsonb's text of
 * a timestamptz (which carries the session's offset).
 */
static char *
timestamptz_wire(const char *text)
{
	TimestampTz ts = DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in,
															 CStringGetDatum(text),
															 ObjectIdGetDatum(InvalidOid),
															 Int32GetDatum(-1)));
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts) || timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		return pstrdup(text);
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
					tm.tm_year, tm.tm_mon, tm.tm_mday, tm.tm_hour, tm.tm_min,
					tm.tm_sec, (int) (fsec / 1000));
}

/* value_wire -- the wire string of a JSON value of a given SQL type */
static char *
value_wire(JsonbValue *v, const char *sql_type)
{
	if (v == NULL || v->type == jbvNull)
		return pstrdup("");
	if (v->type == jbvBinary)
	{
		JsonbContainer *c = v->val.binary.data;

		if (sql_type && strcmp(sql_type, "text[]") == 0 && JsonContainerIsArray(c))
		{
			StringInfoData buf;
			int			n = hubsync_json_array_size(c);

			initStringInfo(&buf);
			for (int i = 0; i < n; i++)
			{
				char	   *e = hubsync_json_array_text(c, i);

				if (i > 0)
					appendStringInfoChar(&buf, ';');
				appendStringInfoString(&buf, e ? e : "");
			}
			return buf.data;
		}
		return JsonbToCString(NULL, c, -1);
	}
	if (v->type == jbvString && sql_type && strcmp(sql_type, "timestamptz") == 0)
		return timestamptz_wire(pnstrdup(v->val.string.val, v->val.string.len));
	return hubsync_json_value_text(v);
}

/* append_pair -- "key":"value" into a JSON object under construction */
static void
append_pair(StringInfo buf, bool *first, const char *key, const char *value)
{
	if (!*first)
		appendStringInfoChar(buf, ',');
	*first = false;
	escape_json(buf, key);
	appendStringInfoChar(buf, ':');
	escape_json(buf, value);
}

/*
 * hubsync_wire_row -- SQL hubsync._wire_row(object_type, to_jsonb(row)):
 * every property of a mirror row as wire strings.  Typed columns win over
 * a properties key of the same name.
 */
Datum
hubsync_wire_row(PG_FUNCTION_ARGS)
{
	char	   *object_type = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Jsonb	   *row = PG_GETARG_JSONB_P(1);
	WireType   *wt = wire_type(object_type);
	JsonbContainer *props = hubsync_json_get_container(&row->root, "properties");
	StringInfoData buf;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	if (props != NULL && JsonContainerIsObject(props))
	{
		JsonbIterator *it = JsonbIteratorInit(props);
		JsonbValue	k,
					v;
		JsonbIteratorToken tok;

		while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
		{
			if (tok != WJB_KEY)
				continue;
			tok = JsonbIteratorNext(&it, &v, true);
			append_pair(&buf, &first, pnstrdup(k.val.string.val, k.val.string.len),
						value_wire(&v, NULL));
		}
	}
	for (int i = 0; i < wt->ncolumns; i++)
		append_pair(&buf, &first, wt->columns[i].property,
					value_wire(hubsync_json_get(&row->root, wt->columns[i].column),
							   wt->columns[i].sql_type));
	appendStringInfoChar(&buf, '}');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/* text_array_contains -- whether a text[] holds s */
static bool
text_array_contains(Datum *elems, bool *nulls, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (!nulls[i] && strcmp(TextDatumGetCString(elems[i]), s) == 0)
			return true;
	return false;
}

/*
 * HubSpot maintains these itself and refuses writes to them
 * (READ_ONLY_VALUE).  A row read back from HubSpot carries them in its
 * properties column; a push never sends them.
 */
static const char *const hubspot_maintained[] = {
	"hs_object_id", "lastmodifieddate", "hs_lastmodifieddate", "hs_merged_object_ids",
	"hs_additional_emails", "hs_all_owner_ids", "hs_all_team_ids",
	"hs_all_accessible_team_ids", "hs_created_by_user_id", "hs_updated_by_user_id",
	"hs_object_source", "hs_object_source_id", "hs_object_source_label",
	"hs_object_source_user_id", "hs_object_source_detail_1",
	"hs_object_source_detail_2", "hs_object_source_detail_3"
};

/* is_hubspot_maintained -- a property HubSpot refuses writes to */
static bool
is_hubspot_maintained(const char *key)
{
	for (int i = 0; i < lengthof(hubspot_maintained); i++)
		if (strcmp(key, hubspot_maintained[i]) == 0)
			return true;
	return false;
}

/*
 * hubsync_props_to_send -- SQL hubsync._props_to_send(wire, changed,
 * remote, is_create): for a create every non-empty property, for an update
 * the changed ones (a removed key as ""), either way only values HubSpot
 * does not already have (compare-before-write), and never a property
 * HubSpot maintains itself.
 */
Datum
hubsync_props_to_send(PG_FUNCTION_ARGS)
{
	Jsonb	   *wire = PG_GETARG_JSONB_P(0);
	ArrayType  *changed = PG_GETARG_ARRAYTYPE_P(1);
	Jsonb	   *remote = PG_GETARG_JSONB_P(2);
	bool		is_create = PG_GETARG_BOOL(3);
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	StringInfoData buf;
	bool		first = true;
	JsonbIterator *it;
	JsonbValue	k,
				v;
	JsonbIteratorToken tok;

	deconstruct_array(changed, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');

	it = JsonbIteratorInit(&wire->root);
	while ((tok = JsonbIteratorNext(&it, &k, true)) != WJB_DONE)
	{
		char	   *key;
		char	   *value;
		char	   *known;

		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &v, true);
		key = pnstrdup(k.val.string.val, k.val.string.len);
		if (is_hubspot_maintained(key))
			continue;
		value = hubsync_json_value_text(&v);
		if (value == NULL)
			value = "";
		if (!(is_create ? (*value != '\0' || text_array_contains(elems, nulls, n, key))
			  : text_array_contains(elems, nulls, n, key)))
			continue;
		known = hubsync_json_get_text(&remote->root, key);
		if (known != NULL && strcmp(known, value) == 0)
			continue;
		append_pair(&buf, &first, key, value);
	}
	/* changed keys that are gone from the row: clear them in HubSpot */
	for (int i = 0; i < n; i++)
	{
		char	   *key;
		char	   *known;

		if (nulls[i])
			continue;
		key = TextDatumGetCString(elems[i]);
		if (hubsync_json_get(&wire->root, key) != NULL || is_hubspot_maintained(key))
			continue;
		known = hubsync_json_get_text(&remote->root, key);
		if (known != NULL && *known == '\0')
			continue;
		append_pair(&buf, &first, key, "");
	}
	appendStringInfoChar(&buf, '}');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
