/*-------------------------------------------------------------------------
 *
 * enrich_trigger.c
 *	  The hubsync_enrich row trigger: queues an enrichment job when a
 *	  record starts matching an enabled rule, in the writer's transaction,
 *	  and asks for the enrich worker to be woken at commit.
 *
 * Only mirror tables with enabled rules carry the trigger (see
 * hubsync._enrich_sync_triggers), so tables without rules pay nothing.
 * Where it runs it must be cheap: each rule's condition is prepared once
 * per backend as "SELECT (<condition>)::boolean FROM (SELECT ($1).*) t"
 * with the table's row type as parameter and kept until the table or the
 * rules change (a relcache invalidation of the mirror table, sent by
 * hubsync._enrich_rules_changed).
 *
 * Conditions are the extension owner's code: they are prepared and run as
 * the owner of hubsync's tables, under SECURITY_RESTRICTED_OPERATION, each
 * in a subtransaction, so a condition that fails at run time (a bad cast
 * on one row, say) logs a warning and never aborts the application's
 * write.
 *
 * IDENTIFICATION
 *	  src/enrich_trigger.c
 *
 *-------------------------------------------------------------------------
 */
#include "hubsync.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(hubsync_enrich_enqueue);

/* One enabled rule of a mirror table, its condition prepared */
typedef struct EnrichRule
{
	int32		id;
	bool		realtime;
	char	   *provider;
	SPIPlanPtr	plan;
} EnrichRule;

/* The rules of one mirror table, cached per backend */
typedef struct EnrichTable
{
	Oid			relid;			/* hash key */
	bool		valid;
	char	   *object_type;
	AttrNumber	hubsync_id_att;
	int			nrules;
	EnrichRule *rules;
	MemoryContext cxt;			/* holds the rules; freed on reload */
} EnrichTable;

static HTAB *enrich_cache = NULL;
static SPIPlanPtr insert_plan = NULL;
static Oid	tables_owner = InvalidOid;

/* enrich_relcache_callback -- forget a table's rules when it changes */
static void
enrich_relcache_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	EnrichTable *t;

	if (enrich_cache == NULL)
		return;
	hash_seq_init(&status, enrich_cache);
	while ((t = hash_seq_search(&status)) != NULL)
		if (relid == InvalidOid || t->relid == relid)
			t->valid = false;
}

/*
 * become_tables_owner -- act as the owner of hubsync's tables (the
 * extension owner, who wrote the rules), keeping the caller's session
 * state out.
 */
static void
become_tables_owner(Oid *save_userid, int *save_sec)
{
	if (!OidIsValid(tables_owner))
	{
		Oid			jobs = RangeVarGetRelid(makeRangeVar("hubsync", "enrichment_jobs", -1),
											NoLock, false);
		HeapTuple	tp = SearchSysCache1(RELOID, ObjectIdGetDatum(jobs));

		if (!HeapTupleIsValid(tp))
			elog(ERROR, "cache lookup failed for relation %u", jobs);
		tables_owner = ((Form_pg_class) GETSTRUCT(tp))->relowner;
		ReleaseSysCache(tp);
	}
	GetUserIdAndSecContext(save_userid, save_sec);
	SetUserIdAndSecContext(tables_owner,
						   *save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

/*
 * load_rules -- read a table's enabled rules and prepare their conditions
 * (SPI connected, running as the tables' owner).
 */
static void
load_rules(EnrichTable *t, Relation rel)
{
	Datum		arg;
	Oid			rowtype = rel->rd_rel->reltype;
	MemoryContext old;
	uint64		i;

	if (t->cxt)
	{
		for (i = 0; i < t->nrules; i++)
			if (t->rules[i].plan)
				SPI_freeplan(t->rules[i].plan);
		MemoryContextDelete(t->cxt);
	}
	t->cxt = AllocSetContextCreate(CacheMemoryContext, "hubsync enrich rules",
								   ALLOCSET_SMALL_SIZES);
	t->nrules = 0;
	t->rules = NULL;
	t->object_type = MemoryContextStrdup(t->cxt, RelationGetRelationName(rel));
	t->hubsync_id_att = SPI_fnumber(RelationGetDescr(rel), "hubsync_id");
	if (t->hubsync_id_att <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" is not a hubsync mirror table",
						RelationGetRelationName(rel))));

	arg = CStringGetTextDatum(t->object_type);
	if (SPI_execute_with_args("SELECT r.id, r.condition, r.lane = 'realtime', r.provider "
							  "FROM hubsync.enrichment_rules r "
							  "WHERE r.object_type = $1 AND r.enabled ORDER BY r.id",
							  1, (Oid[]) {TEXTOID}, &arg, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read hubsync.enrichment_rules");

	old = MemoryContextSwitchTo(t->cxt);
	t->rules = palloc0(sizeof(EnrichRule) * Max(SPI_processed, 1));
	MemoryContextSwitchTo(old);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		EnrichRule *r = &t->rules[t->nrules];
		char	   *cond = SPI_getvalue(tup, td, 2);
		SPIPlanPtr	plan;

		r->id = DatumGetInt32(SPI_getbinval(tup, td, 1, &isnull));
		r->realtime = DatumGetBool(SPI_getbinval(tup, td, 3, &isnull));
		r->provider = MemoryContextStrdup(t->cxt, SPI_getvalue(tup, td, 4));
		/* checked when the rule was stored: one expression, no subquery */
		plan = SPI_prepare(psprintf("SELECT (%s)::boolean FROM (SELECT ($1).*) AS t", cond),
						   1, &rowtype);
		if (plan == NULL)
			elog(ERROR, "could not prepare enrichment rule %d: %s", r->id,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		r->plan = plan;
		t->nrules++;
	}
	t->valid = true;
}

/* get_table -- the cached rules of a mirror table, loaded on first use */
static EnrichTable *
get_table(Relation rel)
{
	EnrichTable *t;
	bool		found;
	Oid			relid = RelationGetRelid(rel);

	if (enrich_cache == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(EnrichTable);
		ctl.hcxt = CacheMemoryContext;
		enrich_cache = hash_create("hubsync enrich rules", 16, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(enrich_relcache_callback, (Datum) 0);
	}
	t = hash_search(enrich_cache, &relid, HASH_ENTER, &found);
	if (!found)
	{
		t->valid = false;
		t->cxt = NULL;
		t->nrules = 0;
		t->rules = NULL;
	}
	if (!t->valid)
		load_rules(t, rel);
	return t;
}

/*
 * rule_matches -- evaluate a rule's condition on a row, in a
 * subtransaction: an error becomes a warning and "no match".
 */
static bool
rule_matches(EnrichRule *r, Datum row)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool result = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		bool		isnull = true;

		if (SPI_execute_plan(r->plan, &row, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not evaluate enrichment rule %d", r->id);
		if (SPI_processed == 1)
		{
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
										  SPI_tuptable->tupdesc, 1, &isnull);

			result = !isnull && DatumGetBool(d);
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		ereport(WARNING,
				(errmsg("enrichment rule %d could not be evaluated: %s",
						r->id, edata->message),
				 errhint("Fix the rule's condition in hubsync.enrichment_rules; the row was written, not enriched.")));
		FreeErrorData(edata);
		result = false;
	}
	PG_END_TRY();
	return result;
}

/* queue_job -- insert the job; true when it is new */
static bool
queue_job(EnrichTable *t, EnrichRule *r, Datum hubsync_id)
{
	Datum		values[5];

	values[0] = Int32GetDatum(r->id);
	values[1] = CStringGetTextDatum(t->object_type);
	values[2] = hubsync_id;
	values[3] = CStringGetTextDatum(r->realtime ? "realtime" : "batch");
	values[4] = CStringGetTextDatum(r->provider);
	if (insert_plan == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare("INSERT INTO hubsync.enrichment_jobs "
									   "(rule_id, object_type, hubsync_id, lane, provider) "
									   "VALUES ($1, $2, $3, $4, $5) "
									   "ON CONFLICT (rule_id, hubsync_id) DO NOTHING",
									   5, (Oid[]) {INT4OID, TEXTOID, UUIDOID, TEXTOID, TEXTOID});

		if (plan == NULL)
			elog(ERROR, "could not prepare the enrichment job insert: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		insert_plan = plan;
	}
	if (SPI_execute_plan(insert_plan, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not write to hubsync.enrichment_jobs");
	return SPI_processed > 0;
}

/*
 * hubsync_enrich_enqueue -- AFTER INSERT OR UPDATE row trigger of mirror
 * tables with enrichment rules: a job for every rule whose condition holds
 * on the new row and (for an UPDATE) did not on the old one.
 */
Datum
hubsync_enrich_enqueue(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	tupdesc;
	EnrichTable *t;
	HeapTuple	newtup;
	Datum		newrow;
	Datum		oldrow = (Datum) 0;
	Datum		id;
	bool		id_null;
	bool		wake = false;
	Oid			save_userid;
	int			save_sec;
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hubsync._enrich_enqueue() must be an AFTER INSERT OR UPDATE ... FOR EACH ROW trigger")));

	/* pg_restore brings the jobs back with the rows */
	if (application_name != NULL && strcmp(application_name, "pg_restore") == 0)
		return PointerGetDatum(NULL);

	rel = trigdata->tg_relation;
	tupdesc = RelationGetDescr(rel);
	newtup = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	become_tables_owner(&save_userid, &save_sec);

	t = get_table(rel);
	id = heap_getattr(newtup, t->hubsync_id_att, tupdesc, &id_null);
	if (t->nrules > 0 && !id_null)
	{
		newrow = heap_copy_tuple_as_datum(newtup, tupdesc);
		if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
			oldrow = heap_copy_tuple_as_datum(trigdata->tg_trigtuple, tupdesc);
		for (i = 0; i < t->nrules; i++)
		{
			EnrichRule *r = &t->rules[i];

			if (!rule_matches(r, newrow))
				continue;
			if (oldrow != (Datum) 0 && rule_matches(r, oldrow))
				continue;		/* it held before: not a new trigger */
			if (queue_job(t, r, id) && r->realtime)
				wake = true;
		}
	}

	SetUserIdAndSecContext(save_userid, save_sec);
	SPI_finish();
	if (wake)
		hubsync_enrich_wake_at_commit();
	return PointerGetDatum(NULL);
}
