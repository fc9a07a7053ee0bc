#!/usr/bin/env bash
# Instructions per OPTIONS: bench/callgrind.sh options [RELEASE_DIR] [OUT] (kept for the
# commands recorded in BENCHMARKS.md).
exec "$(dirname "$0")/callgrind.sh" options "$@"
