/*-------------------------------------------------------------------------
 *
 * owner_context.c
 *	  Running hubsync's own SQL with the rights of the owner of its tables,
 *	  safely, from inside an application's session.
 *
 * The mirror tables' triggers run in the application's session but must
 * write tables the application cannot (the outbox, the enrichment jobs).
 * They switch to the tables' owner -- usually a superuser -- and that is
 * only safe when nothing of the caller's can run meanwhile:
 *
 *	- SECURITY_RESTRICTED_OPERATION keeps out the caller's session state
 *	  (no SET ROLE, no temporary objects created on our behalf);
 *	- search_path is pinned to "pg_catalog, pg_temp" for the duration, so
 *	  an operator or function the caller defined in a schema of its own
 *	  (say app.=(text, text)) is never picked instead of the built-in one.
 *	  pg_temp last: temporary relations are never found before catalog
 *	  ones, and functions and operators are never looked up there at all.
 *
 * The triggers also accept only hubsync's own mirror tables (the relation
 * itself, not its name), so nobody can make hubsync queue a change for a
 * table of their own, and the pg_restore exemption counts only for a role
 * that owns the table being restored.
 *
 * IDENTIFICATION
 *	  src/core/owner_context.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "core/owner_context.h"

#define HUBSYNC_PINNED_SEARCH_PATH "pg_catalog, pg_temp"

static Oid	tables_owner = InvalidOid;

/*
 * hubsync_tables_owner -- the role that owns hubsync's tables (the owner
 * of hubsync.outbox), looked up once per backend.
 */
Oid
hubsync_tables_owner(void)
{
	if (!OidIsValid(tables_owner))
	{
		Oid			outbox = RangeVarGetRelid(makeRangeVar("hubsync", "outbox", -1),
											  NoLock, false);
		HeapTuple	tp = SearchSysCache1(RELOID, ObjectIdGetDatum(outbox));

		if (!HeapTupleIsValid(tp))
			elog(ERROR, "cache lookup failed for relation %u", outbox);
		tables_owner = ((Form_pg_class) GETSTRUCT(tp))->relowner;
		ReleaseSysCache(tp);
	}
	return tables_owner;
}

/*
 * hubsync_become_owner -- act as the owner of hubsync's tables, under
 * SECURITY_RESTRICTED_OPERATION and with search_path pinned, until
 * hubsync_end_owner.  An error in between is unwound by the (sub)
 * transaction abort, which restores both the user and the setting.
 */
void
hubsync_become_owner(HubsyncOwnerContext *ctx)
{
	Oid			owner = hubsync_tables_owner();

	GetUserIdAndSecContext(&ctx->save_userid, &ctx->save_sec);
	SetUserIdAndSecContext(owner,
						   ctx->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	ctx->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", HUBSYNC_PINNED_SEARCH_PATH,
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE,
							 true, 0, false);
}

/* hubsync_end_owner -- back to the caller's user and search_path */
void
hubsync_end_owner(HubsyncOwnerContext *ctx)
{
	AtEOXact_GUC(true, ctx->save_nestlevel);
	SetUserIdAndSecContext(ctx->save_userid, ctx->save_sec);
}

/*
 * hubsync_require_mirror_table -- refuse to run trigger on anything but a
 * table of schema hubspot: a look-alike table elsewhere (a TEMP table
 * named contacts, say) must never make hubsync send anything to HubSpot.
 * Only the owner can create tables in schema hubspot.
 */
void
hubsync_require_mirror_table(Relation rel, const char *trigger)
{
	Oid			hubspot = get_namespace_oid("hubspot", true);

	if (!OidIsValid(hubspot) || RelationGetNamespace(rel) != hubspot ||
		rel->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s may only run on hubsync's mirror tables",
						trigger),
				 errdetail("Table \"%s.%s\" is not in schema hubspot.",
						   get_namespace_name(RelationGetNamespace(rel)),
						   RelationGetRelationName(rel)),
				 errhint("Mirror tables are created by CREATE EXTENSION hubsync and hubsync.track_object().")));
}

/*
 * hubsync_restoring_a_dump -- pg_restore brings back the mirror and
 * hubsync's queues together; capturing the restored rows would push them
 * a second time.  pg_restore announces itself in application_name.
 * Anyone can set application_name, so it counts only for a role that
 * owns the table (a restore runs as the owner or a superuser): a role
 * that only writes the mirror cannot use it to keep a change from
 * HubSpot or from enrichment.
 */
bool
hubsync_restoring_a_dump(Relation rel)
{
	return application_name != NULL &&
		strcmp(application_name, "pg_restore") == 0 &&
		has_privs_of_role(GetUserId(), rel->rd_rel->relowner);
}
