/*-------------------------------------------------------------------------
 *
 * api_paths.h
 *	  The one place that knows HubSpot's URL paths, for each API version
 *	  family hubsync.api_version selects.
 *
 * IDENTIFICATION
 *	  src/hubspot/api_paths.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_API_PATHS_H
#define HUBSYNC_API_PATHS_H

/* values of hubsync.api_version */
typedef enum HubsyncApiVersion
{
	HUBSYNC_API_2026_09,
	HUBSYNC_API_2026_03,
	HUBSYNC_API_LEGACY
} HubsyncApiVersion;

extern int	hubsync_api_version;

extern const char *hubsync_api_version_name(void);
extern bool hubsync_api_dated(void);
extern bool hubsync_api_errors_in_body(void);

/* paths (no host): each suffix is appended as given, e.g. "/batch/upsert" */
extern char *hubsync_path_objects(const char *object_type, const char *suffix);
extern char *hubsync_path_associations(const char *from_type, const char *to_type,
									   const char *suffix);
extern char *hubsync_path_association_labels(const char *from_type, const char *to_type);
extern char *hubsync_path_properties(const char *object_type, const char *suffix);
extern char *hubsync_path_schemas(const char *object_type);
extern char *hubsync_path_owners(const char *suffix);
extern char *hubsync_path_pipelines(const char *object_type, const char *suffix);
extern char *hubsync_path_oauth_token(void);
extern char *hubsync_path_journal(const char *suffix);
extern char *hubsync_path_journal_subscriptions(const char *suffix);

/* the full URL of a path: hubsync.api_base_url + path */
extern char *hubsync_api_url(const char *path);

#endif							/* HUBSYNC_API_PATHS_H */
