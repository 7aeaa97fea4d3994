#!/bin/sh
# probe_run.sh [SECONDS|minimize] [PG_CONFIG] [KINDS] -- fuzz hubsync._parse_probe
# (the server's own parsers, src/parse_probe.c) for SECONDS (default 60)
# against a throwaway cluster of the PostgreSQL that PG_CONFIG names, with
# hubsync installed there (make install) but not preloaded (no workers).
# Politely: nice -n 19, one connection.  KINDS: comma-separated probe kinds
# (default all, in turn).  New shapes go to probe/corpus/, findings to
# crashes/probe/ (commit both: test/t/096_fuzz_regress.pl replays them).
# "minimize" instead of SECONDS: keep in probe/corpus/ only the inputs whose
# summary shape neither the seeds nor an earlier corpus input have.
set -e
cd "$(dirname "$0")"
secs=${1:-60}
PG_CONFIG=${2:-${PG_CONFIG:-pg_config}}
kinds=${3:-}
bindir=$($PG_CONFIG --bindir)
cc -O2 -Wall -o probe_fuzz.bin probe_fuzz.c -I"$($PG_CONFIG --includedir)" \
	-L"$($PG_CONFIG --libdir)" -lpq
run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
tmp=$(mktemp -d /tmp/hubsync-probe.XXXXXX)
chmod 777 "$tmp"
port=$((20000 + $$ % 20000))
trap 'run "$bindir/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1; rm -rf "$tmp"' EXIT
run "$bindir/initdb" -D "$tmp/data" -A trust -U postgres >/dev/null
cat >>"$tmp/data/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '$tmp'
restart_after_crash = on
fsync = off
log_min_messages = error
log_min_error_statement = panic
CONF
run "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/log" -w start >/dev/null
conn="host=$tmp port=$port user=postgres dbname=postgres"
"$bindir/psql" -X -q -v ON_ERROR_STOP=1 -d "$conn" -f probe/setup.sql >/dev/null
mkdir -p probe/corpus crashes/probe
rc=0
if [ "$secs" = minimize ]; then
	nice -n 19 ./probe_fuzz.bin -d "$conn" -M "$tmp/min" probe/seeds probe/corpus
	rm -f probe/corpus/*
	[ -d "$tmp/min" ] && cp "$tmp/min"/* probe/corpus/
	echo "probe/corpus: $(ls probe/corpus | wc -l) inputs"
	exit 0
fi
nice -n 19 ./probe_fuzz.bin -d "$conn" -t "$secs" ${kinds:+-k "$kinds"} -c probe/corpus \
	-x crashes/probe probe/seeds probe/corpus crashes/probe || rc=$?
grep -E "TRAP|terminated by signal|PANIC" "$tmp/log" || true
exit $rc
