# hubsync -- PGXS build
#
# The version lives in hubsync.control alone; everything else reads it.

EXTENSION  = hubsync
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(dir $(firstword $(MAKEFILE_LIST)))hubsync.control)

MODULE_big = hubsync
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c src/*/*.c)))

# SQL: the install script of the current version and its update scripts are
# built from the sources in sql/ (sql/sources.mk lists them in the order they
# run); the scripts of released versions are installed as they shipped.
include $(dir $(firstword $(MAKEFILE_LIST)))sql/sources.mk
SQL_BUILT  = sql/$(EXTENSION)--$(EXTVERSION).sql \
			 $(foreach v,$(SQL_UPDATE_FROM),sql/$(EXTENSION)--$(v)--$(EXTVERSION).sql)
DATA       = $(wildcard sql/released/$(EXTENSION)--*.sql)
DATA_built = $(SQL_BUILT)

PG_CPPFLAGS = -I$(srcdir)/src -DHUBSYNC_VERSION=\"$(EXTVERSION)\" \
			  $(shell pkg-config --cflags libcurl libmicrohttpd)
PG_CFLAGS   = -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
			  -Wno-missing-field-initializers -Wmissing-prototypes
SHLIB_LINK  = $(shell pkg-config --libs libcurl libmicrohttpd) -lcrypto

REGRESS      = install guc credentials capture api webhook wire revenue bi ops poll
REGRESS_OPTS = --temp-instance=./tmp_check --temp-config=$(srcdir)/test/regress.conf \
			   --load-extension=hubsync

TAP_TESTS   = 1
# the chaos run (about a minute) goes first, so that it overlaps the
# others when they run two at a time
PROVE_TESTS = test/t/097_chaos.pl $(filter-out test/t/097_chaos.pl,$(sort $(wildcard test/t/*.pl)))

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# The generated scripts: a header, then the sources.  Function bodies are
# checked when first run, not when created (the sources are ordered by
# concern, not by use); SET LOCAL lasts until the transaction running
# CREATE or ALTER EXTENSION ends.
sql_header = printf '%s\n%s\n\n%s\n%s\n\n%s\n' \
	'/* $(notdir $@) -- $(1)' \
	'   Built by make from the files sql/sources.mk lists: edit those, not this. */' \
	'-- complain if script is sourced in psql, rather than via $(2)' \
	'\echo Use "$(2)" to load this file. \quit' \
	'SET LOCAL check_function_bodies = off;'

sql/$(EXTENSION)--$(EXTVERSION).sql: $(SQL_INSTALL) sql/sources.mk hubsync.control
	{ $(call sql_header,install script of hubsync $(EXTVERSION),CREATE EXTENSION $(EXTENSION)); \
	  for f in $(SQL_INSTALL); do printf '\n'; cat $$f; done; } > $@

# update from FROM: the modfile sql/updates/FROM--VERSION.sql (what the
# sources cannot re-run: new tables and columns, data changes, DROPs), the
# schema files new since FROM (SQL_NEW_SINCE_FROM), the functions, the modfile's .post.sql part if any (changes that need the new
# functions), then the rest of what every update re-runs
.SECONDEXPANSION:
sql/$(EXTENSION)--%--$(EXTVERSION).sql: sql/updates/%--$(EXTVERSION).sql $$(SQL_NEW_SINCE_$$*) $(SQL_FUNCTIONS) \
		$(SQL_RERUN) $(wildcard sql/updates/*.post.sql) sql/sources.mk hubsync.control
	{ $(call sql_header,update script of hubsync from $* to $(EXTVERSION),ALTER EXTENSION $(EXTENSION) UPDATE TO '\''$(EXTVERSION)'\''); \
	  for f in $< $(SQL_NEW_SINCE_$*) $(SQL_FUNCTIONS) $(wildcard sql/updates/$*--$(EXTVERSION).post.sql) $(SQL_RERUN); do \
		printf '\n'; cat $$f; done; } > $@

# PGXS does not track header dependencies: rebuild every object when any
# header changes, so a struct change never leaves stale objects behind.
$(OBJS): $(wildcard $(srcdir)/src/*/*.h)

# After the include: Makefile.global resets PROVE_FLAGS.  Three TAP files
# at a time: each starts its own clusters on free ports (and the fakes on
# port 0), and most of their time is spent waiting (the suite uses about a
# quarter of one core), so the suite takes about a third as long.
PG_PROVE_FLAGS += -I $(srcdir)/test/perl -j3

# installcheck runs pg_regress then prove; this alias keeps one word for both.
.PHONY: test
test: installcheck
