#!/bin/sh
# regress.sh -- replay every seed, corpus entry and crash reproducer through
# each harness once (no fuzzing): exit 0 when none fails.  Used by
# test/t/096_fuzz_regress.pl; exit 77 when clang is not available.
set -e
cd "$(dirname "$0")"
# the harnesses leave freeing to process exit, like a memory context
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
sh ./build.sh "$@" >/dev/null
for h in webhook responses; do
	mkdir -p seeds/$h corpus/$h crashes/$h
	n=$(find seeds/$h corpus/$h crashes/$h -type f | wc -l)
	# -runs=0 with directories: execute every input once, then stop
	./bin/fuzz_$h -detect_leaks=0 -runs=0 seeds/$h corpus/$h crashes/$h >/dev/null 2>fuzz_$h.log ||
		{ tail -30 fuzz_$h.log; exit 1; }
	echo "fuzz_$h: $n inputs replayed"
done
