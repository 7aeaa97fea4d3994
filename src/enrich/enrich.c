/*-------------------------------------------------------------------------
 *
 * enrich.c
 *	  The SQL side of lead enrichment written in C: checking a rule's
 *	  condition before it is compiled, and waking the enrich worker when a
 *	  transaction that queued real-time enrichments commits.
 *
 * A rule's condition is a SQL boolean expression that hubsync splices into
 * a query evaluated against the mirror row.  Only the extension owner may
 * create rules, but the text is still checked here, with PostgreSQL's own
 * parser, to be exactly one scalar expression: no second statement, no
 * FROM/WHERE smuggled in, no subquery, no alias.  Wrapped in parentheses
 * it then cannot change the shape of the query it is spliced into.
 *
 * IDENTIFICATION
 *	  src/enrich/enrich.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "core/at_commit.h"
#include "hubspot/settings.h"
#include "util/parse_util.h"

PG_FUNCTION_INFO_V1(hubsync_wake_enrich);
PG_FUNCTION_INFO_V1(hubsync_enrich_check_condition);
PG_FUNCTION_INFO_V1(hubsync_enrich_check_endpoint);

/*
 * hubsync_wake_enrich -- SQL: wake the enrich worker when the calling
 * transaction commits.  Cheap: a flag now, and at commit an atomic
 * exchange plus a latch only if the worker sleeps.
 */
Datum
hubsync_wake_enrich(PG_FUNCTION_ARGS)
{
	hubsync_wake_at_commit(HUBSYNC_WORKER_ENRICH);
	PG_RETURN_VOID();
}

/*
 * hubsync_enrich_check_endpoint -- SQL hubsync._enrich_check_endpoint(url):
 * refuse a provider endpoint that would carry its API key (and the
 * records' data) in clear text to another machine, unless
 * hubsync.allow_insecure_http is on.  Checked again at each request
 * (http.c), in case the setting changes later.
 */
Datum
hubsync_enrich_check_endpoint(PG_FUNCTION_ARGS)
{
	char	   *url = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (!hubsync_allow_insecure_http && hubsync_url_cleartext_remote(url))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("enrichment provider endpoint \"%s\" would send the API key in clear text", url),
				 errdetail("Plain http:// is accepted only to a loopback host (localhost, 127.0.0.0/8, [::1])."),
				 errhint("Use an https:// endpoint, or have a superuser set hubsync.allow_insecure_http = on if the network is trusted.")));
	PG_RETURN_VOID();
}

/* refuse_condition -- the one error every malformed condition gets */
static void
refuse_condition(const char *cond, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid enrichment rule condition: %s", why),
			 errdetail("Condition: %s", cond),
			 errhint("Write one SQL boolean expression over the mirror table's columns, such as lifecyclestage = 'salesqualifiedlead' or properties->>'form' = 'demo request'.")));
}

/* sublink_walker -- true when the expression contains a subquery */
static bool
sublink_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, SubLink))
		return true;
	return raw_expression_tree_walker(node, sublink_walker, context);
}

/*
 * parse_condition -- raw-parse "SELECT <cond>"; a syntax error becomes our
 * own error naming the condition (the parser's position would point into
 * a query the user never wrote).
 */
static List *
parse_condition(const char *cond)
{
	MemoryContext cxt = CurrentMemoryContext;
	List	   *volatile stmts = NIL;
	char	   *volatile why = NULL;

	PG_TRY();
	{
		stmts = raw_parser(psprintf("SELECT %s", cond), RAW_PARSE_DEFAULT);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		why = edata->message;
	}
	PG_END_TRY();
	if (why != NULL)
		refuse_condition(cond, why);
	return stmts;
}

/*
 * hubsync_enrich_check_condition -- SQL: raise an error unless the text is
 * exactly one scalar SQL expression without subqueries.
 */
Datum
hubsync_enrich_check_condition(PG_FUNCTION_ARGS)
{
	char	   *cond = text_to_cstring(PG_GETARG_TEXT_PP(0));
	List	   *stmts;
	RawStmt    *raw;
	SelectStmt *sel;
	ResTarget  *target;

	if (strchr(cond, ';') != NULL)
		refuse_condition(cond, "it contains a semicolon");
	if (strstr(cond, "--") != NULL || strstr(cond, "/*") != NULL)
		refuse_condition(cond, "it contains a comment");
	stmts = parse_condition(cond);
	if (list_length(stmts) != 1)
		refuse_condition(cond, "it is not a single expression");
	raw = linitial_node(RawStmt, stmts);
	if (!IsA(raw->stmt, SelectStmt))
		refuse_condition(cond, "it is not an expression");
	sel = (SelectStmt *) raw->stmt;
	if (sel->op != SETOP_NONE || sel->fromClause != NIL ||
		sel->whereClause != NULL || sel->groupClause != NIL ||
		sel->havingClause != NULL || sel->windowClause != NIL ||
		sel->sortClause != NIL || sel->limitCount != NULL ||
		sel->limitOffset != NULL || sel->lockingClause != NIL ||
		sel->withClause != NULL || sel->distinctClause != NIL ||
		sel->intoClause != NULL || sel->valuesLists != NIL ||
		list_length(sel->targetList) != 1)
		refuse_condition(cond, "it is not a single expression");
	target = linitial_node(ResTarget, sel->targetList);
	if (target->name != NULL)
		refuse_condition(cond, "it has an alias");
	if (sublink_walker(target->val, NULL))
		refuse_condition(cond, "subqueries are not allowed");
	PG_RETURN_VOID();
}
