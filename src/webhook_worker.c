/*-------------------------------------------------------------------------
 *
 * webhook_worker.c
 *	  Main loop of the "hubsync webhook" background worker.
 *
 * IDENTIFICATION
 *	  src/webhook_worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "hubsync.h"

#include "worker.h"

/*
 * hubsync_webhook_main -- wait for work; idle quietly while the extension is
 * missing or the server is a standby.
 */
void
hubsync_webhook_main(void)
{
	for (;;)
	{
		(void) hubsync_worker_check_ready();
		hubsync_worker_wait(5000L);
	}
}
