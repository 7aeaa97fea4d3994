/*-------------------------------------------------------------------------
 *
 * convert.c
 *	  HubSpot wire strings to the text form of typed mirror columns,
 *	  without ever raising an error: a value that cannot convert is
 *	  reported as NULL and the caller keeps it verbatim in the properties
 *	  jsonb, so one odd value never blocks a record.
 *
 *	  number      -> numeric (exact decimal)
 *	  datetime    -> timestamptz (ISO 8601, or epoch milliseconds)
 *	  date        -> date (YYYY-MM-DD, or epoch milliseconds at midnight UTC)
 *	  bool        -> boolean
 *	  multi-select (';'-separated) -> text[]
 *	  ""          -> NULL
 *
 * IDENTIFICATION
 *	  src/hubspot/convert.c
 *
 *-------------------------------------------------------------------------
 */
#include "core/hubsync.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(hubsync_wire_to_column);

/* all_digits -- s is an optionally signed run of 1..18 decimal digits */
static bool
all_digits(const char *s)
{
	size_t		n;

	if (*s == '-' || *s == '+')
		s++;
	n = strlen(s);
	return n > 0 && n <= 18 && strspn(s, "0123456789") == n;
}

/*
 * numeric_text -- s when it is a plain decimal number numeric_in accepts
 * without error (bounded digits and exponent), else NULL.
 */
static char *
numeric_text(const char *s)
{
	const char *p = s;
	int			digits = 0;

	while (*p == ' ')
		p++;
	if (*p == '+' || *p == '-')
		p++;
	while (*p >= '0' && *p <= '9')
		p++, digits++;
	if (*p == '.')
	{
		p++;
		while (*p >= '0' && *p <= '9')
			p++, digits++;
	}
	if (digits == 0 || digits > 1000)
		return NULL;
	if (*p == 'e' || *p == 'E')
	{
		int			edigits = 0;

		p++;
		if (*p == '+' || *p == '-')
			p++;
		while (*p >= '0' && *p <= '9')
			p++, edigits++;
		if (edigits == 0 || edigits > 3)
			return NULL;
	}
	while (*p == ' ')
		p++;
	if (*p != '\0')
		return NULL;
	return DatumGetCString(DirectFunctionCall1(numeric_out,
											   DirectFunctionCall3(numeric_in, CStringGetDatum(s),
																   ObjectIdGetDatum(InvalidOid),
																   Int32GetDatum(-1))));
}

/*
 * parse_datetime -- decode an ISO 8601 / PostgreSQL date-time string
 * with the parser timestamptz_in uses, but returning false instead of
 * raising an error.
 */
static bool
parse_datetime(const char *s, struct pg_tm *tm, fsec_t *fsec, int *tz, int *dtype)
{
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;

	if (strlen(s) >= MAXDATELEN)
		return false;
	if (ParseDateTime(s, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf) != 0)
		return false;
	return DecodeDateTime(field, ftype, nf, dtype, tm, fsec, tz) == 0;
}

/* timestamptz_text -- s as timestamptz text, or NULL */
static char *
timestamptz_text(const char *s)
{
	TimestampTz ts;

	if (all_digits(s))
	{
		int64		ms = strtoi64(s, NULL, 10);

		ts = (TimestampTz) (ms * 1000) -
			((POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY);
	}
	else
	{
		struct pg_tm tt,
				   *tm = &tt;
		fsec_t		fsec;
		int			tz = 0;
		int			dtype;

		if (!parse_datetime(s, tm, &fsec, &tz, &dtype) || dtype != DTK_DATE)
			return NULL;
		/* without a zone DecodeDateTime used the session's time zone */
		if (tm2timestamp(tm, fsec, &tz, &ts) != 0)
			return NULL;
	}
	if (!IS_VALID_TIMESTAMP(ts))
		return NULL;
	return DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(ts)));
}

/* date_text -- s as date text, or NULL */
static char *
date_text(const char *s)
{
	DateADT		d;

	if (all_digits(s))
	{
		int64		ms = strtoi64(s, NULL, 10);
		int64		days = ms / (int64) (USECS_PER_DAY / 1000);

		if (ms < 0 && ms % (int64) (USECS_PER_DAY / 1000) != 0)
			days--;
		d = (DateADT) (days - (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE));
	}
	else
	{
		struct pg_tm tt,
				   *tm = &tt;
		fsec_t		fsec;
		int			tz = 0;
		int			dtype;

		if (!parse_datetime(s, tm, &fsec, &tz, &dtype) || dtype != DTK_DATE)
			return NULL;
		if (!IS_VALID_JULIAN(tm->tm_year, tm->tm_mon, tm->tm_mday))
			return NULL;
		d = date2j(tm->tm_year, tm->tm_mon, tm->tm_mday) - POSTGRES_EPOCH_JDATE;
	}
	if (!IS_VALID_DATE(d))
		return NULL;
	return DatumGetCString(DirectFunctionCall1(date_out, DateADTGetDatum(d)));
}

/* multi_text -- "a;b;c" as a text[] literal */
static char *
multi_text(const char *s)
{
	StringInfoData buf;
	const char *p = s;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (;;)
	{
		const char *end = strchr(p, ';');
		size_t		len = end ? (size_t) (end - p) : strlen(p);
		size_t		i;

		if (buf.len > 1)
			appendStringInfoChar(&buf, ',');
		appendStringInfoChar(&buf, '"');
		for (i = 0; i < len; i++)
		{
			if (p[i] == '"' || p[i] == '\\')
				appendStringInfoChar(&buf, '\\');
			appendStringInfoChar(&buf, p[i]);
		}
		appendStringInfoChar(&buf, '"');
		if (end == NULL)
			break;
		p = end + 1;
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * hubsync_convert_wire -- the text form of a wire value for a column of
 * sql_type, or NULL when empty or not convertible.
 */
static char *
hubsync_convert_wire(const char *value, const char *sql_type)
{
	if (value == NULL || *value == '\0')
		return NULL;
	if (strcmp(sql_type, "text") == 0)
		return pstrdup(value);
	if (strcmp(sql_type, "numeric") == 0)
		return numeric_text(value);
	if (strcmp(sql_type, "bigint") == 0)
		return all_digits(value) ? pstrdup(value) : NULL;
	if (strcmp(sql_type, "timestamptz") == 0)
		return timestamptz_text(value);
	if (strcmp(sql_type, "date") == 0)
		return date_text(value);
	if (strcmp(sql_type, "boolean") == 0)
	{
		bool		b;

		if (!parse_bool(value, &b))
			return NULL;
		return pstrdup(b ? "true" : "false");
	}
	if (strcmp(sql_type, "text[]") == 0)
		return multi_text(value);
	return NULL;
}

/* hubsync_wire_to_column -- SQL hubsync._wire_to_column(value, sql_type) */
Datum
hubsync_wire_to_column(PG_FUNCTION_ARGS)
{
	char	   *out;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	out = hubsync_convert_wire(text_to_cstring(PG_GETARG_TEXT_PP(0)),
							   text_to_cstring(PG_GETARG_TEXT_PP(1)));
	if (out == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(out));
}

PG_FUNCTION_INFO_V1(hubsync_from_wire);

/*
 * hubsync_from_wire -- SQL hubsync._from_wire(value, sql_type): the strict
 * mode of the same converter, for values an application hands to
 * hubsync.upsert().  '' is NULL; a value that cannot convert is an error
 * naming the value and the type, so a bad billing event fails loudly
 * instead of landing half-written.  Inbound values use the lenient mode
 * (hubsync._wire_to_column), which keeps what cannot convert instead.
 */
Datum
hubsync_from_wire(PG_FUNCTION_ARGS)
{
	char	   *value;
	char	   *sql_type;
	char	   *out;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	value = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (*value == '\0')
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("hubsync._from_wire needs a column type")));
	sql_type = text_to_cstring(PG_GETARG_TEXT_PP(1));
	out = hubsync_convert_wire(value, sql_type);
	if (out == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("value \"%s\" cannot be stored in a %s column", value, sql_type),
				 errhint("HubSpot numbers are decimal strings, dates YYYY-MM-DD or epoch milliseconds at midnight UTC, datetimes ISO 8601 or epoch milliseconds, booleans true/false, multi-select values joined with ';'.")));
	PG_RETURN_TEXT_P(cstring_to_text(out));
}
