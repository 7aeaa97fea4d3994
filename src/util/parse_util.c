/*-------------------------------------------------------------------------
 *
 * parse_util.c
 *	  Small checks of untrusted text: JSON nesting depth, HubSpot record
 *	  ids, the id in "Existing ID: N", status words and tokens.
 *
 * Plain C with no PostgreSQL dependency: the server calls these, and the
 * libFuzzer harnesses in test/fuzz/ link this file as it is.
 *
 * IDENTIFICATION
 *	  src/util/parse_util.c
 *
 *-------------------------------------------------------------------------
 */
#include <string.h>
#include <strings.h>

#include "util/parse_util.h"

/*
 * hubsync_json_depth_ok -- whether arrays and objects nest at most
 * max_depth deep.  PostgreSQL's JSON parser recurses once per level (and
 * raises "stack depth limit exceeded" in the server); input from the
 * network must never do that, so depth is counted first: brackets outside
 * strings, backslash escapes skipped.  The parser still validates the rest.
 */
bool
hubsync_json_depth_ok(const char *text, size_t len, int max_depth)
{
	int			depth = 0;
	bool		in_string = false;
	size_t		i;

	for (i = 0; i < len; i++)
	{
		char		c = text[i];

		if (in_string)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		}
		else if (c == '"')
			in_string = true;
		else if (c == '[' || c == '{')
		{
			if (++depth > max_depth)
				return false;
		}
		else if (c == ']' || c == '}')
			depth--;
	}
	return true;
}

/*
 * hubsync_valid_object_id -- a HubSpot record id as hubsync stores it:
 * 1 to 18 digits, so it always fits bigint.
 */
bool
hubsync_valid_object_id(const char *id)
{
	size_t		n = id ? strlen(id) : 0;

	return n >= 1 && n <= 18 && strspn(id, "0123456789") == n;
}

/*
 * hubsync_existing_id -- the N of HubSpot's "... Existing ID: N" (a
 * pointer into message, its length in *len), or NULL when there is none
 * or it has more than 18 digits.
 */
const char *
hubsync_existing_id(const char *message, size_t *len)
{
	const char *p = message ? strstr(message, "Existing ID: ") : NULL;
	size_t		n;

	if (p == NULL)
		return NULL;
	p += strlen("Existing ID: ");
	n = strspn(p, "0123456789");
	if (n == 0 || n > 18)
		return NULL;
	*len = n;
	return p;
}

/*
 * hubsync_safe_word -- copy a status word (BAD_REFRESH_TOKEN,
 * invalid_grant) keeping letters, digits and underscores only, at most
 * outsize - 1 of them, so an error stored or logged can never carry a token
 * back out.  Returns the length written.
 */
size_t
hubsync_safe_word(const char *in, char *out, size_t outsize)
{
	size_t		n = 0;

	if (outsize == 0)
		return 0;
	for (; in && *in && n + 1 < outsize; in++)
		if ((*in >= 'A' && *in <= 'Z') || (*in >= 'a' && *in <= 'z') ||
			(*in >= '0' && *in <= '9') || *in == '_')
			out[n++] = *in;
	out[n] = '\0';
	return n;
}

/*
 * hubsync_token_ok -- an OAuth token as HubSpot issues them: 1 to max_len
 * characters of the URL-safe and base64 alphabets, nothing that could
 * break a header or a log line.
 */
bool
hubsync_token_ok(const char *token, size_t max_len)
{
	size_t		n = token ? strlen(token) : 0;

	return n >= 1 && n <= max_len &&
		strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			   "0123456789-._~+/=") == n;
}

/*
 * hubsync_url_has_http_scheme -- true when the string starts with http://
 * or https://, the only schemes hubsync speaks.
 */
bool
hubsync_url_has_http_scheme(const char *url)
{
	return strncasecmp(url, "http://", 7) == 0 ||
		strncasecmp(url, "https://", 8) == 0;
}
