#!/bin/bash
# The connect phase alone, servers side by side: each server is started in turn, loadgen
# connects and subscribes N clients, and the server's user + system CPU (from /proc/PID/stat,
# in clock ticks of 10 ms) is read between the start and loadgen's "connected" line, then again
# after the clients closed. Repetitions rotate over the servers.
#   LOADGEN=/tmp/bench-bin/loadgen N=10000 bash Benchmarks/connect-phase.sh 7 base=PATH final=PATH gorilla=PATH
# A name starting with "gorilla" gets Go-style flags (-host, -port); others get --host, --port.
# Prints one line per run: name, connect user+sys ticks, close user+sys ticks.
set -u
ulimit -n 20000
LOADGEN=${LOADGEN:-/tmp/bench-bin/loadgen}
N=${N:-10000}
REPS=$1; shift
port=$((19500 + RANDOM % 50))
out=$(mktemp)
for _ in $(seq 1 "$REPS"); do
  for spec in "$@"; do
    name=${spec%%=*}; bin=${spec#*=}
    port=$((port + 1))
    if [[ $name == gorilla* ]]; then "$bin" -host 127.0.0.1 -port $port > /dev/null 2>&1 & server=$!
    else "$bin" --host 127.0.0.1 --port $port > /dev/null 2>&1 & server=$!; fi
    for _ in $(seq 1 50); do (echo > /dev/tcp/127.0.0.1/$port) 2> /dev/null && break; sleep 0.1; done
    sleep 0.5
    read -r u0 s0 < <(awk '{print $14, $15}' /proc/$server/stat)
    "$LOADGEN" conns -n "$N" -hold 2 -src 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5 -url ws://127.0.0.1:$port/ws -pid $server > "$out" 2>&1 &
    client=$!
    for _ in $(seq 1 600); do grep -q " connected," "$out" && break; sleep 0.05; done
    read -r u1 s1 < <(awk '{print $14, $15}' /proc/$server/stat)
    wait $client; sleep 1.5
    read -r u2 s2 < <(awk '{print $14, $15}' /proc/$server/stat)
    kill $server; wait $server 2> /dev/null
    echo "$name connect $((u1 - u0))+$((s1 - s0)) close $((u2 - u1))+$((s2 - s1))"
  done
done
rm -f "$out"
