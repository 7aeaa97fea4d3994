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

/* digits -- n decimal digits at s as a number, or -1 if any is not one */
static int
digits(const char *s, int n)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* days_from_civil -- days since 1970-01-01 of a proleptic Gregorian date */
static int64_t
days_from_civil(int y, int m, int d)
{
	int			era;
	int			yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int64_t) era * 146097 + doe - 719468;
}

/*
 * hubsync_iso_ms -- a time as HubSpot gives it, as Unix epoch milliseconds
 * in *ms: "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)" or a string of
 * 1 to 15 digits (epoch ms, up to year 33658).  Anything else (a missing
 * zone, a 31st of February, trailing bytes, a year outside 1..9999) is
 * refused, so that a value accepted here is also one PostgreSQL's
 * timestamptz input takes, and arithmetic on *ms cannot overflow.
 */
bool
hubsync_iso_ms(const char *s, int64_t *ms)
{
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	size_t		n = s ? strlen(s) : 0;
	int			y,
				mo,
				d,
				h,
				mi,
				sec,
				frac_ms = 0,
				off = 0;
	const char *p;

	if (n == 0)
		return false;
	if (strspn(s, "0123456789") == n)
	{
		int64_t		v = 0;

		if (n > 15)
			return false;
		for (p = s; *p; p++)
			v = v * 10 + (*p - '0');
		*ms = v;
		return true;
	}
	if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
		s[13] != ':' || s[16] != ':')
		return false;
	y = digits(s, 4);
	mo = digits(s + 5, 2);
	d = digits(s + 8, 2);
	h = digits(s + 11, 2);
	mi = digits(s + 14, 2);
	sec = digits(s + 17, 2);
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h < 0 || h > 23 ||
		mi < 0 || mi > 59 || sec < 0 || sec > 59)
		return false;
	if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return false;
	p = s + 19;
	if (*p == '.')
	{
		int			nd = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, nd++)
		{
			if (nd < 3)
				frac_ms = frac_ms * 10 + (*p - '0');
		}
		if (nd == 0 || nd > 9)
			return false;
		for (; nd < 3; nd++)
			frac_ms *= 10;
	}
	if (*p == 'Z' && p[1] == '\0')
		off = 0;
	else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':')
	{
		int			oh = digits(p + 1, 2),
					om = digits(p + 4, 2);

		if (oh < 0 || oh > 15 || om < 0 || om > 59)
			return false;
		off = (oh * 60 + om) * (*p == '-' ? -1 : 1);
	}
	else
		return false;
	*ms = ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) - (int64_t) off * 60)
		* 1000 + frac_ms;
	return true;
}

/*
 * hubsync_cursor_ok -- a paging cursor (paging.next.after) fit to send
 * back: 1 to HUBSYNC_MAX_CURSOR_LEN bytes, no control characters.  It is
 * opaque otherwise, and URL-encoded wherever it is appended to a URL.
 */
bool
hubsync_cursor_ok(const char *cursor)
{
	size_t		n = cursor ? strlen(cursor) : 0;

	if (n == 0 || n > HUBSYNC_MAX_CURSOR_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) cursor[i] < 0x20 || cursor[i] == 0x7f)
			return false;
	return true;
}

/*
 * hubsync_header_number -- the value of the response header line "Name:
 * 123" (name matched case-insensitively), clamped to max without ever
 * overflowing.  False when the line is another header or its value is not
 * a plain non-negative integer (an HTTP date, "-5", "12abc", empty).
 */
bool
hubsync_header_number(const char *line, size_t len, const char *name, long max, long *out)
{
	size_t		nlen = strlen(name);
	size_t		i = nlen + 1;
	long		v = 0;
	bool		any = false;

	if (len <= nlen + 1 || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
		return false;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	for (; i < len && line[i] >= '0' && line[i] <= '9'; i++)
	{
		any = true;
		if (v < max)
			v = (v > (max - (line[i] - '0')) / 10) ? max : v * 10 + (line[i] - '0');
	}
	while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n'))
		i++;
	if (!any || i != len)
		return false;
	*out = v < max ? v : max;
	return true;
}

/*
 * host_is_loopback -- whether an authority ("host[:port]", already cut at
 * the first '/', '?' or '#') names this machine: localhost, 127.0.0.0/8 in
 * dotted-quad form, or [::1].  Strict: user info, percent signs, other
 * spellings of these addresses all count as not loopback.
 */
static bool
host_is_loopback(const char *a, size_t n)
{
	size_t		h = n;
	int			parts = 0;
	int			first = -1;

	/* split off ":port" (digits only) */
	for (size_t i = 0; i < n; i++)
		if (a[i] == ':' && a[0] != '[')
		{
			h = i;
			break;
		}
	if (a[0] == '[')
	{
		if (n >= 5 && strncmp(a, "[::1]", 5) == 0)
			h = 5;
		else
			return false;
	}
	if (h < n)
	{
		if (a[h] != ':' || h + 1 == n || strspn(a + h + 1, "0123456789") < n - h - 1)
			return false;
	}
	if (h == 5 && strncmp(a, "[::1]", 5) == 0)
		return true;
	if (h == 9 && strncasecmp(a, "localhost", 9) == 0)
		return true;
	/* a.b.c.d, each 0..255 without a sign, first 127 */
	for (size_t i = 0; i < h;)
	{
		size_t		j = i;
		int			v = 0;

		while (j < h && a[j] >= '0' && a[j] <= '9' && j - i < 3)
			v = v * 10 + (a[j++] - '0');
		if (j == i || v > 255 || (j < h && a[j] != '.'))
			return false;
		if (parts == 0)
			first = v;
		parts++;
		i = j + 1;
		if (j < h && i == h)
			return false;		/* trailing dot */
	}
	return parts == 4 && first == 127;
}

/*
 * hubsync_url_cleartext_remote -- whether a URL would carry what is sent
 * to it (a bearer token, an API key) in clear text to another machine:
 * http:// to any host but a loopback one.  https:// and other schemes are
 * not (libcurl is limited to http and https anyway).
 */
bool
hubsync_url_cleartext_remote(const char *url)
{
	const char *a;
	size_t		n;

	if (url == NULL || strncasecmp(url, "http://", 7) != 0)
		return false;
	a = url + 7;
	n = strcspn(a, "/?#");
	return n == 0 || !host_is_loopback(a, n);
}
