/*-------------------------------------------------------------------------
 *
 * receiver.h
 *	  The embedded webhook receiver (libmicrohttpd, external select mode).
 *
 * IDENTIFICATION
 *	  src/webhook/receiver.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_RECEIVER_H
#define HUBSYNC_RECEIVER_H

struct sockaddr_storage;

extern bool hubsync_listen_address(const char *host, int port,
								   const char *daemon_name, const char *setting,
								   bool warn, struct sockaddr_storage *ss,
								   unsigned int *mhd_flags);
extern bool hubsync_receiver_configure(void);
extern void hubsync_receiver_stop(void);
extern bool hubsync_receiver_running(void);
extern void hubsync_receiver_wait(long max_timeout_ms);
extern void hubsync_receiver_run(void);

#endif							/* HUBSYNC_RECEIVER_H */
