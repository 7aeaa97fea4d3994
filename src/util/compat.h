/*-------------------------------------------------------------------------
 *
 * compat.h
 *	  Every PostgreSQL version difference hubsync cares about, in one place.
 *	  The floor is PostgreSQL 15.
 *
 * IDENTIFICATION
 *	  src/util/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_COMPAT_H
#define HUBSYNC_COMPAT_H

#include "storage/latch.h"
#include "utils/memutils.h"

#if PG_VERSION_NUM < 150000
#error "hubsync needs PostgreSQL 15 or later"
#endif

/* PostgreSQL 17 ties wait event sets to a resource owner */
#if PG_VERSION_NUM >= 170000
#include "utils/resowner.h"
#define hubsync_create_wait_event_set(nevents) \
	CreateWaitEventSet(NULL, (nevents))
#else
#define hubsync_create_wait_event_set(nevents) \
	CreateWaitEventSet(CurrentMemoryContext, (nevents))
#endif

/* PostgreSQL 16 lets JSON semantic actions return an error code */
#if PG_VERSION_NUM >= 160000
#define HUBSYNC_JSON_SEM_RETURN JsonParseErrorType
#define HUBSYNC_JSON_SEM_DONE JSON_SUCCESS
#else
#define HUBSYNC_JSON_SEM_RETURN void
#define HUBSYNC_JSON_SEM_DONE
#endif

#endif							/* HUBSYNC_COMPAT_H */
