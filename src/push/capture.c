/*-------------------------------------------------------------------------
 *
 * capture.c
 *	  The row trigger on mirror tables that turns application writes into
 *	  outbox rows, in the application's own transaction.
 *
 * The trigger records which properties changed, not their values: the
 * push worker reads the row as it is when it sends, so several changes to
 * one record before it is sent coalesce naturally and the newest value is
 * the one that leaves.  An UPDATE that changes nothing enqueues nothing.
 *
 * Writes that hubsync itself makes while applying HubSpot's changes set
 * hubsync_applying_remote, a C variable no SQL can reach, and what they
 * write is not captured: that is how a change from HubSpot is never
 * pushed back.  What the application's triggers write meanwhile is
 * captured, with the origin "trigger" (core/remote_apply.c): writes to
 * other rows as usual, and what a BEFORE trigger changed in the row
 * hubsync writes by comparing the final row with what hubsync meant to
 * write (hubsync._intend(), below).  Only those columns are pushed.
 *
 * At commit the enqueuing backend wakes the push worker (core/at_commit.c,
 * then a latch), so changes leave within milliseconds, not at the next
 * poll.
 *
 * IDENTIFICATION
 *	  src/push/capture.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/sysattr.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "parser/parse_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/uuid.h"
#include "storage/proc.h"
#include "core/remote_apply.h"
#include "core/at_commit.h"
#include "core/rel_cache.h"
#include "push/outbox_insert.h"
#include "core/owner_context.h"
#include "push/settings.h"

PG_FUNCTION_INFO_V1(hubsync_capture);
PG_FUNCTION_INFO_V1(hubsync_invalidate_mirror);
PG_FUNCTION_INFO_V1(hubsync_wake_push);
PG_FUNCTION_INFO_V1(hubsync_intend);
PG_FUNCTION_INFO_V1(hubsync_intend_properties);

/* A typed property column of a mirror table */
typedef struct CaptureColumn
{
	AttrNumber	attnum;
	char	   *property;
	bool		hubspot_owned;
} CaptureColumn;

/* What the trigger needs to know about one mirror table, cached */
typedef struct CaptureInfo
{
	HubsyncRelCacheEntry entry; /* first: relid and valid */
	char	   *object_type;
	AttrNumber	hubsync_id_att;
	AttrNumber	hs_object_id_att;
	AttrNumber	properties_att;
	int			ncolumns;
	CaptureColumn *columns;
	List	   *hubspot_owned_json; /* owned properties kept in jsonb */
} CaptureInfo;

static HubsyncRelCache capture_cache = {"hubsync capture cache", sizeof(CaptureInfo)};
static SPIPlanPtr insert_plan = NULL;
static int	changes_this_xact = 0;
static LocalTransactionId counted_lxid = InvalidLocalTransactionId;
static int	captured_this_xact = 0;
static LocalTransactionId captured_lxid = InvalidLocalTransactionId;

/*
 * A transaction's first HUBSYNC_REALTIME_ROWS captured rows go in the
 * real-time lane (outbox.priority 1): claimed and sent before bulk work,
 * so a single-row commit reaches HubSpot within a second even while a
 * large backlog drains.  A bulk transaction's rows past that are bulk (0).
 */
#define HUBSYNC_REALTIME_ROWS 10

/*
 * load_capture_info -- read a mirror table's typed columns and the
 * properties HubSpot owns, from hubsync.property_map and
 * hubsync.field_owners.
 */
static void
load_capture_info(CaptureInfo *info, Relation rel)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	MemoryContext oldcxt;
	Datum		arg;
	int			i;
	List	   *owned = NIL;
	HubsyncOwnerContext owner;

	hubsync_require_mirror_table(rel, "hubsync._capture()");
	info->object_type = MemoryContextStrdup(CacheMemoryContext,
											RelationGetRelationName(rel));
	info->hubsync_id_att = SPI_fnumber(tupdesc, "hubsync_id");
	info->hs_object_id_att = SPI_fnumber(tupdesc, "hs_object_id");
	info->properties_att = SPI_fnumber(tupdesc, "properties");
	if (info->hubsync_id_att <= 0 || info->hs_object_id_att <= 0 ||
		info->properties_att <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is not a hubsync mirror table",
						RelationGetRelationName(rel)),
				 errhint("Mirror tables have hubsync_id, hs_object_id and properties columns.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	hubsync_become_owner(&owner);
	arg = CStringGetTextDatum(info->object_type);
	if (SPI_execute_with_args("SELECT 1 FROM hubsync.object_types t WHERE t.object_type = $1",
							  1, (Oid[]) {TEXTOID}, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read hubsync.object_types");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("hubsync._capture() may only run on hubsync's mirror tables"),
				 errdetail("hubspot.%s is not an object type in hubsync.object_types.",
						   info->object_type),
				 errhint("Track the object type with hubsync.track_object() first.")));
	if (SPI_execute_with_args(
							  "SELECT m.column_name::text, m.property, "
							  "       coalesce(o.owner, 'latest') = 'hubspot' "
							  "FROM hubsync.property_map m "
							  "LEFT JOIN hubsync.field_owners o "
							  "  ON o.object_type = m.object_type AND o.property = m.property "
							  "WHERE m.object_type = $1",
							  1, (Oid[]) {TEXTOID}, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read hubsync.property_map");

	oldcxt = MemoryContextSwitchTo(CacheMemoryContext);
	info->columns = palloc0(sizeof(CaptureColumn) * Max(SPI_processed, 1));
	info->ncolumns = 0;
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		char	   *colname = SPI_getvalue(tup, td, 1);
		AttrNumber	attnum = SPI_fnumber(tupdesc, colname);
		bool		isnull;

		if (attnum <= 0)
			continue;			/* mapped but not (yet) a column */
		info->columns[info->ncolumns].attnum = attnum;
		info->columns[info->ncolumns].property = SPI_getvalue(tup, td, 2);
		info->columns[info->ncolumns].hubspot_owned =
			DatumGetBool(SPI_getbinval(tup, td, 3, &isnull));
		info->ncolumns++;
	}
	MemoryContextSwitchTo(oldcxt);

	if (SPI_execute_with_args(
							  "SELECT o.property FROM hubsync.field_owners o "
							  "WHERE o.object_type = $1 AND o.owner = 'hubspot' "
							  "AND NOT EXISTS (SELECT 1 FROM hubsync.property_map m "
							  "  WHERE m.object_type = o.object_type AND m.property = o.property)",
							  1, (Oid[]) {TEXTOID}, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read hubsync.field_owners");
	oldcxt = MemoryContextSwitchTo(CacheMemoryContext);
	for (i = 0; i < SPI_processed; i++)
		owned = lappend(owned, SPI_getvalue(SPI_tuptable->vals[i],
											SPI_tuptable->tupdesc, 1));
	info->hubspot_owned_json = owned;
	MemoryContextSwitchTo(oldcxt);

	hubsync_end_owner(&owner);
	SPI_finish();
	info->entry.valid = true;
}

/* get_capture_info -- cached info for a mirror table, loaded on first use */
static CaptureInfo *
get_capture_info(Relation rel)
{
	CaptureInfo *info = hubsync_rel_cache_entry(&capture_cache, rel);

	if (!info->entry.valid)
		load_capture_info(info, rel);
	return info;
}

/*
 * refuse_hubspot_owned -- an application may not change a property that
 * HubSpot owns.
 */
static void
refuse_hubspot_owned(CaptureInfo *info, const char *property)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("property \"%s\" of hubspot.%s is owned by HubSpot",
					property, info->object_type),
			 errdetail("Changes to it must be made in HubSpot; they reach this table from there."),
			 errhint("To let PostgreSQL change it, run hubsync.set_owner('%s', '%s', 'latest').",
					 info->object_type, property)));
}

/* is_hubspot_owned_json -- whether HubSpot owns a jsonb-kept property */
static bool
is_hubspot_owned_json(CaptureInfo *info, const char *name)
{
	ListCell   *lc;

	foreach(lc, info->hubspot_owned_json)
		if (strcmp((char *) lfirst(lc), name) == 0)
			return true;
	return false;
}

/*
 * jsonb_key_changed -- whether key differs between two jsonb objects (one
 * of which may be NULL).
 */
static bool
jsonb_key_changed(Jsonb *a, Jsonb *b, JsonbValue *key)
{
	JsonbValue *va = a ? findJsonbValueFromContainer(&a->root, JB_FOBJECT, key) : NULL;
	JsonbValue *vb = b ? findJsonbValueFromContainer(&b->root, JB_FOBJECT, key) : NULL;

	if (va == NULL || vb == NULL)
		return va != vb;
	if (va->type != vb->type)
		return true;
	switch (va->type)
	{
		case jbvNull:
			return false;
		case jbvBool:
			return va->val.boolean != vb->val.boolean;
		case jbvString:
			return va->val.string.len != vb->val.string.len ||
				memcmp(va->val.string.val, vb->val.string.val,
					   va->val.string.len) != 0;
		case jbvNumeric:
			return !DatumGetBool(DirectFunctionCall2(numeric_eq,
													 NumericGetDatum(va->val.numeric),
													 NumericGetDatum(vb->val.numeric)));
		default:
			return true;		/* nested values: treat as changed */
	}
}

/*
 * collect_json_changes -- append to *changed the names of the keys of the
 * properties jsonb that an UPDATE changed (set, altered or removed).
 */
static void
collect_json_changes(CaptureInfo *info, Jsonb *oldj, Jsonb *newj,
					 List **changed)
{
	Jsonb	   *sides[2] = {newj, oldj};
	int			s;

	for (s = 0; s < 2; s++)
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;

		if (sides[s] == NULL || !JB_ROOT_IS_OBJECT(sides[s]))
			continue;
		it = JsonbIteratorInit(&sides[s]->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			char	   *name;

			if (tok != WJB_KEY)
				continue;
			/* keys present on both sides are checked from the new side */
			if (s == 1 && newj != NULL && JB_ROOT_IS_OBJECT(newj) &&
				findJsonbValueFromContainer(&newj->root, JB_FOBJECT, &v) != NULL)
				continue;
			if (!jsonb_key_changed(oldj, newj, &v))
				continue;
			name = pnstrdup(v.val.string.val, v.val.string.len);
			if (is_hubspot_owned_json(info, name))
				refuse_hubspot_owned(info, name);
			*changed = lappend(*changed, name);
		}
	}
}

/*
 * check_json_insert -- refuse an INSERT that sets a HubSpot-owned
 * property kept in the jsonb column.
 */
static void
check_json_insert(CaptureInfo *info, Jsonb *j)
{
	ListCell   *lc;

	if (j == NULL || !JB_ROOT_IS_OBJECT(j))
		return;
	foreach(lc, info->hubspot_owned_json)
	{
		char	   *name = (char *) lfirst(lc);
		JsonbValue	key;
		JsonbValue *v;

		key.type = jbvString;
		key.val.string.val = name;
		key.val.string.len = strlen(name);
		v = findJsonbValueFromContainer(&j->root, JB_FOBJECT, &key);
		if (v != NULL && v->type != jbvNull)
			refuse_hubspot_owned(info, name);
	}
}

/*
 * collect_changes -- the properties an UPDATE changed, or for an INSERT
 * check ownership only (a create sends every non-null property).
 */
static List *
collect_changes(CaptureInfo *info, TupleDesc tupdesc, HeapTuple oldtup,
				HeapTuple newtup)
{
	List	   *changed = NIL;
	int			i;
	bool		onull,
				nnull;
	Datum		od,
				nd;

	for (i = 0; i < info->ncolumns; i++)
	{
		CaptureColumn *col = &info->columns[i];
		Form_pg_attribute att = TupleDescAttr(tupdesc, col->attnum - 1);

		nd = heap_getattr(newtup, col->attnum, tupdesc, &nnull);
		if (oldtup == NULL)
		{
			if (!nnull && col->hubspot_owned)
				refuse_hubspot_owned(info, col->property);
			continue;
		}
		od = heap_getattr(oldtup, col->attnum, tupdesc, &onull);
		if (onull && nnull)
			continue;
		if (!onull && !nnull &&
			datumIsEqual(od, nd, att->attbyval, att->attlen))
			continue;
		if (col->hubspot_owned)
			refuse_hubspot_owned(info, col->property);
		changed = lappend(changed, col->property);
	}

	nd = heap_getattr(newtup, info->properties_att, tupdesc, &nnull);
	if (oldtup == NULL)
	{
		if (!nnull && info->hubspot_owned_json != NIL)
			check_json_insert(info, DatumGetJsonbP(nd));
		return changed;
	}
	od = heap_getattr(oldtup, info->properties_att, tupdesc, &onull);
	if (onull && nnull)
		return changed;
	if (!onull && !nnull && datumIsEqual(od, nd, false, -1))
		return changed;
	collect_json_changes(info,
						 onull ? NULL : DatumGetJsonbP(od),
						 nnull ? NULL : DatumGetJsonbP(nd),
						 &changed);
	return changed;
}

/*
 * count_change -- enforce hubsync.max_changes_per_xact, the guard against
 * an accidental mass update reaching HubSpot.  The count is the current
 * transaction's: it starts again with each local transaction id.
 */
static void
count_change(void)
{
	if (MyProc->lxid != counted_lxid)
	{
		counted_lxid = MyProc->lxid;
		changes_this_xact = 0;
	}
	changes_this_xact++;
	if (hubsync_max_changes_per_xact > 0 &&
		changes_this_xact > hubsync_max_changes_per_xact)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("transaction would send more than %d changes to HubSpot",
						hubsync_max_changes_per_xact),
				 errdetail("hubsync.max_changes_per_xact guards against accidental mass updates."),
				 errhint("For a deliberate bulk load, run SET LOCAL hubsync.max_changes_per_xact = 0 in the transaction first.")));
}

/*
 * capture_priority -- the outbox priority of the row being captured: 1 (real
 * time) for the current transaction's first HUBSYNC_REALTIME_ROWS rows
 */
static int16
capture_priority(void)
{
	if (MyProc->lxid != captured_lxid)
	{
		captured_lxid = MyProc->lxid;
		captured_this_xact = 0;
	}
	captured_this_xact++;
	return captured_this_xact <= HUBSYNC_REALTIME_ROWS ? 1 : 0;
}

/*
 * enqueue -- insert the outbox row: directly into the heap when the
 * outbox has the shape we know (see outbox_insert.c), otherwise through
 * SPI as the owner of the outbox (the application role need not be able
 * to write it directly).  A trigger's write while a worker applies
 * HubSpot's changes (origin "trigger") is not counted against
 * hubsync.max_changes_per_xact: the worker's batch is no application's
 * mass update, and failing it would lose HubSpot's changes too.
 */
static void
enqueue(CaptureInfo *info, Datum hubsync_id, bool id_null, Datum hs_object_id,
		bool hs_null, const char *op, List *changed, const char *origin)
{
	bool		counted = strcmp(origin, HUBSYNC_TRIGGER_ORIGIN) != 0 ||
		!hubsync_applying_remote;
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	Datum	   *elems;
	ListCell   *lc;
	int			n = 0;
	HubsyncOwnerContext owner;
	int16		priority = capture_priority();

	elems = palloc(sizeof(Datum) * Max(list_length(changed), 1));
	foreach(lc, changed)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));

	values[0] = CStringGetTextDatum(info->object_type);
	values[1] = hubsync_id;
	nulls[1] = id_null ? 'n' : ' ';
	values[2] = hs_object_id;
	nulls[2] = hs_null ? 'n' : ' ';
	values[3] = CStringGetTextDatum(op);
	values[4] = PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
												TYPALIGN_INT));
	values[5] = CStringGetTextDatum(origin);
	values[6] = Int16GetDatum(priority);

	if (!id_null &&
		hubsync_outbox_insert_direct(info->object_type, hubsync_id, hs_null,
									 hs_object_id, op, values[4], origin, priority))
	{
		if (counted)
			count_change();
		hubsync_wake_at_commit(HUBSYNC_WORKER_PUSH);
		return;
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	hubsync_become_owner(&owner);
	if (insert_plan == NULL)
	{
		SPIPlanPtr	plan;

		plan = SPI_prepare("INSERT INTO hubsync.outbox "
						   "(object_type, hubsync_id, hs_object_id, op, changed, origin, priority) "
						   "VALUES ($1, $2, $3, $4, $5, $6, $7)",
						   7, (Oid[]) {TEXTOID, UUIDOID, INT8OID, TEXTOID,
						   TEXTARRAYOID, TEXTOID, INT2OID});
		if (plan == NULL)
			elog(ERROR, "could not prepare the outbox insert: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		insert_plan = plan;
	}
	if (SPI_execute_plan(insert_plan, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write to hubsync.outbox");
	hubsync_end_owner(&owner);
	SPI_finish();

	if (counted)
		count_change();
	hubsync_wake_at_commit(HUBSYNC_WORKER_PUSH);
}

/*
 * column_differs -- whether attribute attnum of tuple a differs from that
 * of tuple b (NULLs equal; values compared by their stored image, which is
 * what hubsync wrote when nobody changed them).
 */
static bool
column_differs(TupleDesc tupdesc, AttrNumber attnum, HeapTuple a, HeapTuple b)
{
	Form_pg_attribute att = TupleDescAttr(tupdesc, attnum - 1);
	bool		anull,
				bnull;
	Datum		ad = heap_getattr(a, attnum, tupdesc, &anull);
	Datum		bd = heap_getattr(b, attnum, tupdesc, &bnull);

	if (anull || bnull)
		return anull != bnull;
	return !datum_image_eq(ad, bd, att->attbyval, att->attlen);
}

/*
 * collect_remote_changes -- for a row hubsync wrote while applying
 * HubSpot's changes, the properties whose final value differs from what
 * hubsync meant to write: what the application's BEFORE triggers changed.
 * With no registered intent (statements that set hs_object_id only), a
 * column outside the statement's SET list was meant to stay as it was;
 * one in it is taken as hubsync's.
 */
static List *
collect_remote_changes(CaptureInfo *info, TupleDesc tupdesc, HeapTuple oldtup,
					   HeapTuple newtup, HeapTuple intent,
					   const Bitmapset *updatedcols)
{
	List	   *changed = NIL;
	HeapTuple	base;
	bool		bnull,
				nnull;
	Datum		bd,
				nd;
	int			i;

	for (i = 0; i < info->ncolumns; i++)
	{
		CaptureColumn *col = &info->columns[i];

		if (intent != NULL)
			base = intent;
		else if (oldtup != NULL &&
				 !bms_is_member(col->attnum - FirstLowInvalidHeapAttributeNumber,
								updatedcols))
			base = oldtup;
		else
			continue;
		if (!column_differs(tupdesc, col->attnum, base, newtup))
			continue;
		if (col->hubspot_owned)
			refuse_hubspot_owned(info, col->property);
		changed = lappend(changed, col->property);
	}

	if (intent != NULL)
		base = intent;
	else if (oldtup != NULL &&
			 !bms_is_member(info->properties_att - FirstLowInvalidHeapAttributeNumber,
							updatedcols))
		base = oldtup;
	else
		return changed;
	if (!column_differs(tupdesc, info->properties_att, base, newtup))
		return changed;
	bd = heap_getattr(base, info->properties_att, tupdesc, &bnull);
	nd = heap_getattr(newtup, info->properties_att, tupdesc, &nnull);
	collect_json_changes(info,
						 bnull ? NULL : DatumGetJsonbP(bd),
						 nnull ? NULL : DatumGetJsonbP(nd),
						 &changed);
	return changed;
}

/*
 * capture_remote_write -- the capture of a row hubsync itself wrote while
 * applying HubSpot's changes (an INSERT or UPDATE): nothing of what
 * hubsync wrote is queued, only the properties the application's BEFORE
 * triggers changed on the way, as an update with the origin "trigger".
 * An INSERT whose statement registered no intent is hubsync's alone.
 */
static void
capture_remote_write(TriggerData *trigdata, Relation rel)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	CaptureInfo *info = get_capture_info(rel);
	bool		is_update = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event);
	HeapTuple	row = is_update ? trigdata->tg_newtuple : trigdata->tg_trigtuple;
	HeapTupleHeader intent_hdr;
	HeapTupleData intent;
	Datum		id,
				hsid;
	bool		id_null,
				hs_null;
	List	   *changed;

	id = heap_getattr(row, info->hubsync_id_att, tupdesc, &id_null);
	if (id_null)
		return;
	intent_hdr = hubsync_remote_intent_take(RelationGetRelid(rel), DatumGetUUIDP(id));
	if (intent_hdr == NULL && !is_update)
		return;
	if (intent_hdr != NULL)
	{
		intent.t_len = HeapTupleHeaderGetDatumLength(intent_hdr);
		ItemPointerSetInvalid(&intent.t_self);
		intent.t_tableOid = RelationGetRelid(rel);
		intent.t_data = intent_hdr;
	}
	changed = collect_remote_changes(info, tupdesc,
									 is_update ? trigdata->tg_trigtuple : NULL,
									 row, intent_hdr ? &intent : NULL,
									 trigdata->tg_updatedcols);
	if (changed == NIL)
		return;
	hsid = heap_getattr(row, info->hs_object_id_att, tupdesc, &hs_null);
	enqueue(info, id, id_null, hsid, hs_null, "update", changed,
			HUBSYNC_TRIGGER_ORIGIN);
}

/*
 * hubsync_capture -- AFTER INSERT/UPDATE/DELETE row trigger of the mirror
 * tables.
 */
Datum
hubsync_capture(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	tupdesc;
	CaptureInfo *info;
	HeapTuple	row;
	Datum		id,
				hsid;
	bool		id_null,
				hs_null;
	HubsyncWriteKind kind;
	const char *origin;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hubsync._capture() must be an AFTER ... FOR EACH ROW trigger")));

	rel = trigdata->tg_relation;
	/*
	 * hubsync's own write of HubSpot's change is not captured, only what a
	 * BEFORE trigger changed in it; a write that a trigger made meanwhile
	 * (to another row) is, as the trigger's.
	 */
	kind = hubsync_remote_write();
	if (kind == HUBSYNC_WRITE_REMOTE)
	{
		if (!TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
			capture_remote_write(trigdata, rel);
		return PointerGetDatum(NULL);
	}
	if (hubsync_restoring_a_dump(rel))
		return PointerGetDatum(NULL);
	origin = kind == HUBSYNC_WRITE_TRIGGER ? HUBSYNC_TRIGGER_ORIGIN : hubsync_origin;

	tupdesc = RelationGetDescr(rel);
	info = get_capture_info(rel);
	row = TRIGGER_FIRED_BY_DELETE(trigdata->tg_event) ?
		trigdata->tg_trigtuple :
		(TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		 trigdata->tg_newtuple : trigdata->tg_trigtuple);
	id = heap_getattr(row, info->hubsync_id_att, tupdesc, &id_null);
	hsid = heap_getattr(row, info->hs_object_id_att, tupdesc, &hs_null);

	if (TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
	{
		(void) collect_changes(info, tupdesc, NULL, row);
		/* a row that already has a HubSpot id mirrors an existing record */
		if (hs_null)
			enqueue(info, id, id_null, hsid, hs_null, "create", NIL, origin);
	}
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
	{
		List	   *changed = collect_changes(info, tupdesc,
											  trigdata->tg_trigtuple, row);

		if (changed != NIL)
			enqueue(info, id, id_null, hsid, hs_null, "update", changed, origin);
	}
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		enqueue(info, id, id_null, hsid, hs_null, "archive", NIL, origin);

	return PointerGetDatum(NULL);
}

/*
 * hubsync_invalidate_mirror -- make every backend reload what it cached
 * about a mirror table (after set_owner or map_property).
 */
Datum
hubsync_invalidate_mirror(PG_FUNCTION_ARGS)
{
	CacheInvalidateRelcacheByRelid(PG_GETARG_OID(0));
	PG_RETURN_VOID();
}

/*
 * hubsync_wake_push -- for SQL functions that queue changes themselves
 * (retry_dead_letters, resume): wake the push worker at commit.
 */
Datum
hubsync_wake_push(PG_FUNCTION_ARGS)
{
	hubsync_wake_at_commit(HUBSYNC_WORKER_PUSH);
	PG_RETURN_VOID();
}

/*
 * register_intent -- hubsync._intend(row): remember row, a whole row of a
 * mirror table as an apply statement of hubsync computed it, as what
 * hubsync means to write to the mirror row with its hubsync_id.  Called
 * from within that statement (its SET list or WHERE clause), so before
 * any BEFORE trigger runs.  Does nothing outside the workers' application
 * of HubSpot's changes.
 */
static HeapTupleHeader
register_intent(FunctionCallInfo fcinfo)
{
	HeapTupleHeader td = PG_GETARG_HEAPTUPLEHEADER(0);
	Oid			relid;
	Relation	rel;
	CaptureInfo *info;
	HeapTupleData tup;
	Datum		id;
	bool		isnull;

	if (!hubsync_applying_remote)
		return td;
	relid = typeidTypeRelid(HeapTupleHeaderGetTypeId(td));
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("hubsync._intend() takes a row of a mirror table")));
	rel = relation_open(relid, AccessShareLock);
	info = get_capture_info(rel);
	tup.t_len = HeapTupleHeaderGetDatumLength(td);
	ItemPointerSetInvalid(&tup.t_self);
	tup.t_tableOid = relid;
	tup.t_data = td;
	id = heap_getattr(&tup, info->hubsync_id_att, RelationGetDescr(rel), &isnull);
	if (!isnull)
		hubsync_remote_intend(relid, DatumGetUUIDP(id), td);
	relation_close(rel, AccessShareLock);
	return td;
}

/* hubsync_intend -- SQL hubsync._intend(row) RETURNS boolean (true) */
Datum
hubsync_intend(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(true);
	(void) register_intent(fcinfo);
	PG_RETURN_BOOL(true);
}

/*
 * hubsync_intend_properties -- SQL hubsync._intend_properties(row)
 * RETURNS jsonb: registers row as hubsync._intend() does and returns its
 * properties column, so that an UPDATE registers its intent in its SET
 * list ("properties = hubsync._intend_properties(<the new row>)").
 */
Datum
hubsync_intend_properties(PG_FUNCTION_ARGS)
{
	HeapTupleHeader td;
	bool		isnull;
	Datum		props;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	td = register_intent(fcinfo);
	props = GetAttributeByName(td, "properties", &isnull);
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(props);
}
