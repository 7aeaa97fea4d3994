/*-------------------------------------------------------------------------
 *
 * inbox.h
 *	  Checking webhook deliveries and storing their events in
 *	  hubsync.inbox: shared by the receiver and hubsync.ingest_webhook().
 *
 * IDENTIFICATION
 *	  src/webhook/inbox.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_INBOX_H
#define HUBSYNC_INBOX_H

#include "utils/jsonb.h"

/* Outcome of checking one delivery; each maps to an HTTP status */
typedef enum HubsyncIngestResult
{
	HUBSYNC_INGEST_OK = 0,		/* 200 */
	HUBSYNC_INGEST_NO_SIGNATURE,	/* 401 */
	HUBSYNC_INGEST_BAD_SIGNATURE,	/* 401 */
	HUBSYNC_INGEST_BAD_TIMESTAMP,	/* 401 */
	HUBSYNC_INGEST_TOO_LARGE,	/* 413 */
	HUBSYNC_INGEST_BAD_METHOD,	/* 405 */
	HUBSYNC_INGEST_BAD_PATH,	/* 404 */
	HUBSYNC_INGEST_MALFORMED,	/* 400 */
	HUBSYNC_INGEST_NO_SECRET,	/* 503: hubsync has no client secret */
	HUBSYNC_INGEST_LEGACY_SIGNATURE /* 401: v1/v2 only, and they are off */
} HubsyncIngestResult;

/* A delivery as received */
typedef struct HubsyncDelivery
{
	const char *method;
	const char *uri;			/* full URL that was signed (public URL) */
	const char *body;
	size_t		body_len;
	const char *signature_v3;	/* X-HubSpot-Signature-v3, or NULL */
	const char *timestamp;		/* X-HubSpot-Request-Timestamp, or NULL */
	const char *signature;		/* X-HubSpot-Signature (v1/v2), or NULL */
	const char *signature_version;	/* X-HubSpot-Signature-Version */
} HubsyncDelivery;

extern int	hubsync_ingest_http_status(HubsyncIngestResult r);
extern const char *hubsync_ingest_message(HubsyncIngestResult r);
extern HubsyncIngestResult hubsync_inbox_check(const HubsyncDelivery *d,
											   const char *secret,
											   Jsonb **events);
extern int	hubsync_inbox_store(Jsonb *events, int *duplicates);
extern void hubsync_inbox_count_stored(int stored, int duplicates);
extern char *hubsync_inbox_read_secret(void);

#endif							/* HUBSYNC_INBOX_H */
