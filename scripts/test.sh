#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mold >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  # Optional: a faster linker. The suite passes without it.
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mold) >/dev/null 2>&1 \
    || echo "test.sh: could not install mold; using the default linker"
fi
# Required by the tests: jq (investigations are checked against jq pipelines) and DuckDB
# from PyPI (segments must be readable by other Parquet tools).
if ! command -v jq >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq) >/dev/null 2>&1
  fi
  command -v jq >/dev/null 2>&1 || { echo "test.sh: jq is required (apt-get install jq)" >&2; exit 1; }
fi
if ! python3 -c "import duckdb" >/dev/null 2>&1; then
  python3 -m pip install -q duckdb >/dev/null 2>&1 || python3 -m pip install -q --user duckdb
fi
source scripts/env.sh
cargo test --workspace --locked "$@"
