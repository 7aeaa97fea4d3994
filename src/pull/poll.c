/*-------------------------------------------------------------------------
 *
 * poll.c
 *	  The polling safety net of the "hubsync pull" worker: finds HubSpot
 *	  changes that no webhook brought, per object type.
 *
 *	 fast poll      every hubsync.poll_interval (five times that while the
 *					webhook receiver runs: then it is only a safety net): search on the last-modified
 *					property from the saved cursor minus an overlap, oldest
 *					first, 200 per page.  Every page starts at offset 0 with
 *					its lower bound moved up to the newest time read so far
 *					(the window is split by time at every page), so no query
 *					ever pages towards the 10,000-result cap; when a whole
 *					page shares one timestamp the records of that timestamp
 *					are walked by hs_object_id, then the walk moves past it.
 *	 trailing sweep every hubsync.poll_trailing_interval: the same walk over
 *					records the fast poll passed once they are older than
 *					hubsync.poll_index_lag, for changes that entered the
 *					search index late.
 *	 archived sweep every hubsync.poll_archived_interval: list paging with
 *					archived=true; mirrored records found there are deleted.
 *	 association sweep every hubsync.poll_association_interval: v4 batch
 *					reads of the associations of mirrored records.
 *
 * Whatever is found goes to hubsync._ingest_records / _ingest_archived /
 * _ingest_associations, which queue ordinary inbox events: the same rules
 * as webhooks apply (newest wins per property, ownership, echoes), and
 * dedupe keys make a record read twice queue nothing twice.  Cursors are
 * saved with each page, in the transaction that stored what it found.
 * Each tick does a bounded slice of work so webhook events keep flowing.
 *
 * IDENTIFICATION
 *	  src/pull/poll.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "catalog/objectaddress.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "hubspot/api_paths.h"
#include "hubspot/hubspot_api.h"
#include "hubspot/hubspot_read.h"
#include "util/json_util.h"
#include "util/text_array.h"
#include "bgw/worker.h"
#include "pull/settings.h"

#define POLL_PAGE 200			/* search maximum */
#define POLL_OVERLAP_MS 10000	/* the fast poll starts this far (at most one
								 * poll interval) before its cursor */
#define POLL_SLICE_PAGES 10		/* search pages per tick */
#define SWEEP_SLICE_PAGES 10	/* list / association pages per tick */
#define POLL_CHECK_MS 1000
#define POLL_WEBHOOKS_FACTOR 5	/* fast poll slowdown while the receiver or the journal runs */

/* One object type as the poller sees it (read afresh every round) */
typedef struct PollType
{
	char	   *object_type;
	char	   *api_name;
	char	   *lastmod;
	char	  **props;
	int			nprops;
	bool		has_cursor;
	int64		cursor_ms;
	int64		cursor_id;		/* -1: not walking ties */
	bool		catching_up;
	int64		trail_ms;
	int64		trail_id;
	int64		polled_ago_ms;	/* -1: never */
	int64		trailed_ago_ms;
	int64		archived_ago_ms;
	int64		assoc_ago_ms;
	bool		backfilling;	/* a backfill of this type runs: no sweeps */
} PollType;

/* An archived or association sweep in progress (in memory only) */
typedef struct Sweep
{
	char		object_type[NAMEDATALEN];
	bool		active;
	char	   *after;			/* archived: list cursor (TopMemoryContext) */
	int			pair;			/* associations: index among this type's pairs */
	int64		last_id;
} Sweep;

static Sweep archived_sweep;
static Sweep assoc_sweep;
static int64 next_check_ms = 0;
static char resume_after[NAMEDATALEN];	/* last type that worked a tick */

/* int8_or -- an int8 column, or dflt when NULL */
static int64
int8_or(HeapTuple tup, TupleDesc desc, int col, int64 dflt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? dflt : DatumGetInt64(d);
}

/*
 * load_types -- the object types to poll (not paused) with their poller
 * state, in the caller's context.
 */
static List *
load_types(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *types = NIL;
	uint64		i;

	if (!hubsync_worker_begin_xact("reading the hubsync poller state"))
	{
		hubsync_worker_end_xact();
		return NIL;
	}
	SPI_connect();
	if (SPI_execute("SELECT t.object_type, t.api_name, t.last_modified_property, "
					"       hubsync._read_properties(t.object_type), "
					"       p.cursor_ms, p.cursor_id, coalesce(p.catching_up, false), p.trail_ms, p.trail_id, "
					"       (extract(epoch FROM now() - p.polled_at) * 1000)::int8, "
					"       (extract(epoch FROM now() - p.trailed_at) * 1000)::int8, "
					"       (extract(epoch FROM now() - p.archived_at) * 1000)::int8, "
					"       (extract(epoch FROM now() - p.associations_at) * 1000)::int8, "
					"       EXISTS (SELECT 1 FROM hubsync.backfills b WHERE b.object_type = t.object_type AND b.state = 'running') "
					"FROM hubsync.object_types t "
					"LEFT JOIN hubsync.poll_state p ON p.object_type = t.object_type "
					"WHERE NOT t.paused ORDER BY t.object_type", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the hubsync poller state");
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		PollType   *t = palloc0(sizeof(PollType));
		bool		isnull;

		t->object_type = SPI_getvalue(tup, desc, 1);
		t->api_name = SPI_getvalue(tup, desc, 2);
		t->lastmod = SPI_getvalue(tup, desc, 3);
		t->nprops = hubsync_text_array(SPI_getbinval(tup, desc, 4, &isnull), &t->props);
		(void) SPI_getbinval(tup, desc, 5, &isnull);
		t->has_cursor = !isnull;
		t->cursor_ms = int8_or(tup, desc, 5, 0);
		t->cursor_id = int8_or(tup, desc, 6, -1);
		t->catching_up = DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull));
		t->trail_ms = int8_or(tup, desc, 8, t->cursor_ms);
		t->trail_id = int8_or(tup, desc, 9, -1);
		t->polled_ago_ms = int8_or(tup, desc, 10, -1);
		t->trailed_ago_ms = int8_or(tup, desc, 11, -1);
		t->archived_ago_ms = int8_or(tup, desc, 12, -1);
		t->assoc_ago_ms = int8_or(tup, desc, 13, -1);
		t->backfilling = DatumGetBool(SPI_getbinval(tup, desc, 14, &isnull));
		types = lappend(types, t);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	hubsync_worker_end_xact();
	return types;
}

/* save -- store a search page's records and the cursor, one transaction */
static char *
save(PollType *t, bool trailing, const char *response, int64 ms, int64 walk_id,
	 bool catching_up, bool finished, int found, const char *error)
{
	Oid			types[8] = {TEXTOID, TEXTOID, BOOLOID, INT8OID, INT8OID, BOOLOID, BOOLOID, TEXTOID};
	Datum		values[8];
	char		nulls[8] = "        ";

	values[0] = CStringGetTextDatum(t->object_type);
	values[1] = response ? CStringGetTextDatum(response) : (Datum) 0;
	if (!response)
		nulls[1] = 'n';
	values[2] = BoolGetDatum(trailing);
	values[3] = Int64GetDatum(ms);
	values[4] = Int64GetDatum(walk_id);
	if (walk_id < 0)
		nulls[4] = 'n';
	values[5] = BoolGetDatum(catching_up);
	values[6] = BoolGetDatum(finished);
	values[7] = error ? CStringGetTextDatum(error) : (Datum) 0;
	if (!error)
		nulls[7] = 'n';
	return hubsync_worker_sql("store what the poller found",
							  "SELECT " POLL_INGEST_SQL ", "
							  "       hubsync._poll_save($1, $3, $4, $5, $6, $7, "
							  "           coalesce(jsonb_array_length($2::jsonb -> 'results'), 0), $8)",
							  8, types, values, nulls, NULL);
}

/*
 * walk -- one slice of a search walk over [*lo, hi] (hi < 0: open).
 * Returns true when the walk reached its end; *lo and *walk_id are where
 * it stands (saved with every page).
 */
static bool
walk(PollType *t, bool trailing, int64 *lo, int64 *walk_id, int64 hi, bool *failed)
{
	int			page;
	const char *token = hubsync_access_token();

	*failed = false;
	for (page = 0; page < POLL_SLICE_PAGES; page++)
	{
		char	   *body;
		HubsyncHttpRequest *req;
		HubsyncPage pg;
		bool		finished = false;
		int64		last_ms = -1,
					last_id = 0;
		JsonbContainer *results;
		int64		start_lo = *lo,
					start_walk_id = *walk_id;

		body = hubsync_search_body(t->lastmod, *lo, hi, *lo, Max(*walk_id, 0), *walk_id >= 0,
								   POLL_PAGE, t->props, t->nprops);
		req = hubsync_read_call("POST",
								hubsync_api_url(hubsync_path_objects(t->api_name, "/search")),
								body, HUBSYNC_QUOTA_SEARCH, token);
		if (!hubsync_read_page(req, &pg))
		{
			ereport(LOG,
					(errmsg("hubsync could not search %s records changed in HubSpot: %s",
							t->object_type, pg.error),
					 errhint("The poller tries again at its next round.")));
			(void) save(t, trailing, NULL, *lo, *walk_id, false, true, 0, pg.error);
			hubsync_http_release(req);
			*failed = true;
			return false;
		}
		results = hubsync_json_get_container(&pg.body->root, "results");
		if (pg.nresults > 0)
		{
			JsonbContainer *rec = hubsync_json_array_container(results, pg.nresults - 1);

			last_ms = hubsync_record_ms(rec, t->lastmod);
			last_id = hubsync_record_id(rec);
		}
		if (*walk_id >= 0)
		{
			/* walking the records that share *lo, by id */
			if (pg.nresults == POLL_PAGE)
				*walk_id = last_id;
			else
			{
				*walk_id = -1;
				*lo = *lo + 1;
			}
		}
		else if (pg.nresults < POLL_PAGE)
		{
			finished = true;
			if (last_ms > *lo)
				*lo = last_ms;
		}
		else if (last_ms > *lo)
			*lo = last_ms;		/* re-anchor: the next page starts there */
		else
			*walk_id = 0;		/* a whole page shares one timestamp */
		if (hi >= 0 && *lo > hi)
			finished = true;
		{
			char	   *err = save(t, trailing, pg.results, *lo, finished ? -1 : *walk_id, !finished,
								   finished, pg.nresults, NULL);

			if (err != NULL)
			{
				/* the page could not be stored: say so where the cursor is */
				(void) save(t, trailing, NULL, start_lo, start_walk_id, false, true, 0,
							psprintf("could not store HubSpot's answer: %s", err));
				hubsync_http_release(req);
				*failed = true;
				return false;
			}
		}
		hubsync_http_release(req);
		if (finished)
			return true;
		hubsync_worker_handle_interrupts();
	}
	return false;
}

static void set_swept(PollType *t, const char *column);

/* fast_poll -- one slice of the fast poll of t; true when it is done */
static bool
fast_poll(PollType *t)
{
	int64		lo,
				walk_id = t->cursor_id;
	bool		failed;

	if (!t->has_cursor)
	{
		/* first round: changes from now on (a backfill imports the past) */
		lo = hubsync_now_ms() - POLL_OVERLAP_MS;
		(void) save(t, false, NULL, lo, -1, false, true, 0, NULL);
		(void) save(t, true, NULL, lo, -1, false, true, 0, NULL);
		/* nothing is mirrored yet: the first sweeps come one interval later */
		set_swept(t, "archived_at");
		set_swept(t, "associations_at");
		return true;
	}
	lo = (t->catching_up || walk_id >= 0) ? t->cursor_ms :
		t->cursor_ms - Min(POLL_OVERLAP_MS, (int64) hubsync_poll_interval * 1000);
	return walk(t, false, &lo, &walk_id, -1, &failed) || failed;
}

/* trailing_sweep -- one slice of the trailing sweep of t */
static bool
trailing_sweep(PollType *t)
{
	int64		hi = Min(t->cursor_ms, hubsync_now_ms() - (int64) hubsync_poll_index_lag * 1000);
	int64		lo = t->trail_ms,
				walk_id = t->trail_id;
	bool		failed;

	if (hi <= lo)
	{
		(void) save(t, true, NULL, lo, -1, false, true, 0, NULL);
		return true;
	}
	if (walk(t, true, &lo, &walk_id, hi, &failed))
	{
		/* the next sweep starts a little before where this one ended */
		(void) save(t, true, NULL, Max(hi - 1000, t->trail_ms), -1, false, true, 0, NULL);
		return true;
	}
	return failed;
}

/* set_swept -- mark a sweep of t finished */
static void
set_swept(PollType *t, const char *column)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	values[0] = CStringGetTextDatum(t->object_type);
	(void) hubsync_worker_sql("record a sweep",
							  psprintf("INSERT INTO hubsync.poll_state AS s (object_type, %s) VALUES ($1, now()) "
									   "ON CONFLICT ON CONSTRAINT poll_state_pkey DO UPDATE SET %s = now()",
									   column, column),
							  1, types, values, NULL, NULL);
}

/* archived_slice -- one slice of the archived sweep of t; true when done */
static bool
archived_slice(PollType *t)
{
	int			page;
	const char *token = hubsync_access_token();

	if (!archived_sweep.active || strcmp(archived_sweep.object_type, t->object_type) != 0)
	{
		strlcpy(archived_sweep.object_type, t->object_type, NAMEDATALEN);
		archived_sweep.active = true;
		archived_sweep.after = NULL;
	}
	for (page = 0; page < SWEEP_SLICE_PAGES; page++)
	{
		HubsyncHttpRequest *req;
		HubsyncPage pg;
		Oid			types[2] = {TEXTOID, TEXTOID};
		Datum		values[2];
		char	   *lastmod = t->lastmod;

		req = hubsync_read_call("GET", hubsync_list_url(t->api_name, archived_sweep.after, true,
														&lastmod, 1),
								NULL, HUBSYNC_QUOTA_BULK, token);
		if (!hubsync_read_page(req, &pg))
		{
			ereport(LOG,
					(errmsg("hubsync could not list archived %s records: %s", t->object_type, pg.error),
					 errhint("The sweep starts again at its next round.")));
			hubsync_http_release(req);
			archived_sweep.active = false;
			set_swept(t, "archived_at");
			return true;
		}
		values[0] = CStringGetTextDatum(t->object_type);
		values[1] = CStringGetTextDatum(pg.results);
		(void) hubsync_worker_sql("store archived records found",
								  "SELECT hubsync._ingest_archived($1, $2::jsonb -> 'results')",
								  2, types, values, NULL, NULL);
		if (archived_sweep.after)
			pfree(archived_sweep.after);
		archived_sweep.after = pg.next_after ? MemoryContextStrdup(TopMemoryContext, pg.next_after) : NULL;
		hubsync_http_release(req);
		if (archived_sweep.after == NULL)
		{
			archived_sweep.active = false;
			set_swept(t, "archived_at");
			return true;
		}
	}
	return false;
}

/*
 * assoc_result_after -- a batch read result's paging.next.after: NULL when
 * it has no paging (its last page), "" when paging is there but gives no
 * usable cursor (then the rest cannot be read).
 */
static char *
assoc_result_after(JsonbContainer *r)
{
	JsonbValue *paging = hubsync_json_get(r, "paging");
	JsonbContainer *next;
	JsonbValue *after;

	if (paging == NULL || paging->type == jbvNull)
		return NULL;
	next = hubsync_json_get_container(hubsync_json_get_container(r, "paging"), "next");
	after = next ? hubsync_json_get(next, "after") : NULL;
	if (after == NULL || after->type != jbvString || after->val.string.len == 0)
		return pstrdup("");
	return pnstrdup(after->val.string.val, after->val.string.len);
}

/*
 * assoc_take_page -- add one batch read answer's results to *all (only
 * those of inputs in asked, or all when asked is NIL) and queue the
 * inputs whose result has a further page on *pend_ids and *pend_afters.  An
 * input whose paging gives no usable cursor, or the cursor it was sent
 * with again, goes to *not_read.  In asked mode, an asked input without a
 * result goes to *not_read too.
 */
static void
assoc_take_page(Jsonb *answer, List *asked, List *asked_afters, StringInfo all, int *nresults,
				List **pend_ids, List **pend_afters, List **not_read)
{
	JsonbContainer *results = hubsync_json_get_container(&answer->root, "results");
	ListCell   *lc,
			   *la;

	for (int i = 0; i < hubsync_json_array_size(results); i++)
	{
		JsonbContainer *r = hubsync_json_array_container(results, i);
		char	   *id = hubsync_json_get_text(hubsync_json_get_container(r, "from"), "id");
		char	   *after = assoc_result_after(r);
		char	   *sent = NULL;
		bool		mine = (asked == NIL);

		forboth(lc, asked, la, asked_afters)
			if (strcmp((char *) lfirst(lc), id) == 0)
				mine = true, sent = (char *) lfirst(la);
		if (!mine)
			continue;			/* not asked for: not ours to judge */
		appendStringInfoString(all, (*nresults)++ > 0 ? "," : "");
		appendStringInfoString(all, JsonbToCString(NULL, r, -1));
		if (after == NULL)
			continue;
		if (*after == '\0' || (sent != NULL && strcmp(sent, after) == 0))
			*not_read = lappend(*not_read, id);	/* no way on, or a loop */
		else
		{
			*pend_ids = lappend(*pend_ids, id);
			*pend_afters = lappend(*pend_afters, after);
		}
	}
	foreach(lc, asked)
	{
		bool		found = false;

		for (int i = 0; i < hubsync_json_array_size(results) && !found; i++)
		{
			char	   *id = hubsync_json_get_text(hubsync_json_get_container(hubsync_json_array_container(results, i), "from"), "id");

			found = id != NULL && strcmp(id, (char *) lfirst(lc)) == 0;
		}
		if (!found)
			*not_read = lappend(*not_read, lfirst(lc));
	}
}

/*
 * assoc_follow_pages -- HubSpot pages a batch read per input: a result
 * with paging.next.after has more associations, read by sending the id
 * again with that cursor, until a page has no paging.  Reads every further
 * page of answer's results and returns {"results": [...]} with the results
 * of all pages (an id may appear in several; the ingest takes their
 * union).  An input whose further page could not be read (request failed,
 * unusable answer, no result for it, a cursor repeated, or more than
 * ASSOC_MAX_PAGES further requests) is appended to *not_read: its links
 * are unknown, so none may be taken as removed.  *pages counts requests.
 */
#define ASSOC_MAX_PAGES 10000
static Jsonb *
assoc_follow_pages(Jsonb *answer, const char *url, const char *token,
				   List **not_read, int *pages)
{
	StringInfoData all;
	List	   *pend_ids = NIL,
			   *pend_afters = NIL;
	int			nresults = 0,
				requests = 0;

	initStringInfo(&all);
	appendStringInfoString(&all, "{\"results\":[");
	assoc_take_page(answer, NIL, NIL, &all, &nresults, &pend_ids, &pend_afters, not_read);
	while (pend_ids != NIL)
	{
		int			batch = Min(list_length(pend_ids), 100);
		List	   *ids = list_truncate(list_copy(pend_ids), batch);
		List	   *afters = list_truncate(list_copy(pend_afters), batch);
		StringInfoData body;
		HubsyncHttpRequest *req;
		Jsonb	   *page = NULL;

		pend_ids = list_copy_tail(pend_ids, batch);
		pend_afters = list_copy_tail(pend_afters, batch);
		if (++requests > ASSOC_MAX_PAGES)
		{
			*not_read = list_concat(*not_read, ids);
			continue;
		}
		initStringInfo(&body);
		appendStringInfoString(&body, "{\"inputs\":[");
		for (int i = 0; i < batch; i++)
		{
			appendStringInfoString(&body, i > 0 ? ",{\"id\":" : "{\"id\":");
			hubsync_json_escape(&body, (char *) list_nth(ids, i));
			appendStringInfoString(&body, ",\"after\":");
			hubsync_json_escape(&body, (char *) list_nth(afters, i));
			appendStringInfoChar(&body, '}');
		}
		appendStringInfoString(&body, "]}");
		req = hubsync_read_call("POST", (char *) url, body.data, HUBSYNC_QUOTA_BULK, token);
		(*pages)++;
		if ((req->status == 200 || req->status == 207) && req->response)
			page = hubsync_json_parse(req->response, req->response_len);
		if (page == NULL || hubsync_assoc_answer_problem(page) != NULL)
		{
			ereport(LOG,
					(errmsg("hubsync could not read a further page of associations from HubSpot: HTTP %ld%s%s",
							req->status, req->error[0] ? ", " : "", req->error),
					 errhint("The links of those records are left as they are until the next sweep.")));
			*not_read = list_concat(*not_read, ids);
		}
		else
			assoc_take_page(page, ids, afters, &all, &nresults, &pend_ids, &pend_afters, not_read);
		hubsync_http_release(req);
	}
	appendStringInfoString(&all, "]}");
	return hubsync_json_parse(all.data, all.len);
}

/*
 * assoc_slice -- one slice of the association sweep from t's records:
 * each pair (t, other type) in turn, 100 mirrored ids per batch read.
 */
static bool
assoc_slice(PollType *t)
{
	int			page = 0;
	const char *token = hubsync_access_token();
	List	   *pairs = NIL;	/* of char *[4] */
	char	   *res;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];

	if (!assoc_sweep.active || strcmp(assoc_sweep.object_type, t->object_type) != 0)
	{
		strlcpy(assoc_sweep.object_type, t->object_type, NAMEDATALEN);
		assoc_sweep.active = true;
		assoc_sweep.pair = 0;
		assoc_sweep.last_id = 0;
	}
	/* this type's pairs, as "to_type to_api from_api" lines */
	values[0] = CStringGetTextDatum(t->object_type);
	if (hubsync_worker_sql("read association pairs",
						   "SELECT string_agg(to_type || ' ' || to_api || ' ' || from_api, E'\\n' ORDER BY to_type) "
						   "FROM hubsync._association_pairs() WHERE from_type = $1",
						   1, types, values, NULL, &res) != NULL || res == NULL)
	{
		assoc_sweep.active = false;
		set_swept(t, "associations_at");
		return true;
	}
	{
		char	   *save_ptr = NULL;
		char	   *line;

		for (line = strtok_r(res, "\n", &save_ptr); line; line = strtok_r(NULL, "\n", &save_ptr))
			pairs = lappend(pairs, pstrdup(line));
	}
	while (assoc_sweep.pair < list_length(pairs) && page < SWEEP_SLICE_PAGES)
	{
		char		to_type[NAMEDATALEN],
					to_api[NAMEDATALEN],
					from_api[NAMEDATALEN];
		char	   *ids;
		Oid			t3[3] = {TEXTOID, INT8OID, INT4OID};
		Datum		v3[3];
		StringInfoData body;
		HubsyncHttpRequest *req;
		Jsonb	   *answer;
		List	   *not_read;
		const char *problem;
		char	   *p,
				   *save_ptr = NULL;
		int			n = 0;
		int64		last = assoc_sweep.last_id;

		if (sscanf((char *) list_nth(pairs, assoc_sweep.pair), "%63s %63s %63s", to_type, to_api, from_api) != 3)
		{
			assoc_sweep.pair++;
			continue;
		}
		v3[0] = CStringGetTextDatum(t->object_type);
		v3[1] = Int64GetDatum(assoc_sweep.last_id);
		v3[2] = Int32GetDatum(100);
		if (hubsync_worker_sql("read ids for the association sweep",
							   "SELECT array_to_string(hubsync._association_sweep_ids($1, $2, $3), ',')",
							   3, t3, v3, NULL, &ids) != NULL || ids == NULL || *ids == '\0')
		{
			assoc_sweep.pair++;
			assoc_sweep.last_id = 0;
			continue;
		}
		initStringInfo(&body);
		appendStringInfoString(&body, "{\"inputs\":[");
		for (p = strtok_r(ids, ",", &save_ptr); p; p = strtok_r(NULL, ",", &save_ptr))
		{
			appendStringInfo(&body, "%s{\"id\":\"%s\"}", n > 0 ? "," : "", p);
			last = strtoll(p, NULL, 10);
			n++;
		}
		appendStringInfoString(&body, "]}");
		req = hubsync_read_call("POST",
								hubsync_api_url(hubsync_path_associations(from_api, to_api, "/batch/read")),
								body.data, HUBSYNC_QUOTA_BULK, token);
		page++;
		answer = (req->status == 200 || req->status == 207) && req->response ?
			hubsync_json_parse(req->response, req->response_len) : NULL;
		not_read = NIL;
		problem = answer != NULL ? hubsync_assoc_answer_problem(answer) : NULL;
		if (problem != NULL)
		{
			Oid			t2[2] = {TEXTOID, TEXTOID};
			Datum		v2[2];

			ereport(LOG,
					(errmsg("hubsync could not read %s associations of %s from HubSpot: %s",
							to_type, t->object_type, problem),
					 errhint("The association sweep goes on with the next records; their links are left as they are.")));
			v2[0] = CStringGetTextDatum(t->object_type);
			v2[1] = CStringGetTextDatum(psprintf("association sweep: %s", problem));
			(void) hubsync_worker_sql("record an association sweep error",
									  "UPDATE hubsync.poll_state SET last_error = $2 WHERE object_type = $1",
									  2, t2, v2, NULL, NULL);
		}
		else if (answer != NULL && hubsync_read_failed_ids(answer, &not_read))
		{
			Oid			t5[5] = {TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTARRAYOID};
			Datum		v5[5];

			/* every page of every input, before anything is taken as removed */
			answer = assoc_follow_pages(answer,
										hubsync_api_url(hubsync_path_associations(from_api, to_api, "/batch/read")),
										token, &not_read, &page);
			v5[0] = CStringGetTextDatum(t->object_type);
			v5[1] = CStringGetTextDatum(to_type);
			v5[2] = CStringGetTextDatum(body.data);
			v5[3] = JsonbPGetDatum(answer);
			v5[4] = PointerGetDatum(strlist_to_textarray(not_read));
			(void) hubsync_worker_sql("store association changes found",
									  ASSOC_INGEST_SQL, 5, t5, v5, NULL, NULL);
		}
		else if (answer != NULL)
			ereport(LOG,
					(errmsg("hubsync could not read %s associations of %s from HubSpot: HTTP %ld with errors that name no record",
							to_type, t->object_type, req->status),
					 errhint("The association sweep goes on with the next records.")));
		else
			ereport(LOG,
					(errmsg("hubsync could not read %s associations of %s from HubSpot: HTTP %ld%s%s",
							to_type, t->object_type, req->status,
							req->error[0] ? ", " : "", req->error),
					 errhint("The association sweep goes on with the next records.")));
		hubsync_http_release(req);
		if (n < 100)
		{
			assoc_sweep.pair++;
			assoc_sweep.last_id = 0;
		}
		else
			assoc_sweep.last_id = last;
	}
	if (assoc_sweep.pair >= list_length(pairs))
	{
		assoc_sweep.active = false;
		set_swept(t, "associations_at");
		return true;
	}
	return false;
}

/*
 * hubsync_poll_tick -- do the poller's due work, a slice at a time.
 * Returns true when a slice stopped with more to do at once.
 */
bool
hubsync_poll_tick(void)
{
	int64		now = hubsync_now_ms();
	List	   *types;
	ListCell   *lc;
	bool		more = false;
	bool		worked = false;
	int64		poll_ms = (int64) hubsync_poll_interval * 1000;

	/*
	 * with webhooks or the Webhooks Journal on, polling is only the safety
	 * net: five times slower
	 */
	if (hubsync_webhook_port > 0 || hubsync_journal_interval > 0)
		poll_ms *= POLL_WEBHOOKS_FACTOR;

	if (now < next_check_ms)
		return false;
	next_check_ms = now + POLL_CHECK_MS;
	if (pg_atomic_read_u32(&hubsync_shared->paused) != 0)
		return false;
	hubsync_refresh_credentials();
	if (hubsync_auth_blocked())
		return false;
	types = load_types();

	/*
	 * Start after the last type that did some work in the last tick (the
	 * one whose unfinished slice ended it, or whose sweep finished last),
	 * so that one type with much to do (a long sweep, a catch-up) cannot
	 * keep the types after it from ever being polled or swept.
	 */
	foreach(lc, types)
	{
		if (strcmp(((PollType *) lfirst(lc))->object_type, resume_after) == 0)
		{
			int			k = foreach_current_index(lc) + 1;

			types = list_concat(list_copy_tail(types, k), list_truncate(list_copy(types), k));
			break;
		}
	}
	foreach(lc, types)
	{
		PollType   *t = lfirst(lc);

		bool		done = true;
		bool		ran = false;

		if (!t->has_cursor)
		{
			/* first round: set the cursors; the rest comes later */
			(void) fast_poll(t);
			worked = true;
			continue;
		}
		if (t->catching_up || t->polled_ago_ms < 0 || t->polled_ago_ms >= poll_ms)
		{
			done = fast_poll(t);
			ran = true;
		}
		if (done && (t->trailed_ago_ms < 0 ||
					 t->trailed_ago_ms >= (int64) hubsync_poll_trailing_interval * 1000))
		{
			done = trailing_sweep(t);
			ran = true;
		}
		if (done && !t->backfilling && ((archived_sweep.active && strcmp(archived_sweep.object_type, t->object_type) == 0) ||
					 (!archived_sweep.active &&
					  (t->archived_ago_ms < 0 ||
					   t->archived_ago_ms >= (int64) hubsync_poll_archived_interval * 1000))))
		{
			done = archived_slice(t);
			ran = true;
		}
		if (done && !t->backfilling && ((assoc_sweep.active && strcmp(assoc_sweep.object_type, t->object_type) == 0) ||
					 (!assoc_sweep.active &&
					  (t->assoc_ago_ms < 0 ||
					   t->assoc_ago_ms >= (int64) hubsync_poll_association_interval * 1000))))
		{
			done = assoc_slice(t);
			ran = true;
		}
		more = !done;
		worked |= ran;
		if (ran)
			strlcpy(resume_after, t->object_type, NAMEDATALEN);
		if (more)
			break;				/* let the inbox catch up first */
	}
	if (more)
		next_check_ms = 0;
	return more || worked;
}
