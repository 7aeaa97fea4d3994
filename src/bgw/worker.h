/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  Helpers shared by the hubsync background workers' main loops.
 *
 * IDENTIFICATION
 *	  src/bgw/worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_WORKER_H
#define HUBSYNC_WORKER_H

#include "core/hubsync.h"

#include "executor/spi.h"

extern HubsyncWorkerKind hubsync_my_worker_kind;

extern void hubsync_worker_set_state(HubsyncWorkerState state);
extern bool hubsync_worker_check_ready(void);
extern bool hubsync_worker_handle_interrupts(void);
extern bool hubsync_worker_wait(long timeout_ms);
extern void hubsync_worker_pause(long timeout_ms);
extern bool hubsync_worker_begin_sleep(void);
extern void hubsync_worker_end_sleep(void);
extern bool hubsync_worker_consume_wake(void);
extern bool hubsync_worker_begin_xact(const char *activity);
extern SPIPlanPtr hubsync_keep_plan(SPIPlanPtr *plan, const char *sql, int nargs,
									Oid *types);
extern void hubsync_worker_end_xact(void);
extern bool hubsync_transient_error(int sqlerrcode);
extern ErrorData *hubsync_in_subtransaction(void (*fn) (void *), void *arg);

extern void hubsync_register_workers(void);
extern void hubsync_worker_start(HubsyncWorkerKind kind);

/* enrich_worker.c: a provider's answer to hubsync._enrich_result() */
struct HubsyncHttpRequest;
extern void hubsync_enrich_record_result(Datum job_ids, bool batch,
										 struct HubsyncHttpRequest *req);

#endif							/* HUBSYNC_WORKER_H */
