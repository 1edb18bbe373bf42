#!/usr/bin/env bash
# Installs what kaudit needs on a fresh Debian machine, builds and installs the `kaudit`
# binary, then runs the main job on the built-in defaults: generate a day of realistic audit
# traffic recorded with the widely used policy recipe, lint that policy, and replay the traffic
# through the hardened profile to show what it keeps, drops and costs.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  missing=()
  command -v mold >/dev/null 2>&1 || missing+=(mold)
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  fi
fi
command -v cargo >/dev/null 2>&1 || { echo "setup.sh: cargo is needed (https://rustup.rs)"; exit 1; }
source scripts/env.sh
cargo install --locked --path crates/kaudit --root "${KAUDIT_PREFIX:-$HOME/.local}"
bin="${KAUDIT_PREFIX:-$HOME/.local}/bin/kaudit"
demo="${KAUDIT_DEMO_DIR:-./kaudit-demo}"
mkdir -p "$demo"
echo "== kaudit installed at $bin; demo files in $demo"
# A day of traffic recorded with the widely used recipe policy...
"$bin" policy init --profile recipe > "$demo/recipe.yaml"
"$bin" gen --events 200000 --span 24h --seed 1 --profile recipe --out "$demo/audit.log"
# ...and what the hardened policy would make of it.
"$bin" policy init --profile hardened > "$demo/policy.yaml"
"$bin" policy check "$demo/policy.yaml"
"$bin" policy lint "$demo/recipe.yaml" || true
"$bin" policy simulate "$demo/policy.yaml" "$demo/audit.log"
"$bin" policy diff --top 10 "$demo/recipe.yaml" "$demo/policy.yaml" "$demo/audit.log"
# The main job on the embedded default store: import, prove it intact, investigate.
"$bin" import --quiet --data "$demo/data" --cluster demo "$demo/audit.log"
"$bin" verify --data "$demo/data"
"$bin" ask top-users --data "$demo/data" --limit 10
"$bin" ask exec --data "$demo/data" --limit 10
"$bin" query --data "$demo/data" 'resource=secrets verb=get,list user!=system:*' --limit 10
# Detections: the built-in pack over the same traffic (the high and critical alerts).
"$bin" detect --min-severity high "$demo/audit.log" | head -n 15
