/*-------------------------------------------------------------------------
 *
 * webhook_worker.c
 *	  Main loop of the "hubsync webhook" background worker: it runs the
 *	  embedded receiver (receiver.c) while hubsync is ready and
 *	  hubsync.webhook_port is set, and the Prometheus endpoint (metrics.c)
 *	  while hubsync.metrics_port is set; it rebinds both on SIGHUP.
 *
 * IDENTIFICATION
 *	  src/webhook/webhook_worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "storage/ipc.h"

#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "webhook/metrics.h"
#include "webhook/receiver.h"
#include "bgw/worker.h"

PGDLLEXPORT void hubsync_webhook_worker_main(Datum main_arg) pg_attribute_noreturn();

/* how often the readiness check (extension installed, primary) reruns */
#define HUBSYNC_WEBHOOK_RECHECK_MS 5000

/*
 * webhook_loop -- serve webhooks; idle quietly while the extension
 * is missing or the server is a standby.  Never returns.
 */
static void
webhook_loop(void)
{
	MemoryContext loop_cxt = AllocSetContextCreate(TopMemoryContext,
												   "hubsync webhook loop",
												   ALLOCSET_DEFAULT_SIZES);
	int64		next_check = 0;
	bool		ready = false;

	for (;;)
	{
		int64		now = hubsync_now_ms();

		MemoryContextSwitchTo(loop_cxt);
		/* while idle, every wake-up (say CREATE EXTENSION) re-checks */
		if (!ready || now >= next_check)
		{
			ready = hubsync_worker_check_ready();
			next_check = now + HUBSYNC_WEBHOOK_RECHECK_MS;
			if (ready)
				hubsync_receiver_configure();
			else
				hubsync_receiver_stop();
			/* the metrics endpoint also serves while hubsync is idle */
			hubsync_metrics_configure();
		}

		hubsync_receiver_wait(ready ? HUBSYNC_WEBHOOK_RECHECK_MS : 5000L);

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			next_check = 0;		/* start, stop or rebind at once */
			continue;
		}
		if (ready)
			hubsync_receiver_run();
		/* after the deliveries: a scrape never delays their answers */
		hubsync_metrics_run(ready);
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(loop_cxt);
	}
}

/*
 * hubsync_webhook_worker_main -- the webhook worker's entry point, registered by
 * name (bgw_function_name): the common start-up, then its loop.
 */
void
hubsync_webhook_worker_main(Datum main_arg)
{
	hubsync_worker_start(HUBSYNC_WORKER_WEBHOOK);
	webhook_loop();
	/* the loop never returns; if it did, let the postmaster restart us */
	proc_exit(1);
}
