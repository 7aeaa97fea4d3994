/*-------------------------------------------------------------------------
 *
 * parse_util.h
 *	  Pure C checks of text that comes from the network (HubSpot answers,
 *	  webhook bodies), with no server dependency, so the fuzzing harnesses
 *	  under test/fuzz/ link the very same code.
 *
 * IDENTIFICATION
 *	  src/util/parse_util.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef HUBSYNC_PARSE_UTIL_H
#define HUBSYNC_PARSE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* deepest nesting of arrays and objects accepted from the network */
#define HUBSYNC_JSON_MAX_DEPTH 256

/* longest paging cursor (paging.next.after) hubsync sends back */
#define HUBSYNC_MAX_CURSOR_LEN 1024

/* longest wait a Retry-After header can ask for, in seconds (one day) */
#define HUBSYNC_MAX_RETRY_AFTER_S 86400

extern bool hubsync_json_depth_ok(const char *text, size_t len, int max_depth);
extern bool hubsync_valid_object_id(const char *id);
extern const char *hubsync_existing_id(const char *message, size_t *len);
extern size_t hubsync_safe_word(const char *in, char *out, size_t outsize);
extern bool hubsync_token_ok(const char *token, size_t max_len);
extern bool hubsync_url_has_http_scheme(const char *url);
extern bool hubsync_iso_ms(const char *s, int64_t *ms);
extern bool hubsync_cursor_ok(const char *cursor);
extern bool hubsync_header_number(const char *line, size_t len, const char *name,
								  long max, long *out);
extern bool hubsync_url_cleartext_remote(const char *url);

#endif							/* HUBSYNC_PARSE_UTIL_H */
