#!/usr/bin/env bash
# Prints the benchmark figures of BENCHMARKS.md (needs jq for the comparison).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo bench --locked -p kaudit --bench foundation 2>&1 | grep -vE '^\s*(Compiling|Finished|Running|Downloaded|Downloading|Locking|Updating)'
