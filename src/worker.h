/*-------------------------------------------------------------------------
 *
 * worker.h
 *	  Helpers shared by the hubsync background workers' main loops.
 *
 * IDENTIFICATION
 *	  src/worker.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_WORKER_H
#define HUBSYNC_WORKER_H

#include "hubsync.h"

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

/* each worker kind's main loop; none returns */
extern void hubsync_push_main(void) pg_attribute_noreturn();
extern void hubsync_pull_main(void) pg_attribute_noreturn();
extern void hubsync_webhook_main(void) pg_attribute_noreturn();
extern void hubsync_enrich_main(void) pg_attribute_noreturn();

/* enrich_worker.c: a provider's answer to hubsync._enrich_result() */
struct HubsyncHttpRequest;
extern void hubsync_enrich_record_result(Datum job_ids, bool batch,
										 struct HubsyncHttpRequest *req);

#endif							/* HUBSYNC_WORKER_H */
