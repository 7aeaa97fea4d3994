/*-------------------------------------------------------------------------
 *
 * hubspot_api.h
 *	  What every HubSpot caller in a worker shares: the API root, the
 *	  access token, authentication state and the hubsync_id property.
 *
 * IDENTIFICATION
 *	  src/hubspot/hubspot_api.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_HUBSPOT_API_H
#define HUBSYNC_HUBSPOT_API_H

#include "hubspot/http.h"

extern const char *hubsync_api_root(void);
extern void hubsync_refresh_credentials(void);
extern const char *hubsync_access_token(void);
extern bool hubsync_auth_blocked(void);
extern long hubsync_auth_wait_ms(long idle_ms);
extern void hubsync_observe_response(HubsyncHttpRequest *req);
extern long hubsync_ensure_id_property(const char *api_name);
extern HubsyncHttpRequest *hubsync_api_call(const char *method, char *url, char *body);

#endif							/* HUBSYNC_HUBSPOT_API_H */
