/*
 * probe_fuzz.c -- a mutation fuzzer (no coverage guidance) for the parsers
 * that only run inside the server: it sends mutated bodies through
 * hubsync._parse_probe(kind, body, status) (src/parse_probe.c), which runs
 * the very functions the receiver and the workers run, over one libpq
 * connection, each call in a transaction that is rolled back.
 *
 * An input file is "kind status\n" then the body, raw bytes.  Mutations:
 * bytes (flip, insert, delete, duplicate), JSON tokens from a dictionary,
 * structure-aware ones (a JSON value replaced by a dictionary value or by a
 * value of another input, wrapped, nested deep, members duplicated or
 * dropped), splices of two inputs, and the HTTP status.
 *
 * A finding is any ERROR out of the probe (it catches what the workers
 * catch; the rest is a broken invariant or an error a worker would die of)
 * and a lost connection (a crash): the input goes to the crash directory
 * and, after a crash, the fuzzer waits for the server and goes on.
 * Inputs whose summary has a shape (digits and the message after a '('
 * dropped) not seen before join the corpus directory: the only feedback
 * there is.  -M dir: no fuzzing; copy to dir the inputs of the directories
 * after the first (the seeds) whose shape the ones before do not have:
 * a minimized corpus.
 *
 * usage: probe_fuzz -d conninfo {-t seconds | -M minimized_dir} [-k kinds]
 *        [-c corpus_dir] [-x crash_dir] [-s seed] input_dir...
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

#define Min(a, b)	((a) < (b) ? (a) : (b))
#define Max(a, b)	((a) > (b) ? (a) : (b))
#define MAX_INPUTS	20000
#define MAX_LEN		(256 * 1024)
#define MAX_SHAPES	65536

typedef struct Input
{
	char		kind[32];
	int			status;
	unsigned char *body;
	size_t		len;
} Input;

static const char *const all_kinds[] = {
	"webhook", "push_upsert", "push_update", "push_archive", "push_single",
	"read_page", "batch_read", "assoc", "oauth", "enrich", "enrich_batch"
};
#define NKINDS ((int) (sizeof(all_kinds) / sizeof(all_kinds[0])))

static const int statuses[] = {200, 200, 200, 201, 207, 207, 204, 400, 401, 403, 404,
409, 423, 429, 477, 500, 503, 0, 1, 2, 302};

static const char *const dict[] = {
	"\"", "{", "}", "[", "]", ",", ":", "null", "true", "false", "0", "-1", "-0",
	"1e999", "-1e-999", "1.5", "99999999999999999999", "9223372036854775807",
	"9223372036854775808", "123456789012345678", "1234567890123456789",
	"\"\"", "\"\\u0000\"", "\"\\ud800\"", "\"\\udc00x\"", "\"\\\"\"", "\"\\\\\"",
	"\"\xc3\xa9\"", "\"\xe2\x9c\x93\"", "\xff", "\xc3", "\"\xf0\x9f\x98\x80\"",
	"{}", "[]", "[null]", "{\"\":null}", "\"Existing ID: 123\"",
	"\"Contact already exists. Existing ID: 4242\"", "\"Existing ID: 1234567890123456789\"",
	"\"results\"", "\"errors\"", "\"id\"", "\"properties\"", "\"context\"", "\"ids\"",
	"\"category\"", "\"message\"", "\"status\"", "\"paging\"", "\"next\"", "\"after\"",
	"\"total\"", "\"access_token\"", "\"refresh_token\"", "\"expires_in\"", "\"error\"",
	"\"subscriptionType\"", "\"occurredAt\"", "\"objectId\"", "\"eventId\"",
	"\"subscriptionId\"", "\"propertyName\"", "\"propertyValue\"", "\"fromObjectId\"",
	"\"toObjectId\"", "\"associationType\"", "\"associationRemoved\"", "\"objectTypeId\"",
	"\"changeSource\"", "\"sourceId\"", "\"from\"", "\"to\"", "\"associationTypes\"",
	"\"typeId\"", "\"updatedAt\"", "\"lastmodifieddate\"", "\"hubsync_id\"",
	"\"objectWriteTraceId\"", "\"policyName\"", "\"person\"", "\"confidence\"",
	"\"title\"", "\"employer\"", "\"OBJECT_NOT_FOUND\"", "\"VALIDATION_ERROR\"",
	"\"CONFLICT\"", "\"INVALID_EMAIL\"", "\"INTERNAL_ERROR\"", "\"RATE_LIMITS\"",
	"\"DAILY\"", "\"SECONDLY\"", "\"2024-01-01T00:00:00Z\"", "\"2024-02-30T25:61:00Z\"",
	"\"not a date\"", "\"infinity\"", "\"-infinity\"", "\"epoch\"", "\"now\"",
	"\"1700000000000\"", "\"00000000-0000-0000-0000-000000000001\"",
	"\"00000000-0000-0000-0000-000000000002\"", "\"101\"", "\"102\"", "101", "\"0-1\"",
	"\"contact.propertyChange\"", "\"contact.creation\"", "\"contact.associationChange\"",
	"\"deal.deletion\"", "\"x y\\r\\nz\"", "\"abc.DEF-123_~+/=\"", "\"HUBSPOT_DEFINED\"",
	"{\"id\":\"101\",\"properties\":{}}", "{\"from\":{\"id\":\"101\"},\"to\":[]}",
	"{\"toObjectId\":1,\"associationTypes\":[{\"typeId\":1}]}",
};
#define NDICT ((int) (sizeof(dict) / sizeof(dict[0])))

static Input inputs[MAX_INPUTS];
static int	ninputs;
static uint64_t shapes[MAX_SHAPES];
static int	nshapes;
static uint64_t rng_state;

/* rnd -- xorshift64* */
static uint64_t
rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static size_t
rn(size_t n)
{
	return n ? (size_t) (rnd() % n) : 0;
}

static void
die(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* fnv -- 64-bit FNV-1a */
static uint64_t
fnv(const void *p, size_t n, uint64_t h)
{
	const unsigned char *c = p;

	if (h == 0)
		h = 14695981039346656037ULL;
	while (n--)
		h = (h ^ *c++) * 1099511628211ULL;
	return h;
}

/* load_dir -- every input file of a directory */
static void
load_dir(const char *dir)
{
	DIR		   *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL && ninputs < MAX_INPUTS)
	{
		char		path[4096];
		FILE	   *f;
		char		line[128];
		Input	   *in = &inputs[ninputs];

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if ((f = fopen(path, "rb")) == NULL)
			continue;
		if (fgets(line, sizeof(line), f) == NULL ||
			sscanf(line, "%31s %d", in->kind, &in->status) != 2)
		{
			fclose(f);
			continue;
		}
		in->body = malloc(MAX_LEN);
		in->len = fread(in->body, 1, MAX_LEN, f);
		fclose(f);
		ninputs++;
	}
	closedir(d);
}

/* save_input -- write kind, status and body under dir, named by hash */
static void
save_input(const char *dir, const char *kind, int status, const unsigned char *b, size_t n)
{
	char		path[4096];
	FILE	   *f;
	uint64_t	h = fnv(b, n, fnv(kind, strlen(kind), 0) ^ (uint64_t) status);

	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/%016llx", dir, (unsigned long long) h);
	if ((f = fopen(path, "wb")) == NULL)
		return;
	fprintf(f, "%s %d\n", kind, status);
	fwrite(b, 1, n, f);
	fclose(f);
}

/* value_span -- a JSON value starting at or after pos: [*s, *e) */
static int
value_span(const unsigned char *b, size_t n, size_t pos, size_t *s, size_t *e)
{
	size_t		i = pos;

	while (i < n && (b[i] == '\0' || !strchr("\"{[-0123456789tfn", b[i])))
		i++;
	if (i >= n || b[i] == '\0')
		return 0;
	*s = i;
	if (b[i] == '"')
	{
		for (i++; i < n && b[i] != '"'; i++)
			if (b[i] == '\\')
				i++;
		*e = i < n ? i + 1 : n;
	}
	else if (b[i] == '{' || b[i] == '[')
	{
		int			depth = 0;
		int			instr = 0;

		for (; i < n; i++)
		{
			if (instr)
			{
				if (b[i] == '\\')
					i++;
				else if (b[i] == '"')
					instr = 0;
			}
			else if (b[i] == '"')
				instr = 1;
			else if (b[i] == '{' || b[i] == '[')
				depth++;
			else if ((b[i] == '}' || b[i] == ']') && --depth == 0)
				break;
		}
		*e = i < n ? i + 1 : n;
	}
	else
	{
		while (i < n && b[i] && strchr("-+.eE0123456789truefalsn", b[i]))
			i++;
		*e = i;
	}
	return *e > *s;
}

/* replace -- buf[s, e) := rep[0, rn) */
static size_t
replace(unsigned char *buf, size_t n, size_t s, size_t e, const void *rep, size_t rl)
{
	if (n - (e - s) + rl > MAX_LEN)
		return n;
	memmove(buf + s + rl, buf + e, n - e);
	memcpy(buf + s, rep, rl);
	return n - (e - s) + rl;
}

/* mutate -- one mutation of buf (len n), returns the new length */
static size_t
mutate(unsigned char *buf, size_t n)
{
	size_t		s,
				e,
				p = rn(n + 1);

	switch (rn(14))
	{
		case 0:					/* flip a byte */
			if (n)
				buf[rn(n)] ^= (unsigned char) (1 << rn(8));
			return n;
		case 1:					/* a random byte */
			{
				unsigned char c = (unsigned char) rnd();

				return replace(buf, n, p, p, &c, 1);
			}
		case 2:					/* delete a range */
			e = p + rn(Min(n - p, 64) + 1);
			return replace(buf, n, p, e, "", 0);
		case 3:					/* duplicate a range */
			{
				unsigned char tmp[256];
				size_t		l = rn(Min(n - p, sizeof(tmp)) + 1);

				memcpy(tmp, buf + p, l);
				return replace(buf, n, p, p, tmp, l);
			}
		case 4:					/* a dictionary token */
		case 5:
			{
				const char *t = dict[rn(NDICT)];

				return replace(buf, n, p, p, t, strlen(t));
			}
		case 6:					/* a value := a dictionary token */
		case 7:
			if (value_span(buf, n, p, &s, &e))
			{
				const char *t = dict[rn(NDICT)];

				return replace(buf, n, s, e, t, strlen(t));
			}
			return n;
		case 8:					/* a value := a value of another input */
		case 9:
			{
				Input	   *o = &inputs[rn(ninputs)];
				size_t		os,
							oe;

				if (value_span(buf, n, p, &s, &e) &&
					value_span(o->body, o->len, rn(o->len + 1), &os, &oe))
				{
					unsigned char *tmp = malloc(oe - os);
					size_t		r;

					memcpy(tmp, o->body + os, oe - os);
					r = replace(buf, n, s, e, tmp, oe - os);
					free(tmp);
					return r;
				}
				return n;
			}
		case 10:				/* wrap a value, or nest it deep */
			if (value_span(buf, n, p, &s, &e))
			{
				int			depth = rn(4) == 0 ? 200 + (int) rn(120) : 1;
				char	   *open = rn(2) ? "[" : "{\"k\":";
				char	   *close = open[0] == '[' ? "]" : "}";
				size_t		r = n;

				if (n + depth * 6 > MAX_LEN)
					return n;
				for (int i = 0; i < depth; i++)
				{
					r = replace(buf, r, e, e, close, 1);
					r = replace(buf, r, s, s, open, strlen(open));
				}
				return r;
			}
			return n;
		case 11:				/* duplicate a value after itself */
			if (value_span(buf, n, p, &s, &e) && e - s < 8192)
			{
				unsigned char *tmp = malloc(e - s + 1);
				size_t		r;

				tmp[0] = ',';
				memcpy(tmp + 1, buf + s, e - s);
				r = replace(buf, n, e, e, tmp, e - s + 1);
				free(tmp);
				return r;
			}
			return n;
		case 12:				/* drop a value */
			if (value_span(buf, n, p, &s, &e))
				return replace(buf, n, s, e, "", 0);
			return n;
		default:				/* splice with another input */
			{
				Input	   *o = &inputs[rn(ninputs)];
				size_t		op = rn(o->len + 1);

				if (p + (o->len - op) > MAX_LEN)
					return n;
				memcpy(buf + p, o->body + op, o->len - op);
				return p + (o->len - op);
			}
	}
}

/* shape_new -- whether a summary of this shape is new */
static int
shape_new(const char *kind, const char *summary)
{
	uint64_t	h = fnv(kind, strlen(kind), 0);

	/* digits and what follows a '(' (a quoted message) do not count */
	for (const char *c = summary; *c && *c != '('; c++)
		if (*c < '0' || *c > '9')
			h = fnv(c, 1, h);
	for (int i = 0; i < nshapes; i++)
		if (shapes[i] == h)
			return 0;
	if (nshapes < MAX_SHAPES)
		shapes[nshapes++] = h;
	return 1;
}

/* connect_db -- (re)connect, waiting up to a minute for a restarting server */
static PGconn *
connect_db(const char *conninfo)
{
	for (int i = 0; i < 120; i++)
	{
		PGconn	   *c = PQconnectdb(conninfo);

		if (PQstatus(c) == CONNECTION_OK)
		{
			PQclear(PQexec(c, "SET statement_timeout = '20s'"));
			return c;
		}
		PQfinish(c);
		usleep(500000);
	}
	die("cannot connect to %s", conninfo);
	return NULL;
}

typedef struct KindStats
{
	long		execs;
	long		findings;
	long		shapes;
} KindStats;

int
main(int argc, char **argv)
{
	const char *conninfo = "dbname=postgres";
	const char *corpus_dir = NULL;
	const char *crash_dir = "crashes";
	const char *minimize_dir = NULL;
	int			nseeds = 0;
	char	   *kinds_arg = NULL;
	const char *kinds[NKINDS];
	int			nk = 0;
	KindStats	stats[NKINDS] = {{0}};
	long		seconds = 60,
				execs = 0,
				findings = 0,
				crashes = 0;
	int			opt;
	time_t		start,
				last_report;
	PGconn	   *conn;
	unsigned char *buf = malloc(MAX_LEN);

	rng_state = (uint64_t) time(NULL) * 2654435761ULL + (uint64_t) getpid();
	while ((opt = getopt(argc, argv, "d:t:k:c:x:s:M:")) != -1)
	{
		switch (opt)
		{
			case 'd':
				conninfo = optarg;
				break;
			case 't':
				seconds = atol(optarg);
				break;
			case 'k':
				kinds_arg = optarg;
				break;
			case 'c':
				corpus_dir = optarg;
				break;
			case 'x':
				crash_dir = optarg;
				break;
			case 's':
				rng_state = strtoull(optarg, NULL, 10) | 1;
				break;
			case 'M':
				minimize_dir = optarg;
				seconds = 0;
				break;
			default:
				die("usage: probe_fuzz -d conninfo {-t seconds | -M minimized_dir} [-k kinds] [-c corpus_dir] [-x crash_dir] [-s seed] input_dir...");
		}
	}
	for (int i = optind; i < argc; i++)
	{
		load_dir(argv[i]);
		if (i == optind)
			nseeds = ninputs;
	}
	if (ninputs == 0)
		die("no inputs (files \"kind status\\n\" + body) in the given directories");
	if (kinds_arg)
	{
		for (char *t = strtok(kinds_arg, ","); t && nk < NKINDS; t = strtok(NULL, ","))
			kinds[nk++] = t;
	}
	else
		for (int i = 0; i < NKINDS; i++)
			kinds[nk++] = all_kinds[i];
	printf("probe_fuzz: %d inputs, %d kinds, %ld s, seed %llu\n", ninputs, nk, seconds,
		   (unsigned long long) rng_state);
	fflush(stdout);

	conn = connect_db(conninfo);
	/* the shapes the inputs already have are not new */
	for (int i = 0; i < ninputs; i++)
	{
		const char *values[3];
		int			lengths[3] = {0, (int) inputs[i].len, 0};
		int			formats[3] = {0, 1, 0};
		Oid			types[3] = {25, 17, 23};
		char		status_s[16];
		PGresult   *res;

		snprintf(status_s, sizeof(status_s), "%d", inputs[i].status);
		values[0] = inputs[i].kind;
		values[1] = (const char *) inputs[i].body;
		values[2] = status_s;
		PQclear(PQexec(conn, "BEGIN"));
		res = PQexecParams(conn, "SELECT hubsync._parse_probe($1, $2, $3)", 3, types, values,
						   lengths, formats, 0);
		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
			shape_new(inputs[i].kind, PQgetvalue(res, 0, 0)) && minimize_dir && i >= nseeds)
			save_input(minimize_dir, inputs[i].kind, inputs[i].status, inputs[i].body, inputs[i].len);
		PQclear(res);
		PQclear(PQexec(conn, "ROLLBACK"));
		if (PQstatus(conn) != CONNECTION_OK)
			conn = connect_db(conninfo);
	}
	printf("probe_fuzz: the inputs have %d shapes\n", nshapes);
	start = last_report = time(NULL);
	while (time(NULL) - start < seconds)
	{
		int			ki = (int) (execs % nk);
		const char *kind = kinds[ki];
		Input	   *in = &inputs[rn(ninputs)];
		size_t		n;
		int			status;
		int			nmut = 1 + (int) rn(4);
		char		status_s[16];
		const char *values[3];
		int			lengths[3];
		int			formats[3] = {0, 1, 0};
		Oid			types[3] = {25, 17, 23};
		PGresult   *res;
		int			ki_all = 0;

		/* an input of this kind most of the time; any input now and then */
		for (int tries = 0; tries < 8 && strcmp(in->kind, kind) != 0 && rn(8) != 0; tries++)
			in = &inputs[rn(ninputs)];
		memcpy(buf, in->body, in->len);
		n = in->len;
		status = strcmp(in->kind, kind) == 0 && rn(5) != 0 ? in->status : statuses[rn(sizeof(statuses) / sizeof(int))];
		if (rn(20) != 0)		/* now and then the seed itself */
			for (int m = 0; m < nmut; m++)
				n = mutate(buf, n);
		snprintf(status_s, sizeof(status_s), "%d", status);
		values[0] = kind;
		values[1] = (const char *) buf;
		values[2] = status_s;
		lengths[1] = (int) n;
		for (int i = 0; i < NKINDS; i++)
			if (strcmp(all_kinds[i], kind) == 0)
				ki_all = i;

		PQclear(PQexec(conn, "BEGIN"));
		res = PQexecParams(conn, "SELECT hubsync._parse_probe($1, $2, $3)", 3, types, values,
						   lengths, formats, 0);
		execs++;
		stats[ki_all].execs++;
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
		{
			const char *summary = PQgetvalue(res, 0, 0);

			if (shape_new(kind, summary))
			{
				if (getenv("PROBE_VERBOSE"))
					printf("new shape: %s\n", summary);
				stats[ki_all].shapes++;
				if (corpus_dir)
					save_input(corpus_dir, kind, status, buf, n);
			}
		}
		else
		{
			const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			int			lost = PQstatus(conn) != CONNECTION_OK;

			findings++;
			stats[ki_all].findings++;
			save_input(crash_dir, kind, status, buf, n);
			printf("FINDING %s status %d: %s %s", kind, status,
				   lost ? "connection lost (server crash?)" : (state ? state : "?"),
				   PQerrorMessage(conn));
			fflush(stdout);
			if (lost)
			{
				crashes++;
				PQclear(res);
				PQfinish(conn);
				sleep(2);
				conn = connect_db(conninfo);
				continue;
			}
		}
		PQclear(res);
		PQclear(PQexec(conn, "ROLLBACK"));
		if (time(NULL) - last_report >= 60)
		{
			last_report = time(NULL);
			printf("%lds: %ld execs, %d shapes, %ld findings\n", (long) (last_report - start),
				   execs, nshapes, findings);
			fflush(stdout);
		}
	}
	printf("done: %ld s, %ld execs (%.0f/s), %d shapes, %ld findings, %ld crashes\n",
		   (long) (time(NULL) - start), execs, execs / (double) Max(time(NULL) - start, 1),
		   nshapes, findings, crashes);
	for (int i = 0; i < NKINDS; i++)
		if (stats[i].execs)
			printf("  %-13s %8ld execs %5ld shapes %4ld findings\n", all_kinds[i],
				   stats[i].execs, stats[i].shapes, stats[i].findings);
	PQfinish(conn);
	return findings ? 1 : 0;
}
