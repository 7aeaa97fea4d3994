/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  Settings of the HubSpot client: where the API is, request timeout,
 *	  requests in flight.
 *
 * IDENTIFICATION
 *	  src/hubspot/settings.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_HUBSPOT_SETTINGS_H
#define HUBSYNC_HUBSPOT_SETTINGS_H

extern char *hubsync_api_base_url;
extern bool hubsync_allow_insecure_http;
extern int	hubsync_max_inflight;
extern int	hubsync_request_timeout;

extern void hubsync_hubspot_define_settings(void);

#endif							/* HUBSYNC_HUBSPOT_SETTINGS_H */
