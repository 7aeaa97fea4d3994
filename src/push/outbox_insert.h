/*-------------------------------------------------------------------------
 *
 * outbox_insert.h
 *	  Direct insertion of outbox rows by the capture trigger.
 *
 * IDENTIFICATION
 *	  src/push/outbox_insert.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_OUTBOX_INSERT_H
#define HUBSYNC_OUTBOX_INSERT_H

extern bool hubsync_outbox_insert_direct(const char *object_type, Datum hubsync_id,
										 bool hs_null, Datum hs_object_id,
										 const char *op, Datum changed,
										 const char *origin, int16 priority);

#endif							/* HUBSYNC_OUTBOX_INSERT_H */
