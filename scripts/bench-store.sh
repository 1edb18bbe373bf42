#!/usr/bin/env bash
# Store and query figures for BENCHMARKS.md: import speed, bytes on disk against the raw log,
# and the seed questions against grep|jq over the raw log and DuckDB over the same segments,
# all in one run. Usage: scripts/bench-store.sh [EVENTS]   (default 1000000)
# JQ=0 skips the grep|jq runs (minutes each at 10M events).
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
# Wall clock, and CPU time (user + system, both threads: appending and sealing): the per-core
# figure is MB per CPU-second.
read -r secs usr sys < <( { /usr/bin/time -f "%e %U %S" "$k" import --quiet --data "$w/data" "$w/audit.log" >/dev/null; } 2>&1 | tail -1)
cpu=$(echo "$usr + $sys" | bc -l)
printf "import (files loaded in bulk: each segment fsync'd as it is sealed): %.1f s wall, %.0f MB/s, %.0f events/s; %.1f CPU-s (user %.1f + sys %.1f): %.0f MB per CPU-second\n" \
  "$secs" "$(echo "$raw / 1000000 / $secs" | bc -l)" "$(echo "$n / $secs" | bc -l)" "$cpu" "$usr" "$sys" "$(echo "$raw / 1000000 / $cpu" | bc -l)"
seg=$(du -sb "$w/data/segments" | cut -f1)
printf "bytes on disk: segments %d MB vs raw %d MB -> %.1fx smaller\n" $((seg / 1000000)) $((raw / 1000000)) "$(echo "$raw / $seg" | bc -l)"
have_duck=0; python3 -c "import duckdb" 2>/dev/null && have_duck=1
time_cmd() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
# Best of three runs (the page cache is warm for every tool).
best() { local b=999 t; for _ in 1 2 3; do t=$(time_cmd "$@"); b=$(echo "if ($t < $b) $t else $b" | bc -l); done; echo "$b"; }
ms() { printf "%7.1f ms" "$(echo "$1*1000" | bc -l)"; }
duck() { # where, mode (answer|all)
  python3 - "$w/data/segments/*.parquet" "$1" "$2" <<'PY'
import duckdb, sys, time
c = duckdb.connect(); g, where, mode = sys.argv[1], sys.argv[2], sys.argv[3]
# The same rows kaudit prints: one per request (its latest stage), the table's columns.
rows = (f"select distinct on (cluster, audit_id) epoch_us(time) as time, cluster, user, verb, resource, subresource, "
        f"namespace, name, code, source_ip, user_agent, audit_id, stage from read_parquet('{g}') "
        f"where {where} order by cluster, audit_id, stage_time desc")
if mode == "all":
    q = rows
else:  # the answer kaudit gives by default: how many, and the 100 most recent
    q = f"select *, count(*) over () from ({rows}) order by time desc limit 100"
best = 1e9
for _ in range(4):
    t = time.time(); c.execute(q).fetchall(); best = min(best, time.time() - t)
print(best)
PY
}
echo "question: kaudit's answer (count + 100 most recent) | all requests as CSV | grep|jq | DuckDB (same two forms)"
q() { # name, kaudit ask args, jq select, duckdb where
  local name=$1 ask=$2 sel=$3 where=$4
  local ta tf tj
  "$k" ask $ask --data "$w/data" --limit 0 --format csv >/dev/null # warm the page cache
  ta=$(best "$k" ask $ask --data "$w/data")
  tf=$(best "$k" ask $ask --data "$w/data" --limit 0 --format csv)
  if [ "${JQ:-1}" = 0 ]; then tj=0; else tj=$(time_cmd sh -c "jq -c 'select($sel) | .auditID' '$w/audit.log' | sort -u"); fi
  printf "%-12s answer %s  all %s  grep|jq %8.0f ms (%4.0fx answer, %4.0fx all)" "$name" "$(ms "$ta")" "$(ms "$tf")" \
    "$(echo "$tj*1000" | bc -l)" "$(echo "$tj/$ta" | bc -l)" "$(echo "$tj/$tf" | bc -l)"
  if [ $have_duck = 1 ]; then
    local da df
    da=$(duck "$where" answer); df=$(duck "$where" all)
    printf "  DuckDB answer %s (%.2fx kaudit) all %s (%.2fx kaudit)" "$(ms "$da")" "$(echo "$da/$ta" | bc -l)" "$(ms "$df")" "$(echo "$df/$tf" | bc -l)"
  fi
  echo
}
q secrets secrets '.objectRef.resource == "secrets"' "resource = 'secrets'"
q exec exec '.objectRef.subresource == "exec" or .objectRef.subresource == "attach" or .objectRef.subresource == "portforward"' "resource = 'pods' and subresource in ('exec','attach','portforward')"
q failed-auth failed-auth '.responseStatus.code == 401' "code = 401"
q deletions deletions '.verb == "delete" or .verb == "deletecollection"' "verb in ('delete','deletecollection')"
# Top users: requests per user (one per auditID).
tk=$(best "$k" ask top-users --data "$w/data")
if [ "${JQ:-1}" = 0 ]; then tj=0; else tj=$(time_cmd sh -c "jq -r '[.auditID, .user.username] | @tsv' '$w/audit.log' | sort -u | cut -f2 | sort | uniq -c | sort -rn"); fi
printf "%-12s answer %s  grep|jq %8.0f ms (%4.0fx)" top-users "$(ms "$tk")" "$(echo "$tj*1000" | bc -l)" "$(echo "$tj/$tk" | bc -l)"
if [ $have_duck = 1 ]; then
  td=$(python3 - "$w/data/segments/*.parquet" <<'PY'
import duckdb, sys, time
c = duckdb.connect()
q = f"select user, count(distinct (cluster, audit_id)) n from read_parquet('{sys.argv[1]}') group by 1 order by 2 desc"
best = 1e9
for _ in range(4):
    t = time.time(); c.execute(q).fetchall(); best = min(best, time.time() - t)
print(best)
PY
)
  printf "  DuckDB %s (%.2fx kaudit)" "$(ms "$td")" "$(echo "$td/$tk" | bc -l)"
fi
echo
