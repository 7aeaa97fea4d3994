/*-------------------------------------------------------------------------
 *
 * reconcile.c
 *	  Reconciliation: every HubSpot record of a type, read through list
 *	  paging (live and archived), compared with the mirror.
 *
 * hubsync.reconcile() runs in the caller's session: pages are staged in
 * hubsync._reconcile_remote, then hubsync._reconcile_compare finds (and
 * with repair acts on) the drift, with the capture trigger off because
 * what it pulls came from HubSpot.  The daily run at hubsync.reconcile_at
 * is done by the pull worker a slice at a time between inbox rounds, each
 * page in a short transaction of its own, reporting only.  A run queued by
 * hubsync.reconcile_start() (for large types: the caller does not wait and
 * no transaction lasts the whole run) goes through the same slices, and
 * with repair its compare acts on exactly the drift rows it records.  All
 * keep their history in hubsync.reconcile_runs and hubsync.reconcile_drift.
 * Cost: one list request per 100 records (bulk class of the quota).
 *
 * IDENTIFICATION
 *	  src/pull/reconcile.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "core/remote_apply.h"
#include "hubspot/hubspot_api.h"
#include "hubspot/hubspot_read.h"
#include "util/json_util.h"
#include "util/text_array.h"
#include "bgw/worker.h"
#include "pull/settings.h"

#define RECONCILE_SLICE_PAGES 10
#define RECONCILE_CHECK_MS 30000
#define RECONCILE_QUEUE_CHECK_MS 1000
#define RECONCILE_DIRECT_MAX 10000	/* records: above, reconcile() suggests reconcile_start() */

PG_FUNCTION_INFO_V1(hubsync_reconcile);

/* spi_text -- column 1 of row 1 of a query as text (NULL if none) */
static char *
spi_text(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	if (SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0) < 0)
		elog(ERROR, "could not run \"%s\"", sql);
	if (SPI_tuptable == NULL || SPI_processed == 0)
		return NULL;
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/*
 * stage_type -- read every live and archived record of one type into the
 * run's staging table.  False (with a WARNING) when HubSpot refused.
 */
static bool
stage_type(int64 run, const char *object_type, const char *api_name, char **props, int nprops,
		   const char *token)
{
	int			pass;

	for (pass = 0; pass < 2; pass++)
	{
		bool		archived = (pass == 1);
		char	   *after = NULL;

		for (;;)
		{
			HubsyncHttpRequest *req;
			HubsyncPage pg;
			Oid			types[4] = {INT8OID, TEXTOID, TEXTOID, BOOLOID};
			Datum		values[4];

			req = hubsync_read_call("GET", hubsync_list_url(api_name, after, archived,
															props, archived ? 0 : nprops),
									NULL, HUBSYNC_QUOTA_BULK, token);
			if (!hubsync_read_page(req, &pg))
			{
				ereport(WARNING,
						(errmsg("hubsync could not list %s%s records in HubSpot: %s",
								archived ? "archived " : "", object_type, pg.error),
						 errhint("This object type is left out of the reconciliation.")));
				hubsync_http_release(req);
				return false;
			}
			values[0] = Int64GetDatum(run);
			values[1] = CStringGetTextDatum(object_type);
			values[2] = CStringGetTextDatum(pg.results);
			values[3] = BoolGetDatum(archived);
			(void) spi_text("SELECT hubsync._reconcile_stage($1, $2, $3::jsonb -> 'results', $4)",
							4, types, values, NULL);
			after = pg.next_after;
			hubsync_http_release(req);
			CHECK_FOR_INTERRUPTS();
			if (after == NULL)
				break;
		}
	}
	return true;
}

/*
 * compare_type -- compare one staged object type with the mirror (and
 * repair it), returning the drift rows; the mirror writes this makes are
 * hubsync's own application of HubSpot's records, not captured.
 */
static void
compare_type(ReturnSetInfo *rsinfo, int64 run, const char *name, bool repair)
{
	PG_TRY();
	{
		Oid			t3[3] = {INT8OID, TEXTOID, BOOLOID};
		Datum		v3[3];
		uint64		r;

		hubsync_remote_apply_begin();
		v3[0] = Int64GetDatum(run);
		v3[1] = CStringGetTextDatum(name);
		v3[2] = BoolGetDatum(repair);
		if (SPI_execute_with_args("SELECT object_type, hubsync_id, hs_object_id, kind, property, "
								  "       local_value, remote_value, action "
								  "FROM hubsync._reconcile_compare($1, $2, $3)",
								  3, t3, v3, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not compare %s with HubSpot", name);
		for (r = 0; r < SPI_processed; r++)
		{
			Datum		values[8];
			bool		nulls[8];
			int			c;

			for (c = 0; c < 8; c++)
				values[c] = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, c + 1, &nulls[c]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		hubsync_remote_apply_end();
	}
	PG_CATCH();
	{
		hubsync_remote_apply_end();
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * hubsync_reconcile -- SQL hubsync.reconcile(object_type, repair): one
 * row per drift.
 */
Datum
hubsync_reconcile(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *object_type = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		repair = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	char	   *token;
	int64		run;
	uint64		i,
				ntypes;
	char	  **names,
			  **apis;
	Datum	   *propsets;
	Oid			types2[2] = {TEXTOID, BOOLOID};
	Datum		values2[2];
	char		nulls2[3] = "  ";

	hubsync_require_shmem();
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();

	values2[0] = object_type ? CStringGetTextDatum(object_type) : (Datum) 0;
	if (!object_type)
		nulls2[0] = 'n';
	values2[1] = BoolGetDatum(repair);
	if (SPI_execute_with_args("SELECT object_type, api_name, hubsync._read_properties(object_type) "
							  "FROM hubsync.object_types WHERE $1 IS NULL OR object_type = $1 "
							  "ORDER BY object_type", 1, types2, values2, nulls2, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read hubsync.object_types");
	ntypes = SPI_processed;
	if (ntypes == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("object type \"%s\" is not tracked by hubsync", object_type),
				 errhint("See hubsync.object_types, or track it with hubsync.track_object().")));
	names = palloc(sizeof(char *) * ntypes);
	apis = palloc(sizeof(char *) * ntypes);
	propsets = palloc(sizeof(Datum) * ntypes);
	for (i = 0; i < ntypes; i++)
	{
		bool		isnull;

		names[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		apis[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		propsets[i] = SPI_datumTransfer(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3, &isnull),
										false, -1);
	}
	{
		/* a large set belongs in the background: say so (one transaction here) */
		char	   *est = spi_text("SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint "
								   "FROM hubsync.object_types t JOIN pg_catalog.pg_class c "
								   "  ON c.oid = pg_catalog.to_regclass(pg_catalog.format('hubspot.%I', t.object_type)) "
								   "WHERE $1 IS NULL OR t.object_type = $1",
								   1, types2, values2, nulls2);

		if (est != NULL && strtoll(est, NULL, 10) > RECONCILE_DIRECT_MAX)
			ereport(NOTICE,
					(errmsg("hubsync.reconcile() of about %s records runs in this session, in one transaction", est),
					 errhint("For large object types use hubsync.reconcile_start(), which runs in the pull worker in short transactions.")));
	}
	token = spi_text("SELECT coalesce(access_token, oauth_access_token) FROM hubsync._credentials",
					 0, NULL, NULL, NULL);
	if (token == NULL || *token == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("hubsync has no HubSpot credentials"),
				 errhint("Set them with hubsync.set_credentials(access_token => ...).")));
	token = MemoryContextStrdup(TopTransactionContext, token);
	{
		Oid			t3[3] = {TEXTOID, TEXTOID, BOOLOID};
		Datum		v3[3];
		char		n3[4] = "   ";

		v3[0] = CStringGetTextDatum("manual");
		v3[1] = values2[0];
		n3[1] = nulls2[0];
		v3[2] = BoolGetDatum(repair);
		run = strtoll(spi_text("SELECT hubsync._reconcile_begin($1, $2, $3)", 3, t3, v3, n3), NULL, 10);
	}
	for (i = 0; i < ntypes; i++)
	{
		char	  **props;
		int			nprops = hubsync_text_array(propsets[i], &props);

		if (!stage_type(run, names[i], apis[i], props, nprops, token))
		{
			if (object_type != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_CONNECTION_FAILURE),
						 errmsg("hubsync could not read %s records from HubSpot", names[i]),
						 errhint("See the warning above for HubSpot's answer.")));
			continue;
		}
		compare_type(rsinfo, run, names[i], repair);
	}
	{
		Oid			t1[1] = {INT8OID};
		Datum		v1[1];

		v1[0] = Int64GetDatum(run);
		(void) spi_text("SELECT hubsync._reconcile_end($1, NULL)", 1, t1, v1, NULL);
	}
	SPI_finish();
	return (Datum) 0;
}

/* ---- the daily and background runs, in the pull worker ---- */

static struct
{
	bool		active;
	bool		repair;			/* background run with repair */
	bool		one_type;		/* a run of one named type: a refusal fails it */
	int64		run;
	int			type;			/* index into names */
	int			ntypes;
	char	  **names;
	char	  **apis;
	char	 ***props;
	int		   *nprops;
	bool		archived;
	char	   *after;
	MemoryContext cxt;
	int64		next_check_ms;
	int64		next_queue_check_ms;
	char	   *error;			/* why the run failed (in cxt), NULL if it did not */
} daily;

/*
 * run_fail -- end the run as failed: a page that could not be kept would
 * otherwise be reported (and with repair, acted on) as drift
 */
static void
run_fail(const char *why)
{
	Oid			t2[2] = {INT8OID, TEXTOID};
	Datum		v2[2];

	v2[0] = Int64GetDatum(daily.run);
	v2[1] = CStringGetTextDatum(why);
	(void) hubsync_worker_sql("record a failed reconciliation",
							  "SELECT hubsync._reconcile_end($1, $2)", 2, t2, v2, NULL, NULL);
	daily.active = false;
}

/*
 * load_types -- the object types of a run (one, or all) into daily.*;
 * inside a transaction with SPI connected
 */
static void
load_types(const char *object_type)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	char		nulls[2] = " ";
	uint64		i;
	MemoryContext old;

	values[0] = object_type ? CStringGetTextDatum(object_type) : (Datum) 0;
	if (!object_type)
		nulls[0] = 'n';
	if (SPI_execute_with_args("SELECT object_type, api_name, hubsync._read_properties(object_type) "
							  "FROM hubsync.object_types WHERE $1 IS NULL OR object_type = $1 "
							  "ORDER BY object_type", 1, types, values, nulls, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read hubsync.object_types");
	old = MemoryContextSwitchTo(daily.cxt);
	daily.ntypes = (int) SPI_processed;
	daily.names = palloc(sizeof(char *) * Max(daily.ntypes, 1));
	daily.apis = palloc(sizeof(char *) * Max(daily.ntypes, 1));
	daily.props = palloc(sizeof(char **) * Max(daily.ntypes, 1));
	daily.nprops = palloc(sizeof(int) * Max(daily.ntypes, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		daily.names[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		daily.apis[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);
		daily.nprops[i] = hubsync_text_array(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 3, &isnull),
											 &daily.props[i]);
	}
	MemoryContextSwitchTo(old);
}

/* run_reset -- a run begins at its first type's first page */
static void
run_reset(void)
{
	daily.active = true;
	daily.error = NULL;
	daily.type = 0;
	daily.archived = false;
	daily.after = NULL;
}

/*
 * begin_run_xact -- a fresh memory context for the run about to start and
 * a transaction with SPI connected to start it in; false (nothing open)
 * when the worker cannot begin one now.
 */
static bool
begin_run_xact(const char *activity)
{
	if (daily.cxt == NULL)
		daily.cxt = AllocSetContextCreate(TopMemoryContext, "hubsync daily reconciliation",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(daily.cxt);
	if (!hubsync_worker_begin_xact(activity))
	{
		hubsync_worker_end_xact();
		return false;
	}
	SPI_connect();
	return true;
}

/*
 * background_start -- take the next run queued by hubsync.reconcile_start(),
 * if any; false if none
 */
static bool
background_start(void)
{
	bool		found = false;

	if (!begin_run_xact("starting a queued reconciliation"))
		return false;
	if (SPI_execute("SELECT id, object_type, repair FROM hubsync._reconcile_next()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the queued reconciliations");
	if (SPI_processed > 0)
	{
		char	   *type = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		char	   *repair = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);

		daily.run = strtoll(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), NULL, 10);
		daily.repair = (repair != NULL && strcmp(repair, "t") == 0);
		daily.one_type = (type != NULL);
		load_types(type);
		found = true;
	}
	SPI_finish();
	hubsync_worker_end_xact();
	if (found)
		run_reset();
	return found;
}

/*
 * daily_start -- begin today's run when it is due (the time has passed,
 * and either within the hour or after earlier daily runs: a fresh install
 * waits for the time itself); false if not
 */
static bool
daily_start(void)
{
	char	   *res = NULL;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	if (hubsync_reconcile_at == NULL || hubsync_reconcile_at[0] == '\0')
		return false;
	values[0] = CStringGetTextDatum(hubsync_reconcile_at);
	if (hubsync_worker_sql("check whether the daily reconciliation is due",
						   "SELECT (current_date + $1::time) <= now() AND NOT EXISTS ("
						   "  SELECT 1 FROM hubsync.reconcile_runs r WHERE r.trigger = 'daily' "
						   "  AND r.started_at >= current_date + $1::time) "
		/* a fresh install waits for the time itself; later, a missed day catches up */
						   "AND (now() < current_date + $1::time + interval '1 hour' OR EXISTS ("
						   "  SELECT 1 FROM hubsync.reconcile_runs r WHERE r.trigger = 'daily')) "
						   "AND NOT EXISTS (SELECT 1 FROM hubsync.backfills b WHERE b.state = 'running')",
						   1, types, values, NULL, &res) != NULL || res == NULL || strcmp(res, "t") != 0)
		return false;
	if (!begin_run_xact("starting the daily reconciliation"))
		return false;
	daily.run = strtoll(spi_text("SELECT hubsync._reconcile_begin('daily', NULL, false)", 0, NULL, NULL, NULL),
						NULL, 10);
	load_types(NULL);
	SPI_finish();
	hubsync_worker_end_xact();
	daily.repair = false;
	daily.one_type = false;
	run_reset();
	return true;
}

/* daily_sql -- one statement about the run: (run, type, text arg) */
static char *
daily_sql(const char *activity, const char *sql, const char *arg, bool flag)
{
	Oid			types[4] = {INT8OID, TEXTOID, TEXTOID, BOOLOID};
	Datum		values[4];

	values[0] = Int64GetDatum(daily.run);
	values[1] = CStringGetTextDatum(daily.names[daily.type]);
	values[2] = CStringGetTextDatum(arg ? arg : "");
	values[3] = BoolGetDatum(flag);
	return hubsync_worker_sql(activity, sql, 4, types, values, NULL, NULL);
}

/*
 * hubsync_reconcile_tick -- move the running reconciliation (a queued
 * background run first, else the daily one) on by a slice: at most
 * RECONCILE_SLICE_PAGES pages, each stored in a short transaction of its
 * own.  Returns true while it runs.
 */
bool
hubsync_reconcile_tick(void)
{
	int			page;

	/* a backfill reads everything anyway: the daily run waits for it */
	if (hubsync_backfill_running())
		return false;
	if (!daily.active)
	{
		int64		now = hubsync_now_ms();
		bool		started = false;

		if (pg_atomic_read_u32(&hubsync_shared->paused) != 0)
			return false;
		if (now >= daily.next_queue_check_ms)
		{
			daily.next_queue_check_ms = now + RECONCILE_QUEUE_CHECK_MS;
			started = background_start();
		}
		if (!started)
		{
			if (now < daily.next_check_ms)
				return false;
			daily.next_check_ms = now + RECONCILE_CHECK_MS;
			if (!daily_start())
				return false;
		}
	}
	hubsync_refresh_credentials();
	if (hubsync_auth_blocked())
		return false;
	for (page = 0; page < RECONCILE_SLICE_PAGES && daily.type < daily.ntypes; page++)
	{
		HubsyncHttpRequest *req;
		HubsyncPage pg;
		int			t = daily.type;
		char	   *err;

		req = hubsync_read_call("GET", hubsync_list_url(daily.apis[t], daily.after, daily.archived,
														daily.props[t], daily.archived ? 0 : daily.nprops[t]),
								NULL, HUBSYNC_QUOTA_BULK, hubsync_access_token());
		if (!hubsync_read_page(req, &pg))
		{
			ereport(LOG,
					(errmsg("hubsync reconciliation run %lld could not list %s records: %s",
							(long long) daily.run, daily.names[t], pg.error),
					 errhint("This object type is left out of the run.")));
			hubsync_http_release(req);
			if (daily.one_type)
			{
				/* nothing else to compare: the run failed */
				run_fail(psprintf("could not list %s records in HubSpot", daily.names[t]));
				return false;
			}
			daily.type++;
			daily.archived = false;
			daily.after = NULL;
			continue;
		}
		err = daily_sql("stage records for the reconciliation",
						"SELECT hubsync._reconcile_stage($1, $2, $3::jsonb -> 'results', $4)",
						pg.results, daily.archived);
		if (err != NULL)
		{
			hubsync_http_release(req);
			run_fail(psprintf("could not keep %s records read from HubSpot: %s", daily.names[t], err));
			return false;
		}
		daily.after = pg.next_after ? MemoryContextStrdup(daily.cxt, pg.next_after) : NULL;
		hubsync_http_release(req);
		if (daily.after == NULL)
		{
			if (!daily.archived)
				daily.archived = true;
			else
			{
				/* with repair, acts on exactly the drift rows it records */
				err = daily_sql("compare records for the reconciliation",
								"SELECT count(*) FROM hubsync._reconcile_compare($1, $2, $4)", NULL,
								daily.repair);
				if (err != NULL && daily.error == NULL)
					daily.error = MemoryContextStrdup(daily.cxt,
													  psprintf("could not compare %s records: %s",
															   daily.names[daily.type], err));
				daily.type++;
				daily.archived = false;
			}
		}
	}
	if (daily.type >= daily.ntypes)
	{
		Oid			t2[2] = {INT8OID, TEXTOID};
		Datum		v2[2];
		char		n2[3] = "  ";

		v2[0] = Int64GetDatum(daily.run);
		v2[1] = daily.error ? CStringGetTextDatum(daily.error) : (Datum) 0;
		if (daily.error == NULL)
			n2[1] = 'n';
		(void) hubsync_worker_sql("finish the reconciliation",
								  "SELECT hubsync._reconcile_end($1, $2)", 2, t2, v2, n2, NULL);
		daily.active = false;
	}
	return daily.active;
}
