/*-------------------------------------------------------------------------
 *
 * backfill.c
 *	  Background import of every HubSpot record of an object type
 *	  (hubsync.backfill()), run by the "hubsync pull" worker.
 *
 * List paging is sequential by nature (each page names the next), so one
 * cursor cannot use the quota at 200 ms per request.  The id range is cut
 * into streams instead: the lowest id comes from the first list page and
 * the highest from a search sent with it (which also gives the estimated
 * total), each stream pages from its own start until it passes its end,
 * and a stream that finishes early takes the second half of the largest
 * range still to read.  This relies on the list cursor being the next
 * record id, as HubSpot's is in practice; but HubSpot documents the cursor
 * as opaque, so it is checked first: only when the first page's cursor is
 * the id after its last record are ranges cut (else one stream pages
 * through the list as HubSpot hands out the cursors), and once every
 * stream is read the import is checked against HubSpot's count (a search
 * total of the ids up to the highest one here): if records are missing,
 * the list is read again page by page, and if they are still missing the
 * backfill fails with the counts (alert backfill_failed) rather than
 * calling itself done.  Pages run concurrently
 * (hubsync.max_inflight) within the bulk class of the quota, which keeps a
 * reserve for real-time pushes; each request goes on the wire as soon as
 * the quota grants it, before the pages in hand are applied, so the
 * budget, not the apply or the latency, sets the pace.  Each page is
 * applied (hubsync._ingest_records: local rows matched by hs_object_id,
 * hubsync_id, then email) in the transaction that saves the streams, so a
 * restart resumes where the import stood, and a page read twice adds
 * nothing twice.
 *
 * IDENTIFICATION
 *	  src/pull/backfill.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

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
#include "hubspot/settings.h"

#define MAX_STREAMS 64
#define TICK_MS 2000			/* longest time one tick keeps the worker */
#define MIN_SPLIT_SPAN 5000		/* id ranges narrower than this are not split */
#define MAX_BATCH 64			/* pages applied in one transaction */
#define MAX_FAILURES 20			/* consecutive failed pages before giving up */

typedef struct Stream
{
	char	   *after;			/* next cursor (NULL: from the start) */
	int64		end;			/* first id of the next stream, -1: none */
	bool		inflight;
	bool		done;
} Stream;

static struct
{
	bool		active;
	MemoryContext cxt;
	char	   *object_type;
	char	   *api_name;
	char	  **props;
	int			nprops;
	Stream		streams[MAX_STREAMS];
	int			nstreams;
	int			inflight;
	int			failures;
	int64		next_load_ms;
	int64		hi;				/* highest id when planned, -1: unknown */
	int64		page_span;		/* ids a full page covered lately, 0: unknown */
	bool		sequential;		/* one stream on HubSpot's own cursors: no cuts */
	int64		check_hi;		/* highest id when planned (saved): the count
								 * check covers the ids up to it; -1: unknown */
	/* pages read but not yet applied: applied together, one transaction */
	int			nbatch;
	Datum		batch_pages[MAX_BATCH];
	Datum		batch_ends[MAX_BATCH];
} bf;

/* is_number -- a cursor we can do arithmetic on */
static bool
is_number(const char *s)
{
	return s != NULL && *s != '\0' && strspn(s, "0123456789") == strlen(s);
}

/* streams_json -- the streams still to read, as saved in hubsync.backfills */
static char *
streams_json(void)
{
	StringInfoData b;
	int			i;
	bool		first = true;

	initStringInfo(&b);
	appendStringInfoChar(&b, '[');
	for (i = 0; i < bf.nstreams; i++)
	{
		Stream	   *s = &bf.streams[i];

		if (s->done)
			continue;
		appendStringInfo(&b, "%s{\"after\":", first ? "" : ",");
		if (s->after)
			hubsync_json_escape(&b, s->after);
		else
			appendStringInfoString(&b, "null");
		if (s->end >= 0)
			appendStringInfo(&b, ",\"end\":" INT64_FORMAT, s->end);
		else
			appendStringInfoString(&b, ",\"end\":null");
		if (bf.check_hi >= 0)
			appendStringInfo(&b, ",\"hi\":" INT64_FORMAT, bf.check_hi);
		appendStringInfoString(&b, bf.sequential ? ",\"seq\":true}" : "}");
		first = false;
	}
	appendStringInfoChar(&b, ']');
	return b.data;
}

/*
 * save -- apply a page (records below end) and save the streams, in one
 * transaction.  Returns false when that failed.
 */
static bool
save(const char *response, int64 end, int requests, int64 total, bool finished, const char *error)
{
	Oid			types[7] = {TEXTOID, TEXTOID, INT8OID, TEXTOID, INT4OID, INT8OID, BOOLOID};
	Datum		values[7];
	char		nulls[8] = "       ";
	Oid			etypes[1] = {TEXTOID};
	Datum		evalues[1];

	values[0] = CStringGetTextDatum(bf.object_type);
	values[1] = CStringGetTextDatum(response ? response : "{}");
	values[2] = Int64GetDatum(end);
	if (end < 0)
		nulls[2] = 'n';
	values[3] = CStringGetTextDatum(streams_json());
	values[4] = Int32GetDatum(requests);
	values[5] = Int64GetDatum(total);
	if (total < 0)
		nulls[5] = 'n';
	values[6] = BoolGetDatum(finished);
	if (error)
	{
		evalues[0] = CStringGetTextDatum(bf.object_type);
		(void) hubsync_worker_sql("record a failed backfill",
								  psprintf("SELECT hubsync._backfill_save($1, NULL, 0, 0, NULL, true, %s)",
										   quote_literal_cstr(error)),
								  1, etypes, evalues, NULL, NULL);
		return true;
	}
	return hubsync_worker_sql("store a backfill page",
							  "WITH page AS (SELECT coalesce(jsonb_agg(e), '[]') AS recs FROM "
							  "  jsonb_array_elements(coalesce($2::jsonb -> 'results', '[]')) e "
							  "  WHERE $3 IS NULL OR (e ->> 'id')::int8 < $3) "
							  "SELECT (SELECT count(*) FROM page, hubsync._ingest_records($1, page.recs, 'backfill')), "
							  "       hubsync._backfill_save($1, $4::jsonb, "
							  "           (SELECT jsonb_array_length(recs) FROM page), $5, $6, $7, NULL)",
							  7, types, values, nulls, NULL) == NULL;
}

static bool save_batch(bool finished);

/*
 * fail_resumable -- record that the backfill gave up after transient
 * errors, keeping its cursors so that hubsync.backfill() resumes from
 * them.  The pages read but not applied yet are applied first, so the
 * cursors saved are exactly those after the pages applied (a request
 * still in flight is sent again on resume).
 */
static void
fail_resumable(const char *error)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3];

	if (bf.nbatch > 0 && !save_batch(false))
		return;					/* not applied: the saved cursors stay as they were */
	values[0] = CStringGetTextDatum(bf.object_type);
	values[1] = CStringGetTextDatum(streams_json());
	values[2] = CStringGetTextDatum(error ? error : "HubSpot kept failing");
	(void) hubsync_worker_sql("record a failed backfill",
							  "SELECT hubsync._backfill_save($1, $2::jsonb, 0, 0, NULL, true, $3)",
							  3, types, values, NULL, NULL);
}

/*
 * save_batch -- apply the pages read since the last call (records below
 * their stream's end) and save the streams, in one transaction.  Its
 * commit need not wait for the disk: after a crash the pages are simply
 * read again.  Returns false when that failed.
 */
static bool
save_batch(bool finished)
{
	Oid			types[5] = {TEXTOID, TEXTARRAYOID, INT8ARRAYOID, TEXTOID, BOOLOID};
	Datum		values[5];
	int			n = bf.nbatch;

	bf.nbatch = 0;
	values[0] = CStringGetTextDatum(bf.object_type);
	values[1] = PointerGetDatum(construct_array(bf.batch_pages, n, TEXTOID, -1, false, TYPALIGN_INT));
	values[2] = PointerGetDatum(construct_array(bf.batch_ends, n, INT8OID, 8, FLOAT8PASSBYVAL,
												TYPALIGN_DOUBLE));
	values[3] = CStringGetTextDatum(streams_json());
	values[4] = BoolGetDatum(finished);
	return hubsync_worker_sql("store backfill pages",
							  "WITH page AS MATERIALIZED (SELECT coalesce(jsonb_agg(e), '[]') AS recs "
							  "  FROM unnest($2, $3) u(resp, en), "
							  "       jsonb_array_elements(coalesce(u.resp::jsonb -> 'results', '[]')) e "
							  "  WHERE u.en = 0 OR (e ->> 'id')::int8 < u.en) "
							  "SELECT set_config('synchronous_commit', 'off', true), "
							  "       (SELECT count(*) FROM page, hubsync._ingest_records($1, page.recs, 'backfill')), "
							  "       hubsync._backfill_save($1, $4::jsonb, (SELECT jsonb_array_length(recs) FROM page), "
							  "           cardinality($2), NULL, $5, NULL)",
							  5, types, values, NULL, NULL) == NULL;
}

/* search_edge -- lowest (asc) or highest id and the total, by search */
static bool
search_edge(bool asc, int64 *id, int64 *total)
{
	HubsyncHttpRequest *req;
	HubsyncPage pg;
	bool		ok;

	req = hubsync_read_call("POST",
							hubsync_api_url(hubsync_path_objects(bf.api_name, "/search")),
							psprintf("{\"filterGroups\":[],\"sorts\":[{\"propertyName\":\"hs_object_id\",\"direction\":\"%s\"}],"
									 "\"properties\":[\"hs_object_id\"],\"limit\":1,\"after\":\"0\"}",
									 asc ? "ASCENDING" : "DESCENDING"),
							HUBSYNC_QUOTA_SEARCH, hubsync_access_token());
	ok = hubsync_read_page(req, &pg);
	if (ok)
	{
		*total = pg.total;
		*id = pg.nresults > 0 ?
			hubsync_record_id(hubsync_json_array_container(hubsync_json_get_container(&pg.body->root, "results"), 0)) : -1;
	}
	hubsync_http_release(req);
	return ok;
}

static long launch(int limit);

/*
 * start_within_quota -- start one request once the quota class cls allows
 * it (waiting, interruptibly, if it asks to), and put it on the wire.
 */
static HubsyncHttpRequest *
start_within_quota(const char *method, char *url, char *body, HubsyncQuotaClass cls)
{
	HubsyncHttpRequest *req;

	hubsync_request_quota(cls);
	req = hubsync_request_new(method, url, body, NULL);
	req->quota_class = (int) cls;
	hubsync_http_start(req);
	(void) hubsync_http_wait(0);
	return req;
}

/*
 * cursor_is_next_id -- the first list page's cursor behaves as a record
 * id: a number, the id right after the page's last record.  Only then may
 * cursors be made up from ids to cut the list into ranges.
 */
static bool
cursor_is_next_id(HubsyncPage *pg)
{
	int64		last;

	if (!is_number(pg->next_after) || pg->nresults <= 0 || strlen(pg->next_after) > 18)
		return false;
	last = hubsync_record_id(hubsync_json_array_container(hubsync_json_get_container(&pg->body->root, "results"),
														  pg->nresults - 1));
	return last > 0 && strtoll(pg->next_after, NULL, 10) == last + 1;
}

/*
 * plan_streams -- k streams over the ids from first to hi (the last one
 * open-ended, for records created since)
 */
static void
plan_streams(int64 first, int64 hi)
{
	int			k = Min(Max(hubsync_max_inflight, 1), MAX_STREAMS);
	int64		span = (Max(hi, first) - first) / k + 1;
	int			i;

	bf.nstreams = 0;
	bf.hi = hi;
	for (i = 0; i < k && first + i * span <= Max(hi, first); i++)
	{
		Stream	   *s = &bf.streams[bf.nstreams++];

		memset(s, 0, sizeof(*s));
		s->after = MemoryContextStrdup(bf.cxt, psprintf(INT64_FORMAT, first + i * span));
		s->end = (i == k - 1 || first + (i + 1) * span > hi) ? -1 : first + (i + 1) * span;
	}
}

/* open_stream -- one stream reading the list on from after, to its end */
static void
open_stream(const char *after)
{
	Stream	   *s = &bf.streams[bf.nstreams++];

	memset(s, 0, sizeof(*s));
	s->after = after ? MemoryContextStrdup(bf.cxt, after) : NULL;
	s->end = -1;
}

/*
 * plan_slowly -- the lowest and highest ids and the total from two
 * searches, each tried again on failure; one stream through the list when
 * search gives nothing.
 */
static void
plan_slowly(void)
{
	int64		lo = -1,
				hi = -1,
				total = -1,
				t2;

	bf.nstreams = 0;
	bf.sequential = false;
	bf.check_hi = -1;
	if (search_edge(true, &lo, &total) && search_edge(false, &hi, &t2) && lo > 0 && hi >= lo)
	{
		bf.check_hi = hi;
		plan_streams(lo, hi);
	}
	else if (total != 0)
	{
		open_stream(NULL);		/* no search (or no ids): the whole list */
		bf.sequential = true;
	}
	(void) save(NULL, -1, 0, total, false, NULL);
}

/*
 * plan -- cut the id range into streams (the first time only).  Planning
 * costs one round trip: the first list page (which gives the lowest id and
 * is kept, applied like any page) and a search for the highest id and the
 * total are sent together.  If either fails, plan_slowly does it step by
 * step with retries, and the page is simply read again.
 */
static void
plan(void)
{
	HubsyncHttpRequest *search;
	HubsyncHttpRequest *first;
	HubsyncPage sp,
				fp;
	int			pending = 2;

	bf.sequential = false;
	search = start_within_quota("POST",
								hubsync_api_url(hubsync_path_objects(bf.api_name, "/search")),
								"{\"filterGroups\":[],\"sorts\":[{\"propertyName\":\"hs_object_id\",\"direction\":\"DESCENDING\"}],"
								"\"properties\":[\"hs_object_id\"],\"limit\":1,\"after\":\"0\"}",
								HUBSYNC_QUOTA_SEARCH);
	first = start_within_quota("GET", hubsync_list_url(bf.api_name, NULL, false, bf.props, bf.nprops),
							   NULL, HUBSYNC_QUOTA_BULK);
	while (pending > 0)
	{
		HubsyncHttpRequest *req;

		(void) hubsync_http_wait(100);
		while ((req = hubsync_http_next_done()) != NULL)
		{
			hubsync_observe_response(req);
			if (req == search || req == first)
				pending--;
			else
			{
				/* a list request of a stopped import (see drop_leftovers) */
				hubsync_http_release(req);
				pfree(req);
			}
		}
		hubsync_worker_handle_interrupts();
	}
	if (search->status == 429)
		hubsync_quota_throttled("SECONDLY", HUBSYNC_QUOTA_SEARCH);
	if (hubsync_read_page(search, &sp) && hubsync_read_page(first, &fp))
	{
		int64		hi = -1;

		if (sp.nresults > 0)
			hi = hubsync_record_id(hubsync_json_array_container(hubsync_json_get_container(&sp.body->root, "results"), 0));
		bf.nstreams = 0;
		bf.check_hi = hi;
		if (fp.next_after != NULL && cursor_is_next_id(&fp))
			plan_streams(strtoll(fp.next_after, NULL, 10), hi);
		else if (fp.next_after != NULL)
		{
			open_stream(fp.next_after); /* a cursor we cannot cut */
			bf.sequential = true;
		}
		/* the streams start before the first page is applied */
		(void) launch(Min(Max(hubsync_max_inflight, 1), MAX_STREAMS));
		(void) save(fp.results, -1, 1, sp.total, false, NULL);
	}
	else
		plan_slowly();
	hubsync_http_release(search);
	hubsync_http_release(first);
}

/*
 * drop_leftovers -- wait out and discard the list requests an import left
 * in flight when it stopped (an error, a failed save): their pages belong
 * to streams that are reloaded or replaced, and are read again if needed.
 * The pull worker starts no other requests that outlive a call.
 */
static void
drop_leftovers(void)
{
	for (;;)
	{
		HubsyncHttpRequest *req;

		while ((req = hubsync_http_next_done()) != NULL)
		{
			hubsync_http_release(req);
			pfree(req);
		}
		if (hubsync_http_inflight() == 0)
			break;
		(void) hubsync_http_wait(100);
		hubsync_worker_handle_interrupts();
	}
}

/* load -- the oldest running backfill, with its saved streams */
static bool
load(void)
{
	bool		found = false;

	if (!hubsync_worker_begin_xact("reading hubsync backfills"))
	{
		hubsync_worker_end_xact();
		return false;
	}
	SPI_connect();
	if (SPI_execute("SELECT b.object_type, t.api_name, hubsync._read_properties(b.object_type), "
					"       b.streams IS NULL, s ->> 'after', (s ->> 'end')::int8, s IS NULL, "
					"       coalesce((s ->> 'seq')::boolean, false), (s ->> 'hi')::int8 "
					"FROM (SELECT * FROM hubsync.backfills WHERE state = 'running' "
					"      ORDER BY started_at, object_type LIMIT 1) b "
					"JOIN hubsync.object_types t ON t.object_type = b.object_type "
					"LEFT JOIN LATERAL jsonb_array_elements(b.streams) s ON true",
					true, 0) == SPI_OK_SELECT && SPI_processed > 0)
	{
		TupleDesc	desc = SPI_tuptable->tupdesc;
		HeapTuple	tup = SPI_tuptable->vals[0];
		MemoryContext old;
		bool		isnull;
		uint64		i;
		bool		unplanned;

		if (bf.cxt == NULL)
			bf.cxt = AllocSetContextCreate(TopMemoryContext, "hubsync backfill",
										   ALLOCSET_SMALL_SIZES);
		MemoryContextReset(bf.cxt);
		old = MemoryContextSwitchTo(bf.cxt);
		bf.object_type = SPI_getvalue(tup, desc, 1);
		bf.api_name = SPI_getvalue(tup, desc, 2);
		bf.nprops = hubsync_text_array(SPI_getbinval(tup, desc, 3, &isnull), &bf.props);
		unplanned = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		bf.nstreams = 0;
		bf.sequential = false;
		bf.check_hi = -1;
		for (i = 0; !unplanned && i < SPI_processed && bf.nstreams < MAX_STREAMS; i++)
		{
			Stream	   *s = &bf.streams[bf.nstreams];

			tup = SPI_tuptable->vals[i];
			if (DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull)))
				continue;		/* no stream left (an empty list) */
			memset(s, 0, sizeof(*s));
			s->after = SPI_getvalue(tup, desc, 5);
			(void) SPI_getbinval(tup, desc, 6, &isnull);
			s->end = isnull ? -1 : DatumGetInt64(SPI_getbinval(tup, desc, 6, &isnull));
			if (DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull)))
				bf.sequential = true;
			{
				Datum		hi = SPI_getbinval(tup, desc, 9, &isnull);

				if (!isnull)
					bf.check_hi = Max(bf.check_hi, DatumGetInt64(hi));
			}
			bf.nstreams++;
		}
		MemoryContextSwitchTo(old);
		bf.active = true;
		bf.inflight = 0;
		bf.failures = 0;
		bf.hi = -1;				/* not saved: the open stream is not cut */
		bf.page_span = 0;
		found = true;
		if (unplanned)
			bf.nstreams = -1;
	}
	SPI_finish();
	hubsync_worker_end_xact();
	return found;
}

/*
 * stream_end -- the id a stream stops before: its end, or for the open
 * last stream the highest id planned (+1); -1 when not known
 */
static int64
stream_end(Stream *s)
{
	if (s->end >= 0)
		return s->end;
	return bf.hi >= 0 ? bf.hi + 1 : -1;
}

/*
 * remaining -- ids a stream still has to read (a large number when not
 * known), to serve the streams furthest behind first
 */
static int64
remaining(Stream *s)
{
	int64		end = stream_end(s);

	if (end < 0 || !is_number(s->after))
		return PG_INT64_MAX / 2;
	return end - strtoll(s->after, NULL, 10);
}

/*
 * split -- give a finished stream the upper half of the widest range left,
 * if that range still holds a few pages (a cut costs a page read twice).
 */
static void
split(Stream *freed)
{
	int			i,
				best = -1;
	int64		best_span = bf.page_span > 0 ? 4 * bf.page_span : MIN_SPLIT_SPAN;

	for (i = 0; i < bf.nstreams; i++)
	{
		Stream	   *s = &bf.streams[i];
		int64		span;

		if (s->done || stream_end(s) < 0 || !is_number(s->after))
			continue;
		span = stream_end(s) - strtoll(s->after, NULL, 10);
		if (span > best_span)
		{
			best_span = span;
			best = i;
		}
	}
	if (best < 0)
		return;
	{
		Stream	   *s = &bf.streams[best];
		int64		mid = stream_end(s) - best_span / 2;

		freed->after = MemoryContextStrdup(bf.cxt, psprintf(INT64_FORMAT, mid));
		freed->end = s->end;	/* -1 stays open: the open end moves on */
		freed->done = false;
		s->end = mid;
	}
}

/* all_done -- nothing left to read or in flight */
static bool
all_done(void)
{
	int			i;

	for (i = 0; i < bf.nstreams; i++)
		if (!bf.streams[i].done || bf.streams[i].inflight)
			return false;
	return true;
}

/* finish_page -- a list page came back for stream s */
static void
finish_page(Stream *s, HubsyncHttpRequest *req)
{
	HubsyncPage pg;

	s->inflight = false;
	bf.inflight--;
	if (!hubsync_read_page(req, &pg))
	{
		if (req->status == 429 || req->status == 0 || req->status >= 500)
		{
			/* transient: the stream asks again (a 429 blocked the quota) */
			if (++bf.failures >= MAX_FAILURES)
			{
				ereport(LOG,
						(errmsg("hubsync backfill of %s failed after %d transient errors in a row: %s",
								bf.object_type, MAX_FAILURES, pg.error),
						 errhint("Call hubsync.backfill() again: it resumes where it stopped.")));
				fail_resumable(pg.error);
				bf.active = false;
			}
			return;
		}
		ereport(LOG,
				(errmsg("hubsync backfill of %s failed: %s", bf.object_type, pg.error),
				 errhint("Fix the cause and call hubsync.backfill() again.")));
		(void) save(NULL, -1, 0, -1, false, pg.error);
		bf.active = false;
		return;
	}
	bf.failures = 0;
	{
		int64		end = s->end;
		bool		past_end = false;

		if (pg.nresults > 0)
		{
			JsonbContainer *results = hubsync_json_get_container(&pg.body->root, "results");
			int64		last = hubsync_record_id(hubsync_json_array_container(results, pg.nresults - 1));

			past_end = end >= 0 && last >= end;
			/* how many ids a full page covers: a cut must leave a few pages */
			if (pg.nresults >= 100)
				bf.page_span = last - hubsync_record_id(hubsync_json_array_container(results, 0)) + 1;
		}
		if (pg.next_after == NULL || past_end ||
			(end >= 0 && is_number(pg.next_after) && strtoll(pg.next_after, NULL, 10) >= end))
			s->done = true;
		else
			s->after = MemoryContextStrdup(bf.cxt, pg.next_after);
		if (s->done)
			split(s);
		bf.batch_pages[bf.nbatch] = CStringGetTextDatum(pg.results);
		bf.batch_ends[bf.nbatch] = Int64GetDatum(Max(end, 0));
		bf.nbatch++;
	}
}

/*
 * finish_verified -- every stream is read: call the backfill done only if
 * the mirror holds at least as many records as HubSpot counts (a search
 * total) among the ids up to the highest one when the backfill was
 * planned: later records are the poller's, and a record deleted meanwhile
 * is not counted by HubSpot any more.
 * Fewer: the list is read again from the start on HubSpot's own cursors
 * (once); still fewer, or no count to be had: the backfill fails with the
 * counts, never ends quietly with records missing.
 */
static void
finish_verified(void)
{
	char	   *res = NULL;
	int64		local = 0,
				maxid = bf.check_hi,
				t;
	HubsyncHttpRequest *req;
	HubsyncPage pg;
	bool		ok;

	if (maxid < 0 && !search_edge(false, &maxid, &t))
		maxid = -1;				/* not planned here, no search: count all */
	if (hubsync_worker_sql("count the records a backfill imported",
						   psprintf("SELECT count(*) FROM hubspot.%s WHERE hs_object_id IS NOT NULL"
									" AND (" INT64_FORMAT " <= 0 OR hs_object_id <= " INT64_FORMAT ")",
									quote_identifier(bf.object_type), maxid, maxid),
						   0, NULL, NULL, NULL, &res) != NULL || res == NULL ||
		sscanf(res, INT64_FORMAT, &local) != 1)
	{
		fail_resumable("the records imported could not be counted");
		bf.active = false;
		return;
	}
	req = hubsync_read_call("POST",
							hubsync_api_url(hubsync_path_objects(bf.api_name, "/search")),
							maxid > 0 ?
							psprintf("{\"filterGroups\":[{\"filters\":[{\"propertyName\":\"hs_object_id\","
									 "\"operator\":\"LTE\",\"value\":\"" INT64_FORMAT "\"}]}],"
									 "\"sorts\":[{\"propertyName\":\"hs_object_id\",\"direction\":\"ASCENDING\"}],"
									 "\"properties\":[\"hs_object_id\"],\"limit\":1,\"after\":\"0\"}", maxid) :
							"{\"filterGroups\":[],\"sorts\":[{\"propertyName\":\"hs_object_id\",\"direction\":\"ASCENDING\"}],"
							"\"properties\":[\"hs_object_id\"],\"limit\":1,\"after\":\"0\"}",
							HUBSYNC_QUOTA_SEARCH, hubsync_access_token());
	ok = hubsync_read_page(req, &pg) && pg.total >= 0;
	hubsync_http_release(req);
	if (!ok)
	{
		ereport(LOG,
				(errmsg("hubsync backfill of %s could not check its count against HubSpot: %s",
						bf.object_type, pg.error[0] ? pg.error : "the search gave no total"),
				 errhint("Call hubsync.backfill() again: it checks again.")));
		fail_resumable("the import could not be checked against HubSpot's count");
		bf.active = false;
		return;
	}
	if (local >= pg.total)
	{
		(void) save(NULL, -1, 0, -1, true, NULL);
		bf.active = false;
		return;
	}
	if (!bf.sequential)
	{
		ereport(LOG,
				(errmsg("hubsync backfill of %s has " INT64_FORMAT " records where HubSpot counts " INT64_FORMAT
						": reading the list again on HubSpot's own cursors",
						bf.object_type, local, pg.total),
				 errdetail("The id ranges the list was cut into did not give every record.")));
		bf.nstreams = 0;
		bf.sequential = true;
		open_stream(NULL);
		if (!save(NULL, -1, 0, -1, false, NULL))
			bf.active = false;
		return;
	}
	{
		char	   *error = psprintf("the import ended with " INT64_FORMAT " records here, HubSpot counts "
									 INT64_FORMAT, local, pg.total);

		ereport(LOG,
				(errmsg("hubsync backfill of %s failed: %s", bf.object_type, error),
				 errhint("See why records are missing (hubsync.status), then call hubsync.backfill() again.")));
		(void) save(NULL, -1, 0, -1, false, error);
		bf.active = false;
	}
}

/* hubsync_backfill_running -- a backfill is under way in this worker */
bool
hubsync_backfill_running(void)
{
	return bf.active;
}

/*
 * hubsync_backfill_wake -- new work was announced (hubsync.backfill()
 * wakes the workers): look for a backfill to start at the next tick,
 * not only once a second.
 */
void
hubsync_backfill_wake(void)
{
	bf.next_load_ms = 0;
}

/*
 * launch -- start a list request for every idle stream, up to limit in
 * flight and within the bulk quota.  Returns how long the quota asks to
 * wait (0 if it did not).
 */
static long
launch(int limit)
{
	long		wait = 0;
	bool		started = false;

	while (bf.inflight < limit)
	{
		Stream	   *s = NULL;
		HubsyncHttpRequest *req;
		MemoryContext old;
		char	   *url;
		int			i;

		/*
		 * The idle stream with the most left to read goes first: when the
		 * quota is what limits, the streams stay even and finish together,
		 * rather than one of them paging alone at the end.
		 */
		for (i = 0; i < bf.nstreams; i++)
		{
			Stream	   *c = &bf.streams[i];

			if (!c->done && !c->inflight && (s == NULL || remaining(c) > remaining(s)))
				s = c;
		}
		if (s == NULL)
			break;
		if ((wait = hubsync_quota_acquire(HUBSYNC_QUOTA_BULK)) > 0)
			break;
		url = hubsync_list_url(bf.api_name, s->after, false, bf.props, bf.nprops);
		/* the request outlives this tick (and the pull loop's memory context) */
		old = MemoryContextSwitchTo(TopMemoryContext);
		req = hubsync_request_new("GET", url, NULL, NULL);
		MemoryContextSwitchTo(old);
		req->owner = s;
		req->quota_class = (int) HUBSYNC_QUOTA_BULK;
		hubsync_http_start(req);
		s->inflight = true;
		bf.inflight++;
		started = true;
	}

	/*
	 * Put them on the wire now: curl would otherwise send them at the next
	 * wait, after the pages in hand are applied, which both idles the
	 * budget and sends them later than the quota counted them.
	 */
	if (started)
		(void) hubsync_http_wait(0);
	return wait;
}

/*
 * hubsync_backfill_tick -- move the running backfill on for up to
 * TICK_MS.  Returns true while a backfill is running.
 */
bool
hubsync_backfill_tick(void)
{
	int64		start = hubsync_now_ms();
	int			limit = Min(Max(hubsync_max_inflight, 1), MAX_STREAMS);

	if (!bf.active)
	{
		if (start < bf.next_load_ms)
			return false;
		bf.next_load_ms = start + 1000;
		drop_leftovers();
		if (pg_atomic_read_u32(&hubsync_shared->paused) != 0 || !load())
			return false;
	}
	hubsync_refresh_credentials();
	if (hubsync_auth_blocked())
		return false;
	if (bf.nstreams < 0)
		plan();
	if (bf.nstreams == 0 || all_done())
	{
		finish_verified();
		return bf.active;
	}
	bf.nbatch = 0;
	while (bf.active && hubsync_now_ms() - start < TICK_MS)
	{
		long		wait = launch(limit);
		HubsyncHttpRequest *req;

		if (bf.inflight == 0)
		{
			hubsync_api_wait(Min(Max(wait, 10), 200));
			continue;
		}
		(void) hubsync_http_wait(wait > 0 ? Min(wait, 100) : 100);
		while ((req = hubsync_http_next_done()) != NULL)
		{
			hubsync_observe_response(req);
			if (req->owner != NULL && bf.active)
				finish_page((Stream *) req->owner, req);
			hubsync_http_release(req);
			pfree(req);
			/* keep the requests flowing while the pages are applied */
			if (bf.active && bf.nbatch < MAX_BATCH)
				(void) launch(limit);
			if (bf.nbatch >= MAX_BATCH)
				break;
		}
		if (bf.active && bf.nbatch > 0)
		{
			bool		finished = all_done();

			if (!save_batch(false))
				bf.active = false;	/* read again after reloading: matching keeps it single */
			else if (finished)
				finish_verified();
		}
		hubsync_worker_handle_interrupts();
	}
	return bf.active;
}
