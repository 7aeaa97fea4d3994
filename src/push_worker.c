/*-------------------------------------------------------------------------
 *
 * push_worker.c
 *	  Main loop of the "hubsync push" background worker.
 *
 * IDENTIFICATION
 *	  src/push_worker.c
 *
 *-------------------------------------------------------------------------
 */
#include "hubsync.h"

#include "worker.h"

/*
 * hubsync_push_main -- wait for work; idle quietly while the extension is
 * missing or the server is a standby.
 */
void
hubsync_push_main(void)
{
	for (;;)
	{
		bool		ready = hubsync_worker_check_ready();

		hubsync_worker_wait(ready ? 1000L : 5000L);
	}
}
