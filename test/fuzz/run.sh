#!/bin/sh
# run.sh [SECONDS] [HARNESS...] -- fuzz each harness in turn for SECONDS
# (default 60), politely (nice -n 19, one at a time, one job).  New inputs
# go to corpus/<harness>/, crashes to crashes/<harness>/ (commit both: the
# regression run replays them).  Default harnesses: webhook responses.
set -e
cd "$(dirname "$0")"
# the harnesses leave freeing to process exit, like a memory context
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
secs=${1:-60}
[ $# -gt 0 ] && shift
harnesses=${*:-webhook responses}
sh ./build.sh
for h in $harnesses; do
	mkdir -p corpus/$h crashes/$h
	echo "== fuzz_$h for ${secs}s"
	nice -n 19 ./bin/fuzz_$h -max_total_time="$secs" -max_len=65536 -timeout=10 \
		-rss_limit_mb=1024 -detect_leaks=0 -print_final_stats=1 \
		-artifact_prefix=crashes/$h/ corpus/$h seeds/$h 2>&1 | tail -15
done
