#!/usr/bin/env bash
# scripts/demo.sh -- build, install and show hubsync syncing both ways with
# the bundled fake HubSpot, on a throwaway cluster that is removed after.
# Usage: scripts/demo.sh [--journal]
#   --journal (or HUBSYNC_DEMO_INBOUND=journal): HubSpot's changes come in
#   through the Webhooks Journal, no receiver port is opened.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

ensure_dependencies
build_and_install

prepare_run_dir
mode=${HUBSYNC_DEMO_INBOUND:-webhooks}
[ "${1:-}" = --journal ] && mode=journal
as_postgres env HUBSYNC_DEMO_INBOUND="$mode" bash "$dir/scripts/demo-run.sh"
