#!/usr/bin/env bash
# One MizuLiveClient's receive rate and CPU per message: a fresh release ChatApp, one
# client-bench receiver subscribed to chat:bench, one client-bench publisher sending COUNT
# room messages at RATE per second (0: as fast as round trips of 256 allow). Each run prints
# the receiver's line; run it a few times and quote the medians (BENCHMARKS.md).
#   Benchmarks/client.sh [RATE] [COUNT] [runs]        default: 0 200000 3
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd .. && pwd)
rate=${1:-0}
count=${2:-200000}
runs=${3:-3}
(cd "$root" && swift build -c release --product ChatApp 2>&1 | grep -E "error|warning:" || true)
swift build -c release --product client-bench 2>&1 | grep -E "error|warning:" || true
chatapp="$root/.build/release/ChatApp"
bench="$(swift build -c release --show-bin-path)/client-bench"
for run in $(seq 1 "$runs"); do
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  "$chatapp" --host 127.0.0.1 --port "$port" > /dev/null 2>&1 &
  server=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  out=$(mktemp)
  timeout 120 "$bench" receive "ws://127.0.0.1:$port/ws" --count "$count" > "$out" &
  receiver=$!
  for _ in $(seq 1 100); do grep -q ready "$out" && break; sleep 0.1; done
  timeout 120 "$bench" publish "ws://127.0.0.1:$port/ws" --count "$count" --rate "$rate"
  wait "$receiver" || true
  echo "run $run (rate $rate): $(grep received "$out")"
  rm -f "$out"
  kill "$server"; wait "$server" 2>/dev/null || true
done
