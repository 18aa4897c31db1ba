#!/usr/bin/env bash
# Runs every test suite:
#   1. build (debug, all targets) with zero warnings from our code, without and with the
#      package trait TLS (swift-nio-ssl); what follows uses the TLS build
#   2. swift test: unit and integration suites (real servers on 127.0.0.1, port 0; the Redis
#      backplane suite starts, restarts and pauses its own redis-server, the cluster suite a
#      six-node Redis Cluster; https with a self-signed certificate); then scripts/docs.sh
#      (DocC, warnings as errors; the articles' code compiled; doc coverage)
#   3. the concurrency suites again under ThreadSanitizer
#   4. interop: Python's websockets client against EchoServer
#   5. ChatApp: the wire contract over real sockets, two processes joined by a redis-server,
#      the page in headless Chromium, and Examples/ChatClient (MizuLiveClient) against real
#      ChatApps (restarts, SIGKILL, SIGSTOP, 401, a 503 with Retry-After)
#   6. release builds of the ChatApp, Benchmarks/ and Fuzz/; the allocation guard (release:
#      the publish path's allocations against their budgets); every fuzz target for 60 s
#   7. Autobahn TestSuite, cases 1 to 13: the server half against a release EchoServer and the
#      client half (WebSocketClient, through a release EchoClient), both at once
# `scripts/test.sh --quick` skips ThreadSanitizer, the extra builds and the fuzz run, and runs
# a fast Autobahn subset.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quick=0
[ "${1:-}" = "--quick" ] && quick=1
logs="$root/.build-logs"
mkdir -p "$logs"
# Servers the Swift tests start record their PIDs here; whatever is left is ended on exit.
export MIZU_TEST_PID_FILE="$logs/test-pids"
: > "$MIZU_TEST_PID_FILE"
# A test step's `timeout` ends `swift test`, not the test process it started: that one would
# go on (holding CPU and its servers) beside the next steps. Ours are under this tree.
end_stray_test_processes() {
  pkill -9 -f "$root/\.build[^ ]*/MizuPackageTests\.xctest" 2>/dev/null || true
}
cleanup() {
  end_stray_test_processes
  while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < "$MIZU_TEST_PID_FILE"
  [ -n "${echo_pid:-}" ] && kill "$echo_pid" 2>/dev/null || true
}
trap cleanup EXIT
passed=0
failed=0
failures=()

step() { echo; echo "== $*"; }
record() {  # record NAME STATUS
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

bash scripts/install-deps.sh

# Every wait a test makes for the server is multiplied by this (Tests/Support/Patience.swift,
# Tests/ChatApp/test_contract.py): a slow or busy machine makes the run slower, not red.
# ThreadSanitizer slows code 5-15x and gets more below. Set it yourself to override.
export MIZU_TEST_PATIENCE="${MIZU_TEST_PATIENCE:-10}"

step "build (warnings from our code fail the run)"
for traits in "" "TLS"; do
  set +e
  if [ -z "$traits" ]; then
    swift build --build-tests > "$logs/build.log" 2>&1
  else
    swift build --build-tests --traits "$traits" > "$logs/build.log" 2>&1
  fi
  status=$?
  set -e
  grep -E "error:|warning:" "$logs/build.log" | grep -v "/.build/checkouts/" | sort -u || true
  if [ $status -ne 0 ]; then echo "FAILED: build (traits: ${traits:-none})"; exit 1; fi
  if grep -E "^/.*(Sources|Tests|Examples)/.*warning:" "$logs/build.log" | grep -qv "/.build/"; then
    echo "FAILED: the build printed warnings (traits: ${traits:-none})"
    exit 1
  fi
done

step "architecture: each module imports only what ARCHITECTURE.md allows; every mutant applies"
set +e
bash scripts/check-architecture.sh && bash scripts/mutants.sh --check
status=$?
set -e
record "architecture" $status

step "swift test"
set +e
timeout 900 swift test --skip-build --traits TLS > "$logs/swift-test.log" 2>&1
status=$?
[ $status -eq 124 ] && { echo "swift test timed out (900 s)"; end_stray_test_processes; }
set -e
grep -E "✘|Test run with|error:" "$logs/swift-test.log" | grep -v "^\[" || true
grep -q "✔ Test run with .* passed" "$logs/swift-test.log" || status=1
record "swift test" $status

step "documentation: DocC of every library (warnings as errors), article code, coverage"
set +e
timeout 900 bash scripts/docs.sh > "$logs/docs.log" 2>&1
status=$?
set -e
grep -vE "^== " "$logs/docs.log" | tail -20 || true
record "docs" $status

if [ $quick -eq 0 ]; then
  step "swift test under ThreadSanitizer (concurrency suites)"
  set +e
  # MIZU_TSAN_LOCKS: pthread locks ThreadSanitizer can see, for the inline ones (InlineLock.swift).
  swift build --build-tests --sanitize=thread --scratch-path .build-tsan -Xswiftc -DMIZU_TSAN_LOCKS > "$logs/tsan-build.log" 2>&1 &&
    TSAN_OPTIONS="suppressions=$PWD/scripts/tsan-suppressions.txt print_suppressions=1" \
    MIZU_TEST_PATIENCE=$((MIZU_TEST_PATIENCE * 4)) timeout 1200 swift test --skip-build --sanitize=thread --scratch-path .build-tsan -Xswiftc -DMIZU_TSAN_LOCKS \
      --filter "StressTests|LiveServerTests|WebSocketEndpointTests|RedisBackplaneTests|BrokerTests|LiveContractTests|SeedFidelityTests|ShutdownDrainTests|ServiceLifecycleTests|ConnectionLimitTests|LiveMetricsTests|WebSocketChannelHandlerTests|HeartbeatWheelTests|HostileLiveTests|HostileLiveBoundsTests|HealthTests|HistoryTests|PresenceTests|PresenceReadsTests|RedisHistoryPresenceTests|BackplaneContinuityTests|StreamContinuityTests|LiveSessionLoopTests|HistoryPresenceStoreTests|CommandTests|WebSocketClientTests|LiveClientTests|ClientCoreTests|RedisClusterTests|PublishOrderTests|StreamRewindTests|ClusterBarrierTests" > "$logs/tsan.log" 2>&1
  status=$?
  [ $status -eq 124 ] && { echo "ThreadSanitizer run timed out (1,200 s)"; end_stray_test_processes; }
  set -e
  grep -E "✘|Test run with|ThreadSanitizer|error:" "$logs/tsan-build.log" "$logs/tsan.log" | grep -v "^\[" | head -40 || true
  # The whole report of each race (both stacks), and every suppression that matched.
  awk '/WARNING: ThreadSanitizer/{n=60} n>0{print; n--}' "$logs/tsan.log" | head -400 || true
  grep -A3 "ThreadSanitizer: Matched" "$logs/tsan.log" || true
  grep -q "WARNING: ThreadSanitizer" "$logs/tsan.log" && status=1
  record "ThreadSanitizer" $status
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
bin=$(swift build --traits TLS --show-bin-path)

step "interop: Python websockets against EchoServer"
port=$(free_port)
"$bin/EchoServer" --host 127.0.0.1 --port "$port" > "$logs/echo-interop.log" 2>&1 &
echo_pid=$!
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
set +e
timeout 120 python3 Tests/Interop/echo_interop.py "$port"
status=$?
set -e
kill "$echo_pid" 2>/dev/null || true
wait "$echo_pid" 2>/dev/null || true
record "interop" $status

step "ChatApp: contract and browser (pytest)"
set +e
CHATAPP_BIN="$bin/ChatApp" ARTIFACTS_DIR="$root/artifacts" timeout 600 python3 -m pytest -q -p no:cacheprovider Tests/ChatApp
status=$?
set -e
record "ChatApp" $status

if [ $quick -eq 0 ]; then
  # What users and maintainers build by hand must keep building: the release ChatApp (the
  # main job), the benchmark package and the fuzz target.
  step "builds: release ChatApp, Benchmarks/, Fuzz/"
  set +e
  swift build -c release --product ChatApp > "$logs/release-chatapp.log" 2>&1 &&
    swift build --package-path Benchmarks > "$logs/benchmarks-build.log" 2>&1 &&
    bash scripts/fuzz.sh --build-only > "$logs/fuzz-build.log" 2>&1
  status=$?
  set -e
  # (|| true: head closing the pipe early must not end the run under pipefail.)
  [ $status -eq 0 ] || grep -hE "error" "$logs/release-chatapp.log" "$logs/benchmarks-build.log" "$logs/fuzz-build.log" | head -20 || true
  record "builds" $status

  # NIO's style: the publish path's allocations counted exactly in a release build (malloc
  # counted on the measuring thread); any count over its budget fails (Tests/AllocationGuard).
  step "allocation guard (release)"
  set +e
  swift build -c release --product AllocationGuard > "$logs/allocation-guard-build.log" 2>&1 &&
    timeout 300 "$(swift build -c release --show-bin-path)/AllocationGuard"
  status=$?
  set -e
  [ $status -eq 0 ] || grep -hE "error" "$logs/allocation-guard-build.log" | head -20 || true
  record "allocation guard" $status

  # Every parser of client bytes (HTTP heads, dates, ranges, cookies, media types, multipart,
  # Accept-Encoding, forms and queries, JSON, request targets; WebSocket frames, extension
  # headers, the live envelope, RESP) under libFuzzer for a bounded time: any crash fails.
  step "fuzz: 60 s over every target"
  set +e
  timeout 300 bash scripts/fuzz.sh 60 > "$logs/fuzz.log" 2>&1
  status=$?
  set -e
  grep -E "^#[0-9]+ *DONE|Done [0-9]+ runs|ERROR|deadly signal|FAILED" "$logs/fuzz.log" | head -5 || true
  record "fuzz" $status
fi

# The two halves share nothing but the installed suite and the release build, both made first;
# then they run at once, each in two shards (wstest is one single-threaded Python process per
# shard, and the compression cases are most of the full run's time).
step "Autobahn TestSuite: the server half (EchoServer) and the client half (WebSocketClient), at once"
set +e
bash scripts/autobahn.sh --prepare
prepared=$?
set -e
autobahn_args=(--shards=2)
[ $quick -eq 1 ] && autobahn_args+=(--quick)
if [ $prepared -eq 0 ]; then
  bash scripts/autobahn.sh "${autobahn_args[@]}" > "$logs/autobahn-server.log" 2>&1 &
  server_half=$!
  bash scripts/autobahn.sh --client "${autobahn_args[@]}" > "$logs/autobahn-client.log" 2>&1 &
  client_half=$!
  set +e
  wait $server_half; server_status=$?
  wait $client_half; client_status=$?
  set -e
else
  server_status=$prepared
  client_status=$prepared
fi
echo "-- server half"; cat "$logs/autobahn-server.log" 2>/dev/null || true
record "Autobahn" $server_status
echo "-- client half"; cat "$logs/autobahn-client.log" 2>/dev/null || true
record "Autobahn client" $client_status

echo
[ $failed -eq 0 ] || echo "failed: ${failures[*]}"
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
