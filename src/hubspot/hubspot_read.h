/*-------------------------------------------------------------------------
 *
 * hubspot_read.h
 *	  Reading records from HubSpot for the poller, backfill and
 *	  reconciliation: search, list and association reads within the
 *	  shared quota, with retries; which inputs of a batch read failed.
 *
 * IDENTIFICATION
 *	  src/hubspot/hubspot_read.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_HUBSPOT_READ_H
#define HUBSYNC_HUBSPOT_READ_H

#include "hubspot/http.h"
#include "nodes/pg_list.h"
#include "core/quota.h"
#include "utils/jsonb.h"

/* One page read from HubSpot */
typedef struct HubsyncPage
{
	long		status;			/* HTTP status of the last attempt, 0 = none */
	char	   *results;		/* JSON text of the results array, or NULL */
	int			nresults;
	char	   *next_after;		/* paging.next.after, or NULL on the last page */
	int64		total;			/* search total, -1 if absent */
	char		error[300];		/* why it failed, empty on success */
	Jsonb	   *body;			/* the whole answer */
} HubsyncPage;

/*
 * The poller's ingest of a search page's records ($2, the answer's text)
 * for object type $1: a scalar subquery of the statement that also saves
 * the cursor.  Shared by poll.c and hubsync._parse_probe().
 */
#define POLL_INGEST_SQL \
	"(SELECT count(*) FROM hubsync._ingest_records($1, $2::jsonb -> 'results', 'poll'))"

/*
 * The association sweep's ingest of one batch read answer ($4) for the
 * inputs of its request ($3): an input with no result has no links, but
 * the inputs the answer says were not read ($5) are left out, rather than
 * having their local links taken away.  Shared by the poller (poll.c) and
 * hubsync._parse_probe().
 */
#define ASSOC_INGEST_SQL \
	"SELECT hubsync._ingest_associations($1, $2, " \
	"  ARRAY(SELECT (i ->> 'id')::int8 FROM jsonb_array_elements($3::jsonb -> 'inputs') i " \
	"        WHERE NOT (i ->> 'id') = ANY ($5)), " \
	"  $4 -> 'results')"

extern HubsyncHttpRequest *hubsync_read_call(const char *method, char *url, char *body,
											 HubsyncQuotaClass cls, const char *token);
extern bool hubsync_read_page(HubsyncHttpRequest *req, HubsyncPage *page);
extern char *hubsync_search_body(const char *lastmod, int64 lo, int64 hi, int64 eq_ms,
								 int64 after_id, bool by_id, int limit,
								 char **props, int nprops);
extern char *hubsync_list_url(const char *api_name, const char *after, bool archived,
							  char **props, int nprops);
extern int64 hubsync_record_ms(JsonbContainer *rec, const char *lastmod);
extern int64 hubsync_record_id(JsonbContainer *rec);
extern bool hubsync_read_answer_usable(Jsonb *body);
extern bool hubsync_read_failed_ids(Jsonb *answer, List **ids);
extern const char *hubsync_assoc_answer_problem(Jsonb *answer);
extern char *hubsync_worker_sql(const char *activity, const char *sql, int nargs,
								Oid *types, Datum *values, const char *nulls,
								char **result);

/* pull worker jobs (poll.c, backfill.c, reconcile.c); true = more to do now */
extern bool hubsync_poll_tick(void);
extern bool hubsync_backfill_tick(void);
extern bool hubsync_backfill_running(void);
extern void hubsync_backfill_wake(void);
extern bool hubsync_reconcile_tick(void);

#endif							/* HUBSYNC_HUBSPOT_READ_H */
