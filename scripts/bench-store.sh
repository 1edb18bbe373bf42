#!/usr/bin/env bash
# Store and query figures for BENCHMARKS.md, all in one run: import speed, bytes on disk
# against the raw log, and the seed questions three ways over the same data: kaudit (whole
# processes), grep|jq over the raw log, and DuckDB over the same segment files with the SQL a
# user would write, both in-process (Python, query time only) and as its CLI (whole process).
#
# Usage: scripts/bench-store.sh [EVENTS]      (default 1000000)
#   JQ=0       skip the grep|jq runs (minutes each at 10 M events)
#   KAUDIT=... time this kaudit binary instead of building the release one (e.g. an older
#              build, to compare two versions on the same day)
# DuckDB (PyPI `duckdb`, in-process) and its CLI (PyPI `duckdb-cli`) are installed if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
n="${1:-1000000}"
if [ -z "${KAUDIT:-}" ]; then
  cargo build --release --locked -p kaudit >/dev/null 2>&1
  KAUDIT="$CARGO_TARGET_DIR/release/kaudit"
fi
k="$KAUDIT"
python3 -c "import duckdb" 2>/dev/null || python3 -m pip install -q duckdb >/dev/null 2>&1
command -v duckdb >/dev/null 2>&1 || python3 -m pip install -q duckdb-cli >/dev/null 2>&1
w="$(mktemp -d)"; trap 'rm -rf "$w"' EXIT
"$k" gen -n "$n" --span 24h --seed 1 --out "$w/audit.log" 2>/dev/null
raw=$(stat -c %s "$w/audit.log")
echo "corpus: $n events, $((raw / 1000000)) MB of audit.log (kaudit gen, seed 1)"
echo "tools: $("$k" --version), DuckDB $(python3 -c 'import duckdb; print(duckdb.__version__)') in-process, DuckDB CLI $(duckdb --version | cut -d' ' -f1), $(jq --version)"
# Wall clock, and CPU time (user + system, both threads: appending and sealing): the per-core
# figure is MB per CPU-second.
read -r secs usr sys < <( { /usr/bin/time -f "%e %U %S" "$k" import --quiet --data "$w/data" "$w/audit.log" >/dev/null; } 2>&1 | tail -1)
cpu=$(echo "$usr + $sys" | bc -l)
printf "import (files loaded in bulk: each segment fsync'd as it is sealed): %.1f s wall, %.0f MB/s, %.0f events/s; %.1f CPU-s (user %.1f + sys %.1f): %.0f MB per CPU-second\n" \
  "$secs" "$(echo "$raw / 1000000 / $secs" | bc -l)" "$(echo "$n / $secs" | bc -l)" "$cpu" "$usr" "$sys" "$(echo "$raw / 1000000 / $cpu" | bc -l)"
seg=$(du -sb "$w/data/segments" | cut -f1)
printf "bytes on disk: segments %d MB vs raw %d MB -> %.1fx smaller\n" $((seg / 1000000)) $((raw / 1000000)) "$(echo "$raw / $seg" | bc -l)"

time_cmd() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
# Best of three runs (the page cache is warm for every tool).
best() { local b=999 t; for _ in 1 2 3; do t=$(time_cmd "$@"); b=$(echo "if ($t < $b) $t else $b" | bc -l); done; echo "$b"; }
ms() { printf "%7.1f ms" "$(echo "$1*1000" | bc -l)"; }
x() { printf "%5.1fx" "$(echo "$1/$2" | bc -l)"; }
segs="$w/data/segments/*.parquet"
# The SQL a user writes over the segments (docs/store-format.md): one row per request is a
# row whose `first` flag is set; the answer is how many and the 100 most recent.
count_sql() { echo "select count(*) from read_parquet('$segs') where $1"; }
list_sql() { echo "select time, user, verb, resource, subresource, namespace, name, code from read_parquet('$segs') where $1 order by time desc limit 100"; }
# Every matching request, with the columns kaudit's CSV has.
all_sql() { echo "select time, cluster, user, verb, resource, subresource, namespace, name, code, source_ip, user_agent, audit_id, stage from read_parquet('$segs') where $1 order by time"; }
# DuckDB in-process: the best of four runs of each statement, summed (query time only).
duck() {
  python3 - "$@" <<'PY'
import duckdb, sys, time
c = duckdb.connect()
total = 0.0
for q in sys.argv[1:]:
    best = 1e9
    for _ in range(4):
        t = time.time(); c.execute(q).fetchall(); best = min(best, time.time() - t)
    total += best
print(total)
PY
}
# DuckDB's CLI, as a whole process like kaudit: the statements in one run.
duck_cli() { best duckdb -c "$(printf '%s;\n' "$@")"; }

echo
echo "question     | kaudit answer | DuckDB in-process (ratio) | DuckDB CLI (ratio) | grep|jq (ratio) || kaudit all | DuckDB all in-process (ratio) | DuckDB all CLI (ratio)"
q() { # name, kaudit ask args, jq select, SQL where
  local name=$1 ask=$2 sel=$3 where=$4
  local ta tf tj da dc df dfc
  "$k" ask $ask --data "$w/data" --limit 0 --format csv >/dev/null # warm the page cache
  ta=$(best "$k" ask $ask --data "$w/data")
  tf=$(best "$k" ask $ask --data "$w/data" --limit 0 --format csv)
  da=$(duck "$(count_sql "$where")" "$(list_sql "$where")")
  dc=$(duck_cli "$(count_sql "$where")" "$(list_sql "$where")")
  df=$(duck "$(all_sql "$where")")
  dfc=$(best sh -c "duckdb -csv -c \"$(all_sql "$where")\"")
  printf "%-12s | %s | %s (%s) | %s (%s)" "$name" "$(ms "$ta")" "$(ms "$da")" "$(x "$da" "$ta")" "$(ms "$dc")" "$(x "$dc" "$ta")"
  if [ "${JQ:-1}" = 0 ]; then printf " | - "; else
    tj=$(time_cmd sh -c "jq -c 'select($sel) | .auditID' '$w/audit.log' | sort -u")
    printf " | %8.0f ms (%5.0fx)" "$(echo "$tj*1000" | bc -l)" "$(echo "$tj/$ta" | bc -l)"
  fi
  printf " || %s | %s (%s) | %s (%s)\n" "$(ms "$tf")" "$(ms "$df")" "$(x "$df" "$tf")" "$(ms "$dfc")" "$(x "$dfc" "$tf")"
}
q secrets secrets '.objectRef.resource == "secrets"' "resource = 'secrets' and first"
q exec exec '.objectRef.subresource == "exec" or .objectRef.subresource == "attach" or .objectRef.subresource == "portforward"' "resource = 'pods' and subresource in ('exec', 'attach', 'portforward') and first"
# 401s are answered before a request has stages: code is on its only (or last) stage.
q failed-auth failed-auth '.responseStatus.code == 401' "code = 401"
q deletions deletions '.verb == "delete" or .verb == "deletecollection"' "verb in ('delete', 'deletecollection') and first"
# Top users: requests per user (one per auditID).
top_sql="select user, count(*) as requests from read_parquet('$segs') where first group by user order by requests desc"
tk=$(best "$k" ask top-users --data "$w/data")
td=$(duck "$top_sql")
tdc=$(duck_cli "$top_sql")
printf "%-12s | %s | %s (%s) | %s (%s)" top-users "$(ms "$tk")" "$(ms "$td")" "$(x "$td" "$tk")" "$(ms "$tdc")" "$(x "$tdc" "$tk")"
if [ "${JQ:-1}" = 0 ]; then echo " | -"; else
  tj=$(time_cmd sh -c "jq -r '[.auditID, .user.username] | @tsv' '$w/audit.log' | sort -u | cut -f2 | sort | uniq -c | sort -rn")
  printf " | %8.0f ms (%5.0fx)\n" "$(echo "$tj*1000" | bc -l)" "$(echo "$tj/$tk" | bc -l)"
fi
