#!/bin/sh
# Check the fake HubSpot server with HubSpot's own Node client.
# Installs @hubspot/api-client (pinned) into a scratch folder under $TMPDIR,
# starts test/fake_hubspot.py on a free loopback port, runs
# node_client_check.js against it, and cleans up.
# Exit: 0 all checks passed, 1 a check failed, 77 skipped (no node/npm or the
# npm registry is unreachable; a "SKIP: ..." line says why).
set -u

CLIENT_VERSION=14.0.1
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}

command -v node >/dev/null 2>&1 || { echo "SKIP: node is not installed"; exit 77; }
command -v npm >/dev/null 2>&1 || { echo "SKIP: npm is not installed"; exit 77; }

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/hubsync-node-check.XXXXXX") || exit 1
FAKE_PID=
cleanup() {
	[ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null && wait "$FAKE_PID" 2>/dev/null
	rm -rf "$SCRATCH"
}
trap cleanup EXIT INT TERM

export npm_config_cache="$SCRATCH/npm-cache"
export npm_config_update_notifier=false
cd "$SCRATCH" || exit 1
if ! npm ping >"$SCRATCH/ping.log" 2>&1; then
	echo "SKIP: the npm registry is unreachable ($(tail -n 1 "$SCRATCH/ping.log"))"
	exit 77
fi
printf '{"name":"hubsync-node-check","private":true}\n' >package.json
if ! npm install --no-audit --no-fund --loglevel=error \
	"@hubspot/api-client@$CLIENT_VERSION" >"$SCRATCH/npm.log" 2>&1; then
	echo "FAIL: npm could not install @hubspot/api-client@$CLIENT_VERSION:"
	tail -n 20 "$SCRATCH/npm.log"
	exit 1
fi
cp "$HERE/node_client_check.js" "$SCRATCH/"

"$PYTHON" "$REPO/test/fake_hubspot.py" --port 0 >"$SCRATCH/fake.out" 2>"$SCRATCH/fake.err" &
FAKE_PID=$!
PORT=
for _ in $(seq 1 100); do
	PORT=$(head -n 1 "$SCRATCH/fake.out" 2>/dev/null)
	[ -n "$PORT" ] && break
	sleep 0.1
done
if [ -z "$PORT" ]; then
	echo "FAIL: the fake server did not start"
	cat "$SCRATCH/fake.err"
	exit 1
fi

echo "# @hubspot/api-client@$CLIENT_VERSION against the fake on port $PORT"
node "$SCRATCH/node_client_check.js" "http://127.0.0.1:$PORT"
rc=$?
[ $rc -ne 0 ] && cat "$SCRATCH/fake.err"
exit $rc
