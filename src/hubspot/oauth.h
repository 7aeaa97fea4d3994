/*-------------------------------------------------------------------------
 *
 * oauth.h
 *	  Refreshing the OAuth access token (see oauth.c).
 *
 * IDENTIFICATION
 *	  src/hubspot/oauth.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_OAUTH_H
#define HUBSYNC_OAUTH_H

typedef enum HubsyncOAuthResult
{
	HUBSYNC_OAUTH_DONE,			/* new token stored; credentials version moved */
	HUBSYNC_OAUTH_BUSY,			/* another process is refreshing */
	HUBSYNC_OAUTH_RETRY_LATER,	/* passing failure, or backing off */
	HUBSYNC_OAUTH_REFUSED		/* HubSpot refused the refresh token */
} HubsyncOAuthResult;

extern HubsyncOAuthResult hubsync_oauth_refresh(void);
extern void hubsync_oauth_forget_backoff(void);

#endif							/* HUBSYNC_OAUTH_H */
