/*-------------------------------------------------------------------------
 *
 * notify_out.c
 *	  NOTIFY hubsync_changes for every change HubSpot accepted: the row
 *	  trigger on hubsync.changes for direction 'out'.
 *
 * The push worker's bookkeeping writes one change feed row per pushed
 * record, so this trigger fires once per record at full push rate.  It is
 * in C because the PL/pgSQL version (a function call, a sub-select of the
 * property names, jsonb_build_object) cost the worker about 10 us per
 * record, a twentieth of its CPU.  The payload is the same jsonb text as
 * before and as the inbound changes' (sql/functions/inbound.sql): the
 * object type, hubsync_id, HubSpot id, op, direction and the names of the
 * properties sent (in byte order), or for an association its two ends and
 * type.  A payload too long for NOTIFY loses its property names and says
 * "truncated".
 *
 * IDENTIFICATION
 *	  src/push/notify_out.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "access/htup_details.h"
#include "commands/async.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/uuid.h"

#define NOTIFY_CHANNEL "hubsync_changes"
#define MAX_PAYLOAD 7900		/* NOTIFY refuses 8000 bytes or more */

PG_FUNCTION_INFO_V1(hubsync_notify_out_change);

/* The columns of hubsync.changes the payload is made of */
typedef struct OutChange
{
	char	   *object_type;
	char	   *op;
	Datum		hubsync_id;
	bool		hubsync_id_null;
	Datum		hs_object_id;
	bool		hs_object_id_null;
	Jsonb	   *properties;
} OutChange;

/* column -- the datum of a named column of the trigger's row */
static Datum
column(TriggerData *td, const char *name, bool *isnull)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	int			attnum = SPI_fnumber(desc, name);

	if (attnum <= 0)
		elog(ERROR, "hubsync.changes has no column \"%s\"", name);
	return heap_getattr(td->tg_trigtuple, attnum, desc, isnull);
}

/* push_key -- a key of the object being built */
static void
push_key(JsonbParseState **st, const char *key)
{
	JsonbValue	v;

	v.type = jbvString;
	v.val.string.val = (char *) key;
	v.val.string.len = strlen(key);
	pushJsonbValue(st, WJB_KEY, &v);
}

/* push_text -- a string value, or null */
static void
push_text(JsonbParseState **st, const char *key, const char *value)
{
	JsonbValue	v;

	push_key(st, key);
	if (value == NULL)
		v.type = jbvNull;
	else
	{
		v.type = jbvString;
		v.val.string.val = (char *) value;
		v.val.string.len = strlen(value);
	}
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* push_bool -- a boolean value */
static void
push_bool(JsonbParseState **st, const char *key, bool value)
{
	JsonbValue	v;

	push_key(st, key);
	v.type = jbvBool;
	v.val.boolean = value;
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* push_bigint -- a number value, or null */
static void
push_bigint(JsonbParseState **st, const char *key, Datum value, bool isnull)
{
	JsonbValue	v;

	push_key(st, key);
	if (isnull)
		v.type = jbvNull;
	else
	{
		v.type = jbvNumeric;
		v.val.numeric = DatumGetNumeric(DirectFunctionCall1(int8_numeric, value));
	}
	pushJsonbValue(st, WJB_VALUE, &v);
}

/* push_member -- the value of a top-level key of properties, or null */
static void
push_member(JsonbParseState **st, const char *key, Jsonb *properties)
{
	JsonbValue	null_value = {.type = jbvNull};
	JsonbValue *v = NULL;

	push_key(st, key);
	if (properties != NULL && JB_ROOT_IS_OBJECT(properties))
		v = getKeyJsonValueFromContainer(&properties->root, key, strlen(key), NULL);
	pushJsonbValue(st, WJB_VALUE, v != NULL ? v : &null_value);
}

/* compare_names -- qsort order of property names: byte order */
static int
compare_names(const void *a, const void *b)
{
	const JsonbValue *x = (const JsonbValue *) a;
	const JsonbValue *y = (const JsonbValue *) b;
	int			cmp = memcmp(x->val.string.val, y->val.string.val,
							 Min(x->val.string.len, y->val.string.len));

	return cmp != 0 ? cmp : x->val.string.len - y->val.string.len;
}

/* push_names -- "changed": the property names sent, in byte order */
static void
push_names(JsonbParseState **st, Jsonb *properties)
{
	JsonbValue *names = NULL;
	int			n = 0;

	push_key(st, "changed");
	pushJsonbValue(st, WJB_BEGIN_ARRAY, NULL);
	if (properties != NULL && JB_ROOT_IS_OBJECT(properties) && JB_ROOT_COUNT(properties) > 0)
	{
		JsonbIterator *it = JsonbIteratorInit(&properties->root);
		JsonbValue	v;
		JsonbIteratorToken tok;

		names = palloc(sizeof(JsonbValue) * JB_ROOT_COUNT(properties));
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
			if (tok == WJB_KEY)
				names[n++] = v;
		qsort(names, n, sizeof(JsonbValue), compare_names);
	}
	for (int i = 0; i < n; i++)
		pushJsonbValue(st, WJB_ELEM, &names[i]);
	pushJsonbValue(st, WJB_END_ARRAY, NULL);
}

/* payload -- the jsonb text announcing one 'out' change */
static char *
payload(OutChange *c, bool truncated)
{
	JsonbParseState *st = NULL;
	JsonbValue *res;
	Jsonb	   *jb;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	push_text(&st, "object_type", c->object_type);
	push_text(&st, "op", c->op);
	push_text(&st, "direction", "out");
	if (strcmp(c->object_type, "associations") == 0)
	{
		push_member(&st, "from_type", c->properties);
		push_member(&st, "from_id", c->properties);
		push_member(&st, "to_type", c->properties);
		push_member(&st, "to_id", c->properties);
		push_member(&st, "type_id", c->properties);
	}
	else
	{
		push_text(&st, "hubsync_id", c->hubsync_id_null ? NULL :
				  DatumGetCString(DirectFunctionCall1(uuid_out, c->hubsync_id)));
		push_bigint(&st, "hs_object_id", c->hs_object_id, c->hs_object_id_null);
		if (truncated)
		{
			push_text(&st, "changed", NULL);
			push_bool(&st, "truncated", true);
		}
		else
			push_names(&st, c->properties);
	}
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	jb = JsonbValueToJsonb(res);
	return JsonbToCString(NULL, &jb->root, VARSIZE(jb));
}

/*
 * hubsync_notify_out_change -- AFTER INSERT row trigger on hubsync.changes
 * (its WHEN clause keeps inbound rows out): NOTIFY hubsync_changes with
 * the change, sent at commit like any NOTIFY.
 */
Datum
hubsync_notify_out_change(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	OutChange	c;
	bool		isnull;
	Datum		d;
	char	   *message;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BY_INSERT(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hubsync._notify_out_change() must be an AFTER INSERT row trigger")));

	d = column(td, "object_type", &isnull);
	c.object_type = isnull ? "" : TextDatumGetCString(d);
	d = column(td, "op", &isnull);
	c.op = isnull ? "" : TextDatumGetCString(d);
	c.hubsync_id = column(td, "hubsync_id", &c.hubsync_id_null);
	c.hs_object_id = column(td, "hs_object_id", &c.hs_object_id_null);
	d = column(td, "properties", &isnull);
	c.properties = isnull ? NULL : DatumGetJsonbP(d);

	message = payload(&c, false);
	if (strlen(message) > MAX_PAYLOAD)
		message = payload(&c, true);
	Async_Notify(NOTIFY_CHANNEL, message);
	return PointerGetDatum(NULL);
}
