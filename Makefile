# hubsync -- PGXS build
#
# The version lives in hubsync.control alone; everything else reads it.

EXTENSION  = hubsync
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(dir $(firstword $(MAKEFILE_LIST)))hubsync.control)

MODULE_big = hubsync
OBJS       = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c src/*/*.c)))
DATA       = $(wildcard sql/hubsync--*.sql)

PG_CPPFLAGS = -I$(srcdir)/src -DHUBSYNC_VERSION=\"$(EXTVERSION)\" \
			  $(shell pkg-config --cflags libcurl libmicrohttpd)
PG_CFLAGS   = -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
			  -Wno-missing-field-initializers -Wmissing-prototypes
SHLIB_LINK  = $(shell pkg-config --libs libcurl libmicrohttpd) -lcrypto

REGRESS      = install guc credentials capture api webhook wire revenue ops poll
REGRESS_OPTS = --temp-instance=./tmp_check --temp-config=$(srcdir)/test/regress.conf \
			   --load-extension=hubsync

TAP_TESTS   = 1
# the chaos run (about a minute) goes first, so that it overlaps the
# others when they run two at a time
PROVE_TESTS = test/t/097_chaos.pl $(filter-out test/t/097_chaos.pl,$(sort $(wildcard test/t/*.pl)))

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track header dependencies: rebuild every object when any
# header changes, so a struct change never leaves stale objects behind.
$(OBJS): $(wildcard $(srcdir)/src/*/*.h)

# After the include: Makefile.global resets PROVE_FLAGS.  Two TAP files at
# a time: each starts its own clusters on free ports (and the fakes on port
# 0), and most of their time is spent waiting, so the suite takes about half
# as long.
PG_PROVE_FLAGS += -I $(srcdir)/test/perl -j2

# installcheck runs pg_regress then prove; this alias keeps one word for both.
.PHONY: test
test: installcheck
