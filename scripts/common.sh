#!/usr/bin/env bash
# Shared by scripts/test.sh and scripts/demo.sh: dependencies, build and
# running things as an unprivileged user (PostgreSQL refuses to run as root).
set -euo pipefail

HUBSYNC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_MAJOR=15
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
DEBIAN_PACKAGES=(make gcc pkg-config postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR
                 libcurl4-openssl-dev libssl-dev libmicrohttpd-dev libipc-run-perl
                 python3 curl clang)
# only the test suite needs these (promtool checks the metrics endpoint)
DEBIAN_TEST_PACKAGES=(prometheus)

# say -- print a progress line
say() { printf '\n==> %s\n' "$*"; }

# missing_packages [extra...] -- the Debian packages above (and the extra
# ones named) that are not installed
missing_packages() {
	local p
	for p in "${DEBIAN_PACKAGES[@]}" "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
	done
}

# ensure_dependencies [extra...] -- install what is missing when root;
# otherwise say exactly what to install and stop
ensure_dependencies() {
	local missing
	missing=$(missing_packages "$@" | tr '\n' ' ')
	[ -z "${missing// /}" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "hubsync needs these Debian packages: $missing" >&2
		echo "Install them with: sudo apt-get install -y $missing" >&2
		echo "(or run this script as root, and it installs them)" >&2
		exit 1
	fi
	say "installing build and test dependencies: $missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# the server package must not start its own cluster on install
	mkdir -p /etc/postgresql-common/createcluster.d
	echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/hubsync-no-main.conf
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# build_and_install -- compile (-Werror: a warning fails the build) and
# install into PostgreSQL
build_and_install() {
	say "building hubsync"
	local log
	log=$(mktemp)
	make -C "$HUBSYNC_ROOT" -s clean >/dev/null 2>&1 || true
	if ! make -C "$HUBSYNC_ROOT" -s -j"$(nproc)" COPT=-Werror >"$log" 2>&1; then
		cat "$log"; rm -f "$log"; exit 1
	fi
	if grep -q "warning:" "$log"; then
		cat "$log"; echo "build produced compiler warnings" >&2; rm -f "$log"; exit 1
	fi
	rm -f "$log"
	say "installing hubsync into PostgreSQL $PG_MAJOR"
	if [ "$(id -u)" -eq 0 ]; then
		make -C "$HUBSYNC_ROOT" -s install >/dev/null
	else
		sudo make -C "$HUBSYNC_ROOT" -s install >/dev/null
	fi
}

# unprivileged_copy -- a copy of the work tree that the postgres user owns,
# so servers and tests can run as postgres; prints its path (<tmp>/main).
# Everything the tests need is in the tree itself.
unprivileged_copy() {
	local top
	top=$(mktemp -d /tmp/hubsync-run.XXXXXX)
	mkdir "$top/main"
	tar -C "$HUBSYNC_ROOT" --exclude=./.git --exclude=./tmp_check --exclude=./results \
		--exclude=./log --exclude='./test/fake/node_modules' -cf - . | tar -C "$top/main" -xf -
	chown -R postgres:postgres "$top"
	chmod 755 "$top"
	echo "$top/main"
}

# prepare_run_dir -- set $dir to a tree the server user can run from (a
# temporary copy when root, removed on exit; the tree itself otherwise)
prepare_run_dir() {
	if [ "$(id -u)" -eq 0 ]; then
		dir=$(unprivileged_copy)
		# shellcheck disable=SC2064
		trap "rm -rf '$(dirname "$dir")'" EXIT
	else
		dir=$HUBSYNC_ROOT
	fi
}

# as_postgres -- run a command as the postgres user when root, else as is
as_postgres() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- env PATH="$PG_BIN:$PATH" "$@"
	else
		env PATH="$PG_BIN:$PATH" "$@"
	fi
}
