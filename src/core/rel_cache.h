/*-------------------------------------------------------------------------
 *
 * rel_cache.h
 *	  Per-backend caches of what a trigger knows about each table, kept
 *	  until the table changes.
 *
 * IDENTIFICATION
 *	  src/core/rel_cache.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_REL_CACHE_H
#define HUBSYNC_REL_CACHE_H

#include "utils/hsearch.h"
#include "utils/rel.h"

/* The first member of every cached entry */
typedef struct HubsyncRelCacheEntry
{
	Oid			relid;			/* hash key */
	bool		valid;			/* false: load again before use */
} HubsyncRelCacheEntry;

/* One cache: declare it static with its name and entry size */
typedef struct HubsyncRelCache
{
	const char *name;
	Size		entrysize;
	HTAB	   *hash;			/* made on first use */
} HubsyncRelCache;

extern void *hubsync_rel_cache_entry(HubsyncRelCache *cache, Relation rel);

#endif							/* HUBSYNC_REL_CACHE_H */
