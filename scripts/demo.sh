#!/usr/bin/env bash
# scripts/demo.sh -- build, install and show hubsync syncing both ways with
# the bundled fake HubSpot, on a throwaway cluster that is removed after.
set -euo pipefail
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

ensure_dependencies
build_and_install

prepare_run_dir
as_postgres bash "$dir/scripts/demo-run.sh"
