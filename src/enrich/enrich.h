/*-------------------------------------------------------------------------
 *
 * enrich.h
 *	  Lead enrichment: what its trigger, worker and SQL functions share.
 *
 * IDENTIFICATION
 *	  src/enrich/enrich.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_ENRICH_H
#define HUBSYNC_ENRICH_H

extern void hubsync_enrich_wake_at_commit(void);

#endif							/* HUBSYNC_ENRICH_H */
