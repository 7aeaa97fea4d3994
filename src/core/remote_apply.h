/*-------------------------------------------------------------------------
 *
 * remote_apply.h
 *	  Whether a write is hubsync's own application of HubSpot's changes.
 *
 * IDENTIFICATION
 *	  src/core/remote_apply.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_REMOTE_APPLY_H
#define HUBSYNC_REMOTE_APPLY_H

#include "access/htup.h"
#include "utils/uuid.h"

/*
 * Set only by hubsync's own workers (through hubsync_remote_apply_begin)
 * while they apply HubSpot's changes.  No SQL can set it.
 */
extern bool hubsync_applying_remote;

/* Who wrote the row a capture trigger fired for */
typedef enum HubsyncWriteKind
{
	HUBSYNC_WRITE_LOCAL,		/* the application: captured */
	HUBSYNC_WRITE_REMOTE,		/* hubsync applying HubSpot's change: not */
	HUBSYNC_WRITE_TRIGGER		/* a trigger fired by that: captured */
} HubsyncWriteKind;

/* the origin recorded for HUBSYNC_WRITE_TRIGGER */
#define HUBSYNC_TRIGGER_ORIGIN "trigger"

extern void hubsync_remote_apply_begin(void);
extern void hubsync_remote_apply_end(void);
extern HubsyncWriteKind hubsync_remote_write(void);

/*
 * What hubsync means to write to a row while it applies HubSpot's
 * changes: the row as its statement computed it, before the application's
 * BEFORE triggers ran (see remote_apply.c).
 */
extern void hubsync_remote_intend(Oid relid, const pg_uuid_t *hubsync_id,
								  HeapTupleHeader row);
extern HeapTupleHeader hubsync_remote_intent_take(Oid relid,
												  const pg_uuid_t *hubsync_id);

#endif							/* HUBSYNC_REMOTE_APPLY_H */
