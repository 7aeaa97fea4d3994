/*-------------------------------------------------------------------------
 *
 * enrich_trigger.c
 *	  The hubsync_enrich row trigger: queues an enrichment job when a
 *	  record starts matching an enabled rule, in the writer's transaction,
 *	  and asks for the enrich worker to be woken at commit.
 *
 * Only mirror tables with enabled rules carry the trigger (see
 * hubsync._enrich_sync_triggers), so tables without rules pay nothing.
 * Where it runs it must be cheap: the conditions are prepared once per
 * backend as "SELECT (<c1>)::boolean, (<c2>)::boolean ... FROM (SELECT
 * ($1).*) t" with the table's row type as parameter (plus one plan per
 * rule, used only when the combined one fails) and kept until the table
 * or the rules change (a relcache invalidation of the mirror table, sent
 * by hubsync._enrich_rules_changed).
 *
 * Conditions are the extension owner's code: they are prepared and run as
 * the owner of hubsync's tables, under SECURITY_RESTRICTED_OPERATION, with
 * search_path pinned to pg_catalog (owner_context.c), in a subtransaction, so a condition that fails at run time (a bad cast on
 * one row, say) logs a warning and never aborts the application's write.
 *
 * IDENTIFICATION
 *	  src/enrich/enrich_trigger.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "core/owner_context.h"
#include "core/rel_cache.h"
#include "core/at_commit.h"
#include "bgw/worker.h"

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
	HubsyncRelCacheEntry entry; /* first: relid and valid */
	char	   *object_type;
	AttrNumber	hubsync_id_att;
	int			nrules;
	EnrichRule *rules;
	SPIPlanPtr	all_plan;		/* every condition in one query */
	MemoryContext cxt;			/* holds the rules; freed on reload */
} EnrichTable;

static HubsyncRelCache enrich_cache = {"hubsync enrich rules", sizeof(EnrichTable)};
static SPIPlanPtr insert_plan = NULL;

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
	StringInfoData all;
	uint64		i;

	hubsync_require_mirror_table(rel, "hubsync._enrich_enqueue()");
	if (t->cxt)
	{
		for (i = 0; i < t->nrules; i++)
			if (t->rules[i].plan)
				SPI_freeplan(t->rules[i].plan);
		if (t->all_plan)
			SPI_freeplan(t->all_plan);
		MemoryContextDelete(t->cxt);
	}
	t->all_plan = NULL;
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
	initStringInfo(&all);
	appendStringInfoString(&all, "SELECT ");
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
		appendStringInfo(&all, "%s(%s)::boolean", t->nrules > 1 ? ", " : "", cond);
	}
	if (t->nrules > 1)
	{
		SPIPlanPtr	plan;

		appendStringInfoString(&all, " FROM (SELECT ($1).*) AS t");
		plan = SPI_prepare(all.data, 1, &rowtype);
		if (plan == NULL)
			elog(ERROR, "could not prepare the enrichment rules of \"%s\": %s",
				 t->object_type, SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		t->all_plan = plan;
	}
	t->entry.valid = true;
}

/* get_table -- the cached rules of a mirror table, loaded on first use */
static EnrichTable *
get_table(Relation rel)
{
	EnrichTable *t = hubsync_rel_cache_entry(&enrich_cache, rel);

	if (!t->entry.valid)
		load_rules(t, rel);
	return t;
}

/* a condition to evaluate, as hubsync_in_subtransaction passes it */
typedef struct EvalStep
{
	SPIPlanPtr	plan;
	Datum		row;
	int			n;
	bool	   *out;
	int32		rule_id;
} EvalStep;

/* evaluate_step -- run the condition plan (inside a subtransaction) */
static void
evaluate_step(void *arg)
{
	EvalStep   *step = (EvalStep *) arg;
	int			i;

	if (SPI_execute_plan(step->plan, &step->row, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "could not evaluate enrichment rule %d", step->rule_id);
	for (i = 0; i < step->n; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0],
									  SPI_tuptable->tupdesc, i + 1, &isnull);

		step->out[i] = !isnull && DatumGetBool(d);
	}
}

/*
 * evaluate -- run a condition plan on a row in a subtransaction, filling
 * out[0..n-1] (NULL counts as false).  Returns false, after a warning
 * naming rule_id (0: several rules), when it raised an error.
 */
static bool
evaluate(SPIPlanPtr plan, Datum row, int n, bool *out, int32 rule_id)
{
	EvalStep	step = {plan, row, n, out, rule_id};
	ErrorData  *edata = hubsync_in_subtransaction(evaluate_step, &step);

	if (edata == NULL)
		return true;
	if (rule_id != 0)
		ereport(WARNING,
				(errmsg("enrichment rule %d could not be evaluated: %s",
						rule_id, edata->message),
				 errhint("Fix the rule's condition in hubsync.enrichment_rules; the row was written, not enriched.")));
	FreeErrorData(edata);
	return false;
}

/*
 * match_rules -- which rules hold on a row: every condition in one query;
 * if that fails, each on its own, so one faulty rule (which warns) does
 * not keep the others from matching.
 */
static void
match_rules(EnrichTable *t, Datum row, bool *out)
{
	int			i;

	if (t->all_plan && evaluate(t->all_plan, row, t->nrules, out, 0))
		return;
	for (i = 0; i < t->nrules; i++)
		if (!evaluate(t->rules[i].plan, row, 1, &out[i], t->rules[i].id))
			out[i] = false;
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
	Datum		id;
	bool		id_null;
	bool		wake = false;
	HubsyncOwnerContext owner;
	int			i;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("hubsync._enrich_enqueue() must be an AFTER INSERT OR UPDATE ... FOR EACH ROW trigger")));

	rel = trigdata->tg_relation;
	/* pg_restore brings the jobs back with the rows */
	if (hubsync_restoring_a_dump(rel))
		return PointerGetDatum(NULL);
	tupdesc = RelationGetDescr(rel);
	newtup = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event) ?
		trigdata->tg_newtuple : trigdata->tg_trigtuple;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	hubsync_become_owner(&owner);

	t = get_table(rel);
	id = heap_getattr(newtup, t->hubsync_id_att, tupdesc, &id_null);
	if (t->nrules > 0 && !id_null)
	{
		bool	   *now_true = palloc(sizeof(bool) * t->nrules);
		bool	   *was_true = palloc0(sizeof(bool) * t->nrules);
		bool		any = false;

		match_rules(t, heap_copy_tuple_as_datum(newtup, tupdesc), now_true);
		for (i = 0; i < t->nrules; i++)
			any |= now_true[i];
		/* on UPDATE, a rule that held before is not a new trigger */
		if (any && TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
			match_rules(t, heap_copy_tuple_as_datum(trigdata->tg_trigtuple, tupdesc),
						was_true);
		for (i = 0; i < t->nrules; i++)
			if (now_true[i] && !was_true[i] &&
				queue_job(t, &t->rules[i], id) && t->rules[i].realtime)
				wake = true;
	}

	hubsync_end_owner(&owner);
	SPI_finish();
	if (wake)
		hubsync_wake_at_commit(HUBSYNC_WORKER_ENRICH);
	return PointerGetDatum(NULL);
}
