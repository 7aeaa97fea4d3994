/*-------------------------------------------------------------------------
 *
 * journal_store.c
 *	  hubsync._journal_inbox_store(): the receiver's storage of events
 *	  (hubsync_inbox_store: every column, the dedupe and change keys) for
 *	  the events the pull worker reads from the Webhooks Journal
 *	  (src/pull/journal.c calls it through SQL, in hubsync._journal_save,
 *	  in the transaction that moves the journal offset).
 *
 * IDENTIFICATION
 *	  src/webhook/journal_store.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "fmgr.h"
#include "utils/jsonb.h"
#include "util/json_util.h"
#include "webhook/inbox.h"

PG_FUNCTION_INFO_V1(hubsync_journal_inbox_store);

/*
 * hubsync._journal_inbox_store(events jsonb) -- store webhook-shaped
 * events (hubsync._journal_events' answer) in the inbox exactly as the
 * receiver does; returns how many were new.  Checks each is an object with
 * a string subscriptionType and an occurredAt, as hubsync_inbox_store
 * expects.
 */
Datum
hubsync_journal_inbox_store(PG_FUNCTION_ARGS)
{
	Jsonb	   *events = PG_GETARG_JSONB_P(0);
	int			duplicates = 0;
	int			n,
				i;

	if (!JB_ROOT_IS_ARRAY(events) || JB_ROOT_IS_SCALAR(events))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("journal events must be a JSON array")));
	n = hubsync_json_array_size(&events->root);
	for (i = 0; i < n; i++)
	{
		JsonbContainer *ev = hubsync_json_array_container(&events->root, i);
		JsonbValue *v;

		v = ev && JsonContainerIsObject(ev) ? hubsync_json_get(ev, "subscriptionType") : NULL;
		if (v == NULL || v->type != jbvString ||
			(v = hubsync_json_get(ev, "occurredAt")) == NULL || v->type != jbvNumeric)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("journal event %d is not a webhook-shaped event", i + 1),
					 errhint("Pass the answer of hubsync._journal_events().")));
	}
	PG_RETURN_INT32(hubsync_inbox_store(events, &duplicates));
}
