#!/usr/bin/env bash
# Runs the standard scenarios against ChatApp (ours) and hb-chat (the Hummingbird peer),
# each server started fresh per run, and prints every run plus the medians.
#   Benchmarks/run.sh [S1|S2|S3|S4|all] [runs]      (default: all 3)
# Loopback only; every run is bounded (live-bench caps connections and duration).
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd .. && pwd)
scenario=${1:-all}
runs=${2:-3}
out="$root/.build-bench"
mkdir -p "$out"

echo "== building (release)"
(cd "$root" && swift build -c release --product ChatApp 2>&1 | grep -E "error|warning:" || true)
swift build -c release --product live-bench 2>&1 | grep -E "error|warning:" || true
swift build -c release --product hb-chat 2>&1 | grep -E "error|warning:" || true
chat_bin="$(cd "$root" && swift build -c release --show-bin-path)/ChatApp"
bin="$(swift build -c release --show-bin-path)"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

start_server() {  # start_server NAME PORT -> sets server_pid
  case "$1" in
    mizu) "$chat_bin" --host 127.0.0.1 --port "$2" > "$out/server-$1.log" 2>&1 & ;;
    hummingbird) "$bin/hb-chat" --host 127.0.0.1 --port "$2" > "$out/server-$1.log" 2>&1 & ;;
  esac
  server_pid=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0; sleep 0.1; done
  echo "server $1 did not start"; return 1
}

scenario_args() {
  case "$1" in
    S1) echo "fanout --subscribers 999 --publishers 1 --size 64 --window 16 --warmup 3 --duration 10" ;;
    S2) echo "fanout --subscribers 999 --publishers 1 --size 64 --rate 200 --warmup 3 --duration 10" ;;
    S3) echo "conns --count 10000" ;;
    S4) echo "fanout --subscribers 999 --publishers 1 --size 64 --window 16 --warmup 3 --duration 10 --compress" ;;
  esac
}

scenarios=(S1 S2 S3 S4)
[ "$scenario" != all ] && scenarios=("$scenario")
port=18080
for s in "${scenarios[@]}"; do
  for server in mizu hummingbird; do
    for run in $(seq 1 "$runs"); do
      port=$((port + 1))
      start_server "$server" "$port"
      args=$(scenario_args "$s")
      extra=""
      [[ "$args" == *--compress* ]] && extra="--compress" && args=${args/--compress/}
      line=$(timeout 300 "$bin/live-bench" $args --port "$port" --server-pid "$server_pid" $extra 2>&1 | tail -1 || echo "run failed or timed out")
      kill "$server_pid" 2>/dev/null || true
      wait "$server_pid" 2>/dev/null || true
      echo "$s $server run=$run $line" | tee -a "$out/results.txt"
    done
  done
done

python3 - "$out/results.txt" "${scenarios[@]}" <<'PY'
import re, statistics, sys
path, wanted = sys.argv[1], set(sys.argv[2:])
rows = {}
for line in open(path):
    parts = line.split()
    if len(parts) < 3 or parts[0] not in wanted:
        continue
    values = dict(re.findall(r"(\w+)=([\w./:-]+)", line))
    rows.setdefault((parts[0], parts[1]), []).append(values)
keys = {"S1": "server_cpu_us_per_delivery", "S2": "p99_us", "S3": "kib_per_connection", "S4": "server_cpu_us_per_delivery"}
print("\n| scenario | server | metric | median | min..max | runs | lost | duplicates |")
print("|---|---|---|---|---|---|---|---|")
for (scenario, server), runs in sorted(rows.items()):
    key = keys[scenario]
    numbers = [float(r[key]) for r in runs if r.get(key, "n/a") not in ("n/a",)]
    if not numbers:
        continue
    lost = sum(int(r.get("lost", 0)) for r in runs)
    duplicates = sum(int(r.get("duplicates", 0)) for r in runs)
    print(f"| {scenario} | {server} | {key} | {statistics.median(numbers):.3f} | {min(numbers):.3f}..{max(numbers):.3f} | {len(numbers)} | {lost} | {duplicates} |")
PY
