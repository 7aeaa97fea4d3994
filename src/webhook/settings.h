/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  Settings of the embedded webhook receiver.
 *
 * IDENTIFICATION
 *	  src/webhook/settings.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_WEBHOOK_SETTINGS_H
#define HUBSYNC_WEBHOOK_SETTINGS_H

extern char *hubsync_webhook_listen_address;
extern char *hubsync_webhook_public_url;
extern int	hubsync_webhook_max_body;
extern int	hubsync_webhook_max_age;
extern int	hubsync_webhook_max_connections;
extern int	hubsync_webhook_max_header_size;
extern int	hubsync_webhook_timeout;
extern int	hubsync_webhook_header_timeout;
extern int	hubsync_webhook_max_connections_per_address;
extern bool hubsync_webhook_legacy_signatures;
extern char *hubsync_webhook_tls_cert_file;
extern char *hubsync_webhook_tls_key_file;
extern int	hubsync_metrics_port;
extern char *hubsync_metrics_listen_address;

extern void hubsync_webhook_define_settings(void);

#endif							/* HUBSYNC_WEBHOOK_SETTINGS_H */
