/*-------------------------------------------------------------------------
 *
 * api_paths.c
 *	  The one place that knows HubSpot's URL paths.
 *
 * HubSpot versions its APIs by date since March 2026: every family has
 * /{family}/{YYYY-MM}/... paths, a new version each March and September.
 * The older numbered paths (/crm/v3/..., /crm/v4/associations/...,
 * /oauth/v1/token) are what hubsync.api_version = 'legacy' selects; they
 * go unsupported in 2027.  Every request hubsync makes takes its path from
 * here (the C workers directly, the SQL side through hubsync._api_path()),
 * so a new version is one line in this file.
 *
 * IDENTIFICATION
 *	  src/hubspot/api_paths.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "fmgr.h"
#include "utils/builtins.h"
#include "hubspot/api_paths.h"
#include "hubspot/hubspot_api.h"

PG_FUNCTION_INFO_V1(hubsync_api_path);
PG_FUNCTION_INFO_V1(hubsync_api_path_in);

int			hubsync_api_version = HUBSYNC_API_2026_09;

/* hubsync_api_version_name -- the path segment of a dated version */
const char *
hubsync_api_version_name(void)
{
	switch ((HubsyncApiVersion) hubsync_api_version)
	{
		case HUBSYNC_API_2026_09:
			return "2026-09";
		case HUBSYNC_API_2026_03:
			return "2026-03";
		case HUBSYNC_API_LEGACY:
			break;
	}
	return "legacy";
}

/* hubsync_api_dated -- whether paths carry a date version */
bool
hubsync_api_dated(void)
{
	return hubsync_api_version != HUBSYNC_API_LEGACY;
}

/*
 * hubsync_api_errors_in_body -- whether batch answers carry per-record
 * errors inside a 200/201 body (2026-09) instead of a 207.  Parsers accept
 * both shapes whatever this says; it only tells which one to expect.
 */
bool
hubsync_api_errors_in_body(void)
{
	return hubsync_api_version == HUBSYNC_API_2026_09;
}

/* dated -- "/{family}/{v}{rest}" for the dated version selected */
static char *
dated(const char *family, const char *rest)
{
	return psprintf("/%s/%s%s", family, hubsync_api_version_name(), rest);
}

/* hubsync_path_objects -- /crm/objects/{v}/{type}{suffix} */
char *
hubsync_path_objects(const char *object_type, const char *suffix)
{
	if (!hubsync_api_dated())
		return psprintf("/crm/v3/objects/%s%s", object_type, suffix);
	return dated("crm/objects", psprintf("/%s%s", object_type, suffix));
}

/* hubsync_path_associations -- /crm/associations/{v}/{from}/{to}{suffix} */
char *
hubsync_path_associations(const char *from_type, const char *to_type,
						  const char *suffix)
{
	if (!hubsync_api_dated())
		return psprintf("/crm/v4/associations/%s/%s%s", from_type, to_type, suffix);
	return dated("crm/associations",
				 psprintf("/%s/%s%s", from_type, to_type, suffix));
}

/*
 * hubsync_path_association_labels -- the labels of a pair of object types,
 * /crm/associations/{v}/{from}/{to}/labels (HubSpot's Associations Schema
 * document; legacy: /crm/associations/v4/{from}/{to}/labels, the path of
 * its v4 document, not under /crm/v4/associations).
 */
char *
hubsync_path_association_labels(const char *from_type, const char *to_type)
{
	return psprintf("/crm/associations/%s/%s/%s/labels",
					hubsync_api_dated() ? hubsync_api_version_name() : "v4",
					from_type, to_type);
}

/* hubsync_path_properties -- /crm/properties/{v}/{type}{suffix} */
char *
hubsync_path_properties(const char *object_type, const char *suffix)
{
	if (!hubsync_api_dated())
		return psprintf("/crm/v3/properties/%s%s", object_type, suffix);
	return dated("crm/properties", psprintf("/%s%s", object_type, suffix));
}

/*
 * hubsync_path_schemas -- /crm-object-schemas/{v}/schemas[/{type}], the
 * custom-object schemas (legacy: /crm-object-schemas/v3/schemas, the path
 * the v3 document defines).
 */
char *
hubsync_path_schemas(const char *object_type)
{
	char	   *rest = object_type ? psprintf("/schemas/%s", object_type) : "/schemas";

	return psprintf("/crm-object-schemas/%s%s",
					hubsync_api_dated() ? hubsync_api_version_name() : "v3", rest);
}

/* hubsync_path_owners -- /crm/owners/{v}{suffix} */
char *
hubsync_path_owners(const char *suffix)
{
	if (!hubsync_api_dated())
		return psprintf("/crm/v3/owners%s", suffix);
	return dated("crm/owners", suffix);
}

/* hubsync_path_pipelines -- /crm/pipelines/{v}/{type}{suffix} */
char *
hubsync_path_pipelines(const char *object_type, const char *suffix)
{
	if (!hubsync_api_dated())
		return psprintf("/crm/v3/pipelines/%s%s", object_type, suffix);
	return dated("crm/pipelines", psprintf("/%s%s", object_type, suffix));
}

/* hubsync_path_oauth_token -- /oauth/{v}/token (legacy: /oauth/v1/token) */
char *
hubsync_path_oauth_token(void)
{
	return psprintf("/oauth/%s/token",
					hubsync_api_dated() ? hubsync_api_version_name() : "v1");
}

/*
 * The Webhooks Journal exists only in date-versioned form; 2026-03 is its
 * one generally available version (HubSpot's published OpenAPI document
 * for the Webhooks Journal, version 2026-03), so both dated settings of
 * hubsync.api_version use it.  Under 'legacy' it has no path: NULL, and
 * the caller says the journal needs a dated API version.
 */
#define HUBSYNC_JOURNAL_VERSION "2026-03"

/*
 * hubsync_path_journal -- /webhooks-journal/journal-local/2026-03{suffix}:
 * the journal of the one account hubsync syncs (the "local" variant), or
 * NULL under api_version = legacy.
 */
char *
hubsync_path_journal(const char *suffix)
{
	if (!hubsync_api_dated())
		return NULL;
	return psprintf("/webhooks-journal/journal-local/%s%s", HUBSYNC_JOURNAL_VERSION, suffix);
}

/*
 * hubsync_path_journal_subscriptions -- /webhooks-journal/subscriptions/
 * 2026-03{suffix}, or NULL under api_version = legacy.
 */
char *
hubsync_path_journal_subscriptions(const char *suffix)
{
	if (!hubsync_api_dated())
		return NULL;
	return psprintf("/webhooks-journal/subscriptions/%s%s", HUBSYNC_JOURNAL_VERSION, suffix);
}

/* hubsync_api_url -- the full URL of a path */
char *
hubsync_api_url(const char *path)
{
	return psprintf("%s%s", hubsync_api_root(), path);
}

/*
 * sql_path -- the path of a family named from SQL (arguments 0..2 of
 * fcinfo from the first one given).
 */
static char *
sql_path(FunctionCallInfo fcinfo, int first)
{
	char	   *family = text_to_cstring(PG_GETARG_TEXT_PP(first));
	char	   *type = PG_ARGISNULL(first + 1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(first + 1));
	char	   *suffix = PG_ARGISNULL(first + 2) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(first + 2));
	char	   *path = NULL;

	if (strcmp(family, "schemas") == 0)
		path = hubsync_path_schemas(type);
	else if (strcmp(family, "owners") == 0)
		path = hubsync_path_owners(suffix);
	else if (type == NULL)
		path = NULL;
	else if (strcmp(family, "objects") == 0)
		path = hubsync_path_objects(type, suffix);
	else if (strcmp(family, "properties") == 0)
		path = hubsync_path_properties(type, suffix);
	else if (strcmp(family, "pipelines") == 0)
		path = hubsync_path_pipelines(type, suffix);
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown HubSpot API family \"%s\"", family),
				 errhint("Use objects, properties, schemas, owners or pipelines.")));
	if (path == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("HubSpot API family \"%s\" needs an object type", family)));
	return path;
}

/*
 * hubsync._api_path(family, object_type, suffix) -- the same paths for the
 * SQL side (track_object, check): family is objects, properties, schemas,
 * owners or pipelines.
 */
Datum
hubsync_api_path(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(sql_path(fcinfo, 0)));
}

/*
 * hubsync._api_path_in(version, family, object_type, suffix) -- the path
 * in another API version than hubsync.api_version ('2026-09', '2026-03' or
 * 'legacy'): hubsync.check() tries the legacy family when the chosen one
 * answers 404.
 */
Datum
hubsync_api_path_in(PG_FUNCTION_ARGS)
{
	char	   *version = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			saved = hubsync_api_version;
	char	   *path;

	if (strcmp(version, "2026-09") == 0)
		hubsync_api_version = HUBSYNC_API_2026_09;
	else if (strcmp(version, "2026-03") == 0)
		hubsync_api_version = HUBSYNC_API_2026_03;
	else if (strcmp(version, "legacy") == 0)
		hubsync_api_version = HUBSYNC_API_LEGACY;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown HubSpot API version \"%s\"", version),
				 errhint("Use 2026-09, 2026-03 or legacy.")));
	PG_TRY();
	{
		path = sql_path(fcinfo, 1);
	}
	PG_FINALLY();
	{
		hubsync_api_version = saved;
	}
	PG_END_TRY();
	PG_RETURN_TEXT_P(cstring_to_text(path));
}
