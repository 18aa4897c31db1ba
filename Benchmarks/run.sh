#!/usr/bin/env bash
# Runs the standard scenarios against ChatApp (ours) and hb-chat (the Hummingbird peer),
# each server started fresh per run, and prints every run plus the medians.
#   Benchmarks/run.sh [S1|S2|S2B|S3|S4|all] [runs]  (default: all 3)
#   S2B: the quiet case, a fixed 20 publishes/s to 999 subscribers (CPU per delivery, p99)
#   S1W, S2W: S1 and S2 with ChatApp's --write-delay-ms 5 (writes held 5 ms to share syscalls)
#   Benchmarks/run.sh metrics [runs]                S1 against ChatApp without and with --metrics
#     (S1, S1M), runs alternating, ours only
#   Benchmarks/run.sh history [runs]                S1 against ChatApp with --no-history and with
#     its default history on chat:general (S1N, S1), runs alternating, ours only
#   Benchmarks/run.sh storm [runs]                  connect storms: 2,000 / 6,000 / 10,000 / 18,000
#     clients connecting and subscribing as fast as they can (C2000 ... C18000)
#   BASE_CHATAPP=/path/ChatApp Benchmarks/run.sh ab [runs]
#                                                   same-session A/B of two ChatApp builds (base, then
#     this tree's as "mizu"), S1, S3 and C10000 (AB_SCENARIOS picks, R1 included), the order
#     of the two swapped every run
#   Benchmarks/run.sh redis [runs]                  cross-node through a redis-server (R1, R2)
#     next to single-node S1/S2 of the same run: two ChatApps share one Redis; the 999
#     subscribers are on node A, the publisher on node B.
#   Benchmarks/run.sh cluster [runs]                R1 through one redis-server (R1) and through a
#     Redis Cluster of 3 primaries without replicas (R1C, --redis-cluster), runs alternating
# Loopback only; every run is bounded (live-bench caps connections and duration).
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd .. && pwd)
scenario=${1:-all}
runs=${2:-3}
out="$root/.build-bench"
mkdir -p "$out"
: > "$out/results.txt"   # this invocation's runs only

echo "== building (release)"
(cd "$root" && swift build -c release --product ChatApp 2>&1 | grep -E "error|warning:" || true)
swift build -c release --product live-bench 2>&1 | grep -E "error|warning:" || true
swift build -c release --product hb-chat 2>&1 | grep -E "error|warning:" || true
chat_bin="$(cd "$root" && swift build -c release --show-bin-path)/ChatApp"
bin="$(swift build -c release --show-bin-path)"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

start_server() {  # start_server NAME PORT [ChatApp args] -> sets server_pid
  case "$1" in
    mizu) "$chat_bin" --host 127.0.0.1 --port "$2" "${@:3}" > "$out/server-$1.log" 2>&1 & ;;
    base) "$BASE_CHATAPP" --host 127.0.0.1 --port "$2" "${@:3}" > "$out/server-$1.log" 2>&1 & ;;
    hummingbird) "$bin/hb-chat" --host 127.0.0.1 --port "$2" > "$out/server-$1.log" 2>&1 & ;;
  esac
  server_pid=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null && return 0; sleep 0.1; done
  echo "server $1 did not start"; return 1
}

scenario_args() {
  case "$1" in
    R1) echo "fanout --subscribers 999 --publishers 1 --size 64 --window 16 --warmup 3 --duration 10" ;;
    R2) echo "fanout --subscribers 999 --publishers 1 --size 64 --rate 200 --warmup 3 --duration 10" ;;
    S1|S1W|S1M|S1N) echo "fanout --subscribers 999 --publishers 1 --size 64 --window 16 --warmup 3 --duration 10" ;;
    S2|S2W) echo "fanout --subscribers 999 --publishers 1 --size 64 --rate 200 --warmup 3 --duration 10" ;;
    S2B) echo "fanout --subscribers 999 --publishers 1 --size 64 --rate 20 --warmup 3 --duration 10" ;;
    S3) echo "conns --count 10000" ;;
    C*) echo "conns --count ${1#C}" ;;
    S4) echo "fanout --subscribers 999 --publishers 1 --size 64 --window 16 --warmup 3 --duration 10 --compress" ;;
  esac
}

run_bench() {  # run_bench SCENARIO PORT PID [extra args] -> prints live-bench's result line
  local s=$1 port=$2 pid=$3
  shift 3
  timeout 300 "$bin/live-bench" $(scenario_args "$s") --port "$port" --server-pid "$pid" "$@" 2>&1 | tail -1 || echo "run failed or timed out"
}

# run_cross_node SCENARIO CHATAPP NAME RUN: a redis-server and two ChatApps with --redis; the
# subscribers on node A, the publisher on node B; appends the result line.
run_cross_node() {
  local s=$1 binary=$2 name=$3 run=$4
  redis_bin=$(command -v redis-server || echo /usr/bin/redis-server)
  redis_port=$((port + 1)); a=$((port + 2)); b=$((port + 3)); port=$b
  "$redis_bin" --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning > "$out/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break; sleep 0.1; done
  "$binary" --host 127.0.0.1 --port "$a" --redis "redis://127.0.0.1:$redis_port" > "$out/server-a.log" 2>&1 &
  a_pid=$!
  "$binary" --host 127.0.0.1 --port "$b" --redis "redis://127.0.0.1:$redis_port" > "$out/server-b.log" 2>&1 &
  b_pid=$!
  for p in "$a" "$b"; do
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
  done
  line=$(run_bench "$s" "$a" "$a_pid" --publisher-port "$b")
  redis_cpu=$(python3 -c "import os,sys; f=open(f'/proc/{sys.argv[1]}/stat').read().rsplit(')',1)[1].split(); print(round((int(f[11])+int(f[12]))/os.sysconf('SC_CLK_TCK'),2))" "$redis_pid")
  kill "$a_pid" "$b_pid" "$redis_pid"
  wait "$a_pid" "$b_pid" "$redis_pid" 2>/dev/null || true
  echo "$s $name run=$run $line redis_cpu_s=$redis_cpu" | tee -a "$out/results.txt"
}

# run_cross_cluster SCENARIO CHATAPP NAME RUN: as run_cross_node, through a fresh Redis Cluster of
# 3 primaries (redis-cli --cluster create); Redis CPU is the three nodes' sum.
run_cross_cluster() {
  local s=$1 binary=$2 name=$3 run=$4
  local dir pids=() seeds=() nodes=()
  dir=$(mktemp -d)
  redis_bin=$(command -v redis-server || echo /usr/bin/redis-server)
  for i in 1 2 3; do
    local p=$((port + i))
    "$redis_bin" --port "$p" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning \
      --cluster-enabled yes --cluster-config-file "$dir/nodes-$i.conf" --dir "$dir" > "$out/redis-$i.log" 2>&1 &
    pids+=($!); nodes+=("127.0.0.1:$p")
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes > "$out/cluster-create.log" 2>&1
  for _ in $(seq 1 100); do redis-cli -p $((port + 1)) cluster info | grep -q cluster_state:ok && break; sleep 0.1; done
  a=$((port + 4)); b=$((port + 5)); port=$b
  "$binary" --host 127.0.0.1 --port "$a" --redis-cluster "$(IFS=,; echo "${nodes[*]}")" > "$out/server-a.log" 2>&1 &
  a_pid=$!
  "$binary" --host 127.0.0.1 --port "$b" --redis-cluster "$(IFS=,; echo "${nodes[*]}")" > "$out/server-b.log" 2>&1 &
  b_pid=$!
  for p in "$a" "$b"; do
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break; sleep 0.1; done
  done
  line=$(run_bench "$s" "$a" "$a_pid" --publisher-port "$b")
  redis_cpu=$(python3 -c "import os,sys; print(round(sum((lambda f: int(f[11])+int(f[12]))(open(f'/proc/{p}/stat').read().rsplit(')',1)[1].split()) for p in sys.argv[1:])/os.sysconf('SC_CLK_TCK'),2))" "${pids[@]}")
  kill "$a_pid" "$b_pid" "${pids[@]}"
  wait "$a_pid" "$b_pid" "${pids[@]}" 2>/dev/null || true
  rm -rf "$dir"
  echo "${s}C $name run=$run $line redis_cpu_s=$redis_cpu" | tee -a "$out/results.txt"
}

# run_single SCENARIO SERVER RUN [server args]: a fresh server, one live-bench run, its line.
run_single() {
  local s=$1 server=$2 run=$3
  port=$((port + 1))
  start_server "$server" "$port" "${@:4}"
  line=$(run_bench "$s" "$port" "$server_pid")
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  echo "$s $server run=$run $line" | tee -a "$out/results.txt"
}

port=18080
if [ "$scenario" = redis ]; then
  scenarios=(S1 R1 S2 R2)
  redis_bin=$(command -v redis-server || echo /usr/bin/redis-server)
  for run in $(seq 1 "$runs"); do
    for s in S1 S2; do
      run_single "$s" mizu "$run"
    done
    for s in R1 R2; do
      run_cross_node "$s" "$chat_bin" mizu+redis "$run"
    done
  done
fi

if [ "$scenario" = cluster ]; then
  for run in $(seq 1 "$runs"); do
    run_cross_node R1 "$chat_bin" mizu+redis "$run"
    run_cross_cluster R1 "$chat_bin" mizu+cluster "$run"
  done
fi

scenarios=(S1 S2 S2B S3 S4)
[ "$scenario" = redis ] && scenarios=()
[ "$scenario" = cluster ] && scenarios=()
[ "$scenario" != all ] && [ "$scenario" != redis ] && [ "$scenario" != cluster ] && scenarios=("$scenario")
[ "$scenario" = storm ] && scenarios=(C2000 C6000 C10000 C18000)
if [ "$scenario" = metrics ] || [ "$scenario" = history ]; then
  pair=(S1 S1M)
  [ "$scenario" = history ] && pair=(S1N S1)
  scenarios=()
  for run in $(seq 1 "$runs"); do
    for s in "${pair[@]}"; do
      server_args=()
      [ "$s" = S1M ] && server_args=(--metrics)
      [ "$s" = S1N ] && server_args=(--no-history)
      run_single "$s" mizu "$run" "${server_args[@]}"
    done
  done
fi
if [ "$scenario" = ab ]; then
  [ -x "${BASE_CHATAPP:-}" ] || { echo "ab: set BASE_CHATAPP to the other ChatApp binary"; exit 2; }
  scenarios=()
  for run in $(seq 1 "$runs"); do
    order=(base mizu)
    [ $((run % 2)) = 0 ] && order=(mizu base)
    for s in ${AB_SCENARIOS:-S1 S3 C10000}; do
      for server in "${order[@]}"; do
        if [ "$s" = R1 ]; then
          binary=$chat_bin
          [ "$server" = base ] && binary=$BASE_CHATAPP
          run_cross_node R1 "$binary" "$server" "$run"
          continue
        fi
        run_single "$s" "$server" "$run"
      done
    done
  done
fi
for s in "${scenarios[@]}"; do
  for server in mizu hummingbird; do
    for run in $(seq 1 "$runs"); do
      server_args=()
      [[ "$s" == *W && "$server" == mizu ]] && server_args=(--write-delay-ms 5)
      run_single "$s" "$server" "$run" "${server_args[@]}"
    done
  done
done

[ "$scenario" = redis ] && scenarios=(S1 R1 S2 R2)
[ "$scenario" = cluster ] && scenarios=(R1 R1C)
[ "$scenario" = storm ] && scenarios=(C2000 C6000 C10000 C18000)
[ "$scenario" = metrics ] && scenarios=(S1 S1M)
[ "$scenario" = history ] && scenarios=(S1N S1)
[ "$scenario" = ab ] && read -r -a scenarios <<< "${AB_SCENARIOS:-S1 S3 C10000}"
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
keys = {"S1": "server_cpu_us_per_delivery", "S1N": "server_cpu_us_per_delivery", "S1M": "server_cpu_us_per_delivery", "S2": "p99_us", "S1W": "server_cpu_us_per_delivery", "S2W": "p99_us", "S3": "kib_per_connection", "S4": "server_cpu_us_per_delivery",
        "R1": "server_cpu_us_per_delivery", "R1C": "server_cpu_us_per_delivery", "R2": "p99_us",
        "C2000": "server_cpu_us_per_connect", "C6000": "server_cpu_us_per_connect",
        "C10000": "server_cpu_us_per_connect", "C18000": "server_cpu_us_per_connect"}
print("\n| scenario | server | metric | median | min..max | runs | lost | duplicates |")
print("|---|---|---|---|---|---|---|---|")
for (scenario, server), runs in sorted(rows.items()):
    key = keys[scenario]
    numbers = [float(r[key]) for r in runs if r.get(key, "n/a") not in ("n/a",)]
    if not numbers:
        continue
    rates = [float(r["rate"].split("/")[0]) for r in runs if "rate" in r]
    if scenario.startswith("C"):
        per_s = [float(r["connects_per_s"]) for r in runs if r.get("connects_per_s", "n/a") != "n/a"]
        if per_s:
            print(f"| {scenario} | {server} | connects/s | {statistics.median(per_s):.0f} | {min(per_s):.0f}..{max(per_s):.0f} | {len(per_s)} | | |")
    if scenario in ("S1", "S1W", "R1", "R1C") and rates:
        print(f"| {scenario} | {server} | deliveries/s | {statistics.median(rates):.0f} | {min(rates):.0f}..{max(rates):.0f} | {len(rates)} | | |")
    if scenario in ("S2", "S2W", "R2"):
        p50 = [float(r["p50_us"]) for r in runs if "p50_us" in r]
        print(f"| {scenario} | {server} | p50_us | {statistics.median(p50):.0f} | {min(p50):.0f}..{max(p50):.0f} | {len(p50)} | | |")
    lost = sum(int(r.get("lost", 0)) for r in runs)
    duplicates = sum(int(r.get("duplicates", 0)) for r in runs)
    print(f"| {scenario} | {server} | {key} | {statistics.median(numbers):.3f} | {min(numbers):.3f}..{max(numbers):.3f} | {len(numbers)} | {lost} | {duplicates} |")
PY
