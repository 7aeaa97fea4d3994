/*-------------------------------------------------------------------------
 *
 * rel_cache.c
 *	  Per-backend caches of what a trigger knows about each table, kept
 *	  until the table changes.
 *
 * The capture and enrichment triggers read their table's set-up (columns,
 * owners, rules) once per backend and keep it in a hash table in
 * CacheMemoryContext.  A relcache invalidation of the table (ALTER TABLE,
 * or hubsync._invalidate_mirror after set_owner, map_property or a rule
 * change) marks its entry invalid, and the trigger loads it again at its
 * next use.
 *
 * IDENTIFICATION
 *	  src/core/rel_cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "utils/inval.h"
#include "utils/memutils.h"
#include "core/rel_cache.h"

/*
 * rel_cache_invalidate -- a relcache callback: mark the entry of relid
 * (every entry, for InvalidOid) as needing a reload.
 */
static void
rel_cache_invalidate(Datum arg, Oid relid)
{
	HubsyncRelCache *cache = (HubsyncRelCache *) DatumGetPointer(arg);
	HASH_SEQ_STATUS status;
	HubsyncRelCacheEntry *entry;

	hash_seq_init(&status, cache->hash);
	while ((entry = hash_seq_search(&status)) != NULL)
		if (relid == InvalidOid || entry->relid == relid)
			entry->valid = false;
}

/*
 * hubsync_rel_cache_entry -- the cache's entry for a table, zeroed and
 * invalid when new; the caller loads it when it is not valid.
 */
void *
hubsync_rel_cache_entry(HubsyncRelCache *cache, Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	HubsyncRelCacheEntry *entry;
	bool		found;

	if (cache->hash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = cache->entrysize;
		ctl.hcxt = CacheMemoryContext;
		cache->hash = hash_create(cache->name, 16, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		CacheRegisterRelcacheCallback(rel_cache_invalidate,
									  PointerGetDatum(cache));
	}
	entry = hash_search(cache->hash, &relid, HASH_ENTER, &found);
	if (!found)
	{
		memset((char *) entry + sizeof(Oid), 0, cache->entrysize - sizeof(Oid));
		entry->valid = false;
	}
	return entry;
}
