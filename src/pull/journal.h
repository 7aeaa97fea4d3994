/*-------------------------------------------------------------------------
 *
 * journal.h
 *	  The Webhooks Journal, hubsync's third inbound path: reading it
 *	  (journal.c) and keeping its subscriptions (journal_subscriptions.c),
 *	  both in the "hubsync pull" worker.
 *
 * IDENTIFICATION
 *	  src/pull/journal.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_JOURNAL_H
#define HUBSYNC_JOURNAL_H

#include "hubspot/http.h"

extern bool hubsync_journal_tick(void);
extern long hubsync_journal_wait_ms(long idle_ms);
extern HubsyncHttpRequest *hubsync_journal_call(const char *method, char *url, char *body);
extern void hubsync_journal_sync_subscriptions(void);

#endif							/* HUBSYNC_JOURNAL_H */
