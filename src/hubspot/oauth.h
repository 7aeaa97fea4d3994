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

/* What a token endpoint answer says (hubsync_oauth_read_answer) */
typedef struct HubsyncOAuthAnswer
{
	HubsyncOAuthResult result;	/* DONE, REFUSED or RETRY_LATER */
	char	   *access;			/* a valid access token (DONE), else NULL */
	char	   *new_refresh;	/* a valid rotated refresh token, or NULL */
	double		expires_in;		/* seconds; 0 when missing or absurd */
	char	   *error;			/* REFUSED: "HTTP n" and status words only */
} HubsyncOAuthAnswer;

extern void hubsync_oauth_read_answer(long status, const char *response, size_t len,
									  HubsyncOAuthAnswer *a);
extern HubsyncOAuthResult hubsync_oauth_refresh(void);
extern void hubsync_oauth_forget_backoff(void);
extern void hubsync_oauth_client_credentials(const char *client_id, const char *client_secret,
											 const char *scope, HubsyncOAuthAnswer *a);

#endif							/* HUBSYNC_OAUTH_H */
