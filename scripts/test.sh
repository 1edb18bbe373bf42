#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v mold >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  # Optional: a faster linker. The suite passes without it.
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mold) >/dev/null 2>&1 \
    || echo "test.sh: could not install mold; using the default linker"
fi
source scripts/env.sh
cargo test --workspace --locked "$@"
