/*-------------------------------------------------------------------------
 *
 * hubspot_get.c
 *	  One HubSpot GET from an ordinary backend, for the administrative
 *	  functions that must ask HubSpot before they can change the schema:
 *	  hubsync.track_object() reads an object schema, hubsync.map_property()
 *	  a property definition.
 *
 * These run rarely, only for the extension owner, and need HubSpot's
 * answer inside the caller's transaction (the answer decides the DDL), so
 * the request is made synchronously with a bounded timeout and counts
 * against the shared quota like any other call.  The token is read from
 * hubsync._credentials and never appears in errors or logs.
 *
 * IDENTIFICATION
 *	  src/hubspot/hubspot_get.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/wait_event.h"
#include "hubspot/http.h"
#include "util/json_util.h"
#include "core/quota.h"
#include "hubspot/hubspot_api.h"
#include "hubspot/settings.h"

PG_FUNCTION_INFO_V1(hubsync_hubspot_get);

/* backend_token -- the access token from hubsync._credentials, or NULL */
static char *
backend_token(void)
{
	char	   *t = NULL;

	SPI_connect();
	if (SPI_execute("SELECT coalesce(access_token, oauth_access_token) FROM hubsync._credentials",
					true, 1) == SPI_OK_SELECT && SPI_processed == 1)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (v != NULL && *v != '\0')
			t = SPI_palloc(strlen(v) + 1), strcpy(t, v);
	}
	SPI_finish();
	return t;
}

/*
 * hubsync_hubspot_get -- SQL hubsync._hubspot_get(path): GET path from
 * HubSpot, returned as {"status": N, "body": <JSON or null>}.  Status 0
 * means HubSpot could not be reached (the body then holds the error).
 */
Datum
hubsync_hubspot_get(PG_FUNCTION_ARGS)
{
	char	   *path = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *token = backend_token();
	HubsyncHttpRequest *req;
	StringInfoData out;
	Jsonb	   *body;

	if (token == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("hubsync has no HubSpot credentials"),
				 errhint("Set them with hubsync.set_credentials(access_token => ...).")));
	if (path[0] != '/')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("HubSpot path must start with /")));

	req = hubsync_request_send(HUBSYNC_QUOTA_REALTIME, "GET",
							   psprintf("%s%s", hubsync_api_root(), path), NULL, token);
	explicit_bzero(token, strlen(token));

	initStringInfo(&out);
	appendStringInfo(&out, "{\"status\":%ld,\"body\":", req->status);
	body = req->status ? hubsync_json_parse(req->response, req->response_len) : NULL;
	if (body != NULL)
		appendStringInfoString(&out, JsonbToCString(NULL, &body->root, -1));
	else if (req->status == 0)
		hubsync_json_escape(&out, req->error[0] ? req->error : "no response");
	else
		appendStringInfoString(&out, "null");
	appendStringInfoChar(&out, '}');
	hubsync_http_release(req);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data)));
}
