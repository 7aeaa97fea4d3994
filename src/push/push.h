/*-------------------------------------------------------------------------
 *
 * push.h
 *	  The push path: outbox batches, their HubSpot requests and outcomes.
 *
 * IDENTIFICATION
 *	  src/push/push.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_PUSH_H
#define HUBSYNC_PUSH_H

#include "hubspot/http.h"
#include "utils/jsonb.h"

typedef enum PushKind
{
	PUSH_UPSERT,				/* batch upsert by hubsync_id */
	PUSH_UPDATE,				/* batch update by HubSpot id */
	PUSH_ARCHIVE				/* batch archive by HubSpot id */
} PushKind;

typedef enum PushOutcomeKind
{
	OUTCOME_DONE,				/* HubSpot has it */
	OUTCOME_RETRY,				/* try again after delay_ms */
	OUTCOME_DEAD,				/* refused for good */
	OUTCOME_LINK,				/* record exists: link to hs_object_id */
	OUTCOME_ALONE,				/* resend without the rest of its batch */
	OUTCOME_GONE				/* deleted in HubSpot: change dropped, conflict kept */
} PushOutcomeKind;

typedef struct PushOutcome
{
	PushOutcomeKind kind;
	long		delay_ms;
	bool		count_attempt;
	int			status;
	char	   *category;
	char	   *message;
	char	   *hs_object_id;	/* DONE (upserts learn it) and LINK */
	char	   *updated_at;		/* DONE: HubSpot's updatedAt of the write */
	bool		conflict;		/* a unique-value conflict to resolve by
								 * search (push_resolve_conflicts) */
	char	   *conflict_property;	/* the property the error names, or NULL */
	char	   *conflict_existing;	/* the id the message gives, or NULL */
} PushOutcome;

/* One record's coalesced change, as returned by hubsync._claim() */
typedef struct PushRecord
{
	MemoryContext cxt;			/* its batch's context */
	char	   *hubsync_id;
	char	   *object_type;
	char	   *api_name;
	PushKind	kind;
	char	   *hs_object_id;	/* NULL when not known */
	char	   *props;			/* jsonb text; NULL for archives */
	char	   *outbox_ids;		/* bigint[] text */
	int			attempts;
	TimestampTz first_created;
	bool		solo;
	bool		realtime;		/* real-time lane: sent before bulk work */
	PushOutcome outcome;
} PushRecord;

#define PUSH_MAX_BATCH 100

/* Records of one object type and kind, sent in one request */
typedef struct PushBatch
{
	MemoryContext cxt;
	PushKind	kind;
	char	   *object_type;
	char	   *api_name;
	bool		solo;
	bool		realtime;		/* real-time lane: sent before bulk work */
	int			nrecords;
	PushRecord *records[PUSH_MAX_BATCH];
	HubsyncHttpRequest req;
} PushBatch;

extern const char *const push_kind_paths[];

/* push_outcome.c */
extern void push_record_outcomes(PushBatch *b);
extern void hubsync_release_leases(bool all);

/* push_assoc.c */
extern bool hubsync_push_associations(void);

/* push_conflict.c */
extern char *push_conflict_property(JsonbContainer *err, const char *message);
extern void push_mark_conflict(PushRecord *r, const char *property,
							   const char *existing);
extern void push_resolve_conflicts(PushBatch *b);

/* push_request.c */
extern char *push_build_body(PushBatch *batch);
extern void push_classify(PushBatch *batch);

#endif							/* HUBSYNC_PUSH_H */
