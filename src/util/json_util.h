/*-------------------------------------------------------------------------
 *
 * json_util.h
 *	  Reading HubSpot's JSON with PostgreSQL's own parser and jsonb.
 *
 * IDENTIFICATION
 *	  src/util/json_util.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_JSON_UTIL_H
#define HUBSYNC_JSON_UTIL_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

extern Jsonb *hubsync_json_parse(const char *text, size_t len);
extern JsonbValue *hubsync_json_get(JsonbContainer *c, const char *key);
extern JsonbContainer *hubsync_json_get_container(JsonbContainer *c, const char *key);
extern char *hubsync_json_get_text(JsonbContainer *c, const char *key);
extern char *hubsync_json_value_text(JsonbValue *v);
extern int	hubsync_json_array_size(JsonbContainer *c);
extern JsonbContainer *hubsync_json_array_container(JsonbContainer *c, int i);
extern char *hubsync_json_array_text(JsonbContainer *c, int i);
extern void hubsync_json_escape(StringInfo buf, const char *s);

#endif							/* HUBSYNC_JSON_UTIL_H */
