/*-------------------------------------------------------------------------
 *
 * hubspot_api.h
 *	  What every HubSpot caller shares: the API root, the access token,
 *	  authentication state, the one way to make a request (quota, token,
 *	  send, observe) and the hubsync_id property.
 *
 * IDENTIFICATION
 *	  src/hubspot/hubspot_api.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_HUBSPOT_API_H
#define HUBSYNC_HUBSPOT_API_H

#include "core/quota.h"
#include "hubspot/http.h"

extern const char *hubsync_api_root(void);
extern void hubsync_refresh_credentials(void);
extern const char *hubsync_access_token(void);
extern bool hubsync_auth_blocked(void);
extern long hubsync_auth_wait_ms(long idle_ms);
extern void hubsync_observe_response(HubsyncHttpRequest *req);
/* hubsync_ensure_id_property's answer when hubsync_id exists but is not unique */
#define HUBSYNC_ID_PROPERTY_NOT_UNIQUE (-1L)
extern long hubsync_ensure_id_property(const char *api_name);
extern void hubsync_api_wait(long ms);
extern void hubsync_request_quota(HubsyncQuotaClass cls);
extern HubsyncHttpRequest *hubsync_request_new(const char *method, char *url,
											   char *body, const char *token);
extern HubsyncHttpRequest *hubsync_request_send(HubsyncQuotaClass cls,
												const char *method, char *url,
												char *body, const char *token);

#endif							/* HUBSYNC_HUBSPOT_API_H */
