/*-------------------------------------------------------------------------
 *
 * owner_context.h
 *	  Running hubsync's own SQL with the rights of the owner of its tables,
 *	  safely, from inside an application's session.
 *
 * IDENTIFICATION
 *	  src/core/owner_context.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_OWNER_CONTEXT_H
#define HUBSYNC_OWNER_CONTEXT_H

#include "utils/rel.h"

/* What hubsync_become_owner changed, for hubsync_end_owner to restore */
typedef struct HubsyncOwnerContext
{
	Oid			save_userid;
	int			save_sec;
	int			save_nestlevel;
} HubsyncOwnerContext;

extern Oid	hubsync_tables_owner(void);
extern void hubsync_become_owner(HubsyncOwnerContext *ctx);
extern void hubsync_end_owner(HubsyncOwnerContext *ctx);
extern void hubsync_require_mirror_table(Relation rel, const char *trigger);
extern bool hubsync_restoring_a_dump(Relation rel);

#endif							/* HUBSYNC_OWNER_CONTEXT_H */
