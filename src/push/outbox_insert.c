/*-------------------------------------------------------------------------
 *
 * outbox_insert.c
 *	  Writing one outbox row from the capture trigger, directly into the
 *	  heap and its indexes.
 *
 * The capture trigger runs for every application write on a mirror table,
 * so its cost is the cost of hubsync.  Going through SPI would start and
 * stop an executor for every row; here the row is formed and inserted the
 * way PostgreSQL inserts catalog rows (heap_insert, then each index).  The
 * outbox's columns are checked once per relcache entry: when the table has
 * a NOT NULL column we do not fill, or an index with expressions or a
 * predicate, hubsync_outbox_insert_direct returns false and the caller uses
 * its SPI path instead.
 *
 * IDENTIFICATION
 *	  src/push/outbox_insert.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_index.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "push/outbox_insert.h"

/* outbox columns we fill, in the order of OutboxRow */
enum
{
	COL_ID,
	COL_OBJECT_TYPE,
	COL_HUBSYNC_ID,
	COL_HS_OBJECT_ID,
	COL_OP,
	COL_CHANGED,
	COL_ORIGIN,
	COL_PRIORITY,
	COL_STATE,
	COL_SOLO,
	COL_ATTEMPTS,
	COL_NEXT_ATTEMPT_AT,
	COL_CREATED_AT,
	NUM_COLS
};

static const char *const col_names[NUM_COLS] = {
	"id", "object_type", "hubsync_id", "hs_object_id", "op", "changed",
	"origin", "priority", "state", "solo", "attempts", "next_attempt_at",
	"created_at"
};

typedef struct OutboxLayout
{
	bool		valid;
	bool		direct_ok;
	Oid			relid;
	Oid			seqid;
	AttrNumber	attnum[NUM_COLS];
} OutboxLayout;

static OutboxLayout layout;
static bool callback_registered = false;

/* layout_invalidate -- forget the layout when the outbox changes */
static void
layout_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == layout.relid)
		layout.valid = false;
}

/*
 * load_layout -- find the outbox, its identity sequence and column
 * numbers, and decide whether the direct path fits it.
 */
static void
load_layout(void)
{
	Relation	rel;
	TupleDesc	desc;
	List	   *indexes;
	ListCell   *lc;
	int			i;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(layout_invalidate, (Datum) 0);
		callback_registered = true;
	}
	memset(&layout, 0, sizeof(layout));
	layout.relid = RangeVarGetRelid(makeRangeVar("hubsync", "outbox", -1),
									NoLock, false);
	rel = table_open(layout.relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	layout.direct_ok = true;
	for (i = 0; i < NUM_COLS; i++)
	{
		layout.attnum[i] = InvalidAttrNumber;
		for (int a = 0; a < desc->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, a);

			if (!att->attisdropped && strcmp(NameStr(att->attname), col_names[i]) == 0)
				layout.attnum[i] = att->attnum;
		}
		if (layout.attnum[i] == InvalidAttrNumber)
			layout.direct_ok = false;
	}
	/* every NOT NULL column must be one we fill */
	for (int a = 0; a < desc->natts && layout.direct_ok; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a);
		bool		ours = false;

		if (att->attisdropped || !att->attnotnull)
			continue;
		for (i = 0; i < NUM_COLS; i++)
			ours |= (layout.attnum[i] == att->attnum);
		layout.direct_ok = ours;
	}
	/* plain indexes only; no triggers or rules to honour */
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);

		if (!heap_attisnull(idx->rd_indextuple, Anum_pg_index_indexprs, NULL) ||
			!heap_attisnull(idx->rd_indextuple, Anum_pg_index_indpred, NULL) ||
			idx->rd_index->indisexclusion || !idx->rd_index->indimmediate)
			layout.direct_ok = false;
		index_close(idx, AccessShareLock);
	}
	if (rel->trigdesc != NULL || rel->rd_rules != NULL ||
		rel->rd_rel->relrowsecurity)
		layout.direct_ok = false;
	if (layout.direct_ok)
		layout.seqid = getIdentitySequence(layout.relid, layout.attnum[COL_ID], true);
	if (!OidIsValid(layout.seqid))
		layout.direct_ok = false;
	table_close(rel, AccessShareLock);
	layout.valid = true;
}

/* insert_index_entries -- add the new heap tuple to every index */
static void
insert_index_entries(Relation heap, HeapTuple tup)
{
	List	   *indexes = RelationGetIndexList(heap);
	TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(heap),
													&TTSOpsHeapTuple);
	ListCell   *lc;

	ExecStoreHeapTuple(tup, slot, false);
	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), RowExclusiveLock);
		IndexInfo  *info = BuildIndexInfo(idx);
		Datum		values[INDEX_MAX_KEYS];
		bool		isnull[INDEX_MAX_KEYS];

		FormIndexDatum(info, slot, NULL, values, isnull);
		index_insert(idx, values, isnull, &tup->t_self, heap,
					 idx->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
					 false, info);
		index_close(idx, RowExclusiveLock);
	}
	ExecDropSingleTupleTableSlot(slot);
	list_free(indexes);
}

/*
 * hubsync_outbox_insert_direct -- insert one pending outbox row.  Returns
 * false (having done nothing) when the outbox's shape needs the SPI path.
 */
bool
hubsync_outbox_insert_direct(const char *object_type, Datum hubsync_id,
							 bool hs_null, Datum hs_object_id, const char *op,
							 Datum changed, const char *origin, int16 priority)
{
	Relation	rel;
	TupleDesc	desc;
	Datum	   *values;
	bool	   *nulls;
	HeapTuple	tup;
	TimestampTz now = GetCurrentTransactionStartTimestamp();

	if (!layout.valid)
		load_layout();
	if (!layout.direct_ok)
		return false;

	rel = table_open(layout.relid, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	values = palloc0(sizeof(Datum) * desc->natts);
	nulls = palloc(sizeof(bool) * desc->natts);
	memset(nulls, true, sizeof(bool) * desc->natts);

#define SET(col, v) \
	do { values[layout.attnum[col] - 1] = (v); nulls[layout.attnum[col] - 1] = false; } while (0)
	SET(COL_ID, Int64GetDatum(nextval_internal(layout.seqid, false)));
	SET(COL_OBJECT_TYPE, CStringGetTextDatum(object_type));
	SET(COL_HUBSYNC_ID, hubsync_id);
	if (!hs_null)
		SET(COL_HS_OBJECT_ID, hs_object_id);
	SET(COL_OP, CStringGetTextDatum(op));
	SET(COL_CHANGED, changed);
	SET(COL_ORIGIN, CStringGetTextDatum(origin));
	SET(COL_PRIORITY, Int16GetDatum(priority));
	SET(COL_STATE, CStringGetTextDatum("pending"));
	SET(COL_SOLO, BoolGetDatum(false));
	SET(COL_ATTEMPTS, Int32GetDatum(0));
	SET(COL_NEXT_ATTEMPT_AT, TimestampTzGetDatum(now));
	SET(COL_CREATED_AT, TimestampTzGetDatum(now));
#undef SET

	tup = heap_form_tuple(desc, values, nulls);
	simple_heap_insert(rel, tup);
	insert_index_entries(rel, tup);
	heap_freetuple(tup);
	table_close(rel, NoLock);
	return true;
}
