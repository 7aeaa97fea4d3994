/*-------------------------------------------------------------------------
 *
 * hubsync.c
 *	  Module entry point: settings, shared memory and background workers.
 *
 * The settings are defined in every backend that loads the library, so
 * that CREATE EXTENSION and the capture triggers work even when the
 * library is not preloaded.  Shared memory and the workers exist only when
 * it is listed in shared_preload_libraries; SQL functions that need them
 * say so with a hint.
 *
 * IDENTIFICATION
 *	  src/hubsync.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "bgw/worker.h"
#include "hubspot/settings.h"
#include "push/settings.h"
#include "pull/settings.h"
#include "webhook/settings.h"
#include "enrich/settings.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * _PG_init -- define settings; when preloaded, ask for shared memory and
 * register the background workers.
 */
void
_PG_init(void)
{
	if (IsBinaryUpgrade)
		return;

	hubsync_core_define_settings();
	hubsync_hubspot_define_settings();
	hubsync_push_define_settings();
	hubsync_pull_define_settings();
	hubsync_webhook_define_settings();
	hubsync_enrich_define_settings();
	MarkGUCPrefixReserved("hubsync");

	if (!process_shared_preload_libraries_in_progress)
		return;

	hubsync_shmem_init_hooks();
	hubsync_register_workers();
}
