/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  Settings of lead enrichment.
 *
 * IDENTIFICATION
 *	  src/enrich/settings.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_ENRICH_SETTINGS_H
#define HUBSYNC_ENRICH_SETTINGS_H

extern int	hubsync_enrichment_batch_interval;
extern int	hubsync_enrichment_max_inflight;

extern void hubsync_enrich_define_settings(void);

#endif							/* HUBSYNC_ENRICH_SETTINGS_H */
