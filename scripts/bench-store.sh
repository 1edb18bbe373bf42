#!/usr/bin/env bash
# Store and query figures for BENCHMARKS.md: import speed, bytes on disk against the raw log,
# and the seed questions against grep|jq over the raw log and DuckDB over the same segments,
# all in one run. Usage: scripts/bench-store.sh [EVENTS]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
n="${1:-1000000}"
cargo build --release --locked -p kaudit >/dev/null 2>&1
k="$CARGO_TARGET_DIR/release/kaudit"
w="$(mktemp -d)"; trap 'rm -rf "$w"' EXIT
"$k" gen -n "$n" --span 24h --seed 1 --out "$w/audit.log" 2>/dev/null
raw=$(stat -c %s "$w/audit.log")
echo "corpus: $n events, $((raw / 1000000)) MB of audit.log (kaudit gen, seed 1)"
t0=$(date +%s.%N)
"$k" import --quiet --data "$w/data" "$w/audit.log" >/dev/null
t1=$(date +%s.%N)
secs=$(echo "$t1 - $t0" | bc -l)
printf "import (1 thread, fsync per 8192-event batch, sealed to Parquet): %.1f s, %.0f MB/s, %.0f events/s\n" \
  "$secs" "$(echo "$raw / 1000000 / $secs" | bc -l)" "$(echo "$n / $secs" | bc -l)"
seg=$(du -sb "$w/data/segments" | cut -f1)
printf "bytes on disk: segments %d MB vs raw %d MB -> %.1fx smaller\n" $((seg / 1000000)) $((raw / 1000000)) "$(echo "$raw / $seg" | bc -l)"
have_duck=0; python3 -c "import duckdb" 2>/dev/null && have_duck=1
time_cmd() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
q() { # name, kaudit ask args, jq select, duckdb where
  local name=$1 ask=$2 sel=$3 where=$4
  local tk tj td
  "$k" ask $ask --data "$w/data" --limit 0 --format csv >/dev/null # warm the page cache
  tk=$(time_cmd "$k" ask $ask --data "$w/data" --limit 0 --format csv)
  tj=$(time_cmd sh -c "jq -c 'select($sel) | .auditID' '$w/audit.log' | sort -u")
  printf "%-12s kaudit %7.1f ms   grep|jq %8.0f ms (%5.0fx)" "$name" "$(echo "$tk*1000" | bc -l)" "$(echo "$tj*1000" | bc -l)" "$(echo "$tj/$tk" | bc -l)"
  if [ $have_duck = 1 ]; then
    td=$(python3 - "$w/data/segments/*.parquet" "$where" <<'PY'
import duckdb, sys, time
c = duckdb.connect(); g, where = sys.argv[1], sys.argv[2]
# The same rows kaudit prints: one per request (its latest stage), the table's columns.
q = (f"select distinct on (cluster, audit_id) cast(time as varchar), cluster, user, verb, resource, subresource, "
     f"namespace, name, code, source_ip, user_agent, audit_id, stage from read_parquet('{g}') "
     f"where {where} order by cluster, audit_id, stage_time desc")
c.execute(q).fetchall()
t = time.time(); c.execute(q).fetchall(); print(time.time() - t)
PY
)
    printf "   DuckDB %7.1f ms (kaudit %.2fx)" "$(echo "$td*1000" | bc -l)" "$(echo "$td/$tk" | bc -l)"
  fi
  echo
}
q secrets secrets '.objectRef.resource == "secrets"' "resource = 'secrets'"
q exec exec '.objectRef.subresource == "exec" or .objectRef.subresource == "attach" or .objectRef.subresource == "portforward"' "resource = 'pods' and subresource in ('exec','attach','portforward')"
q failed-auth failed-auth '.responseStatus.code == 401' "code = 401"
q deletions deletions '.verb == "delete" or .verb == "deletecollection"' "verb in ('delete','deletecollection')"
