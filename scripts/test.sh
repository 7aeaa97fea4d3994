#!/usr/bin/env bash
# scripts/test.sh -- the whole hubsync test suite: installs what it needs
# (as root on Debian 12), builds without warnings, installs, then runs
# pg_regress and the TAP suites on throwaway clusters as the postgres user.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

ensure_dependencies "${DEBIAN_TEST_PACKAGES[@]}"
build_and_install

prepare_run_dir

say "running the test suite in $dir"
status=0
as_postgres make -C "$dir" -s installcheck PROVE_FLAGS="--timer" || status=$?
if [ $status -ne 0 ]; then
	for f in "$dir/regression.diffs" "$dir"/tmp_check/log/regress_log_*; do
		[ -f "$f" ] || continue
		case "$f" in
			*regress_log_*) grep -q "not ok" "$f" || continue ;;
		esac
		echo "----- $f"; tail -n 80 "$f"
	done
	echo "hubsync tests FAILED" >&2
	exit $status
fi
echo "hubsync tests passed"
