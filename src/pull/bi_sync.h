/*-------------------------------------------------------------------------
 *
 * bi_sync.h
 *	  The pull worker's BI jobs: copying owners and pipelines from HubSpot
 *	  (metadata_sync.c) and the property history pass after a backfill
 *	  (stage_history.c).
 *
 * IDENTIFICATION
 *	  src/pull/bi_sync.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_BI_SYNC_H
#define HUBSYNC_BI_SYNC_H

/* true = more to do now */
extern bool hubsync_metadata_tick(void);
extern bool hubsync_history_tick(void);

#endif							/* HUBSYNC_BI_SYNC_H */
