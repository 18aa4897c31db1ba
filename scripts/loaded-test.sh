#!/usr/bin/env bash
# Proves the test command does not depend on this machine's speed: runs the README's test
# command N times in a row on a fresh clone of HEAD while a CPU hog keeps every core busy.
#   scripts/loaded-test.sh [runs] [test.sh arguments...]     (default: 3 full runs)
# Each run's summary goes to stdout; logs stay in the clone's .build-logs/.
# MIZU_LOADED_WARM=1 builds everything test.sh builds before the hogs start, so every loaded
# run times the tests, not a fresh clone's builds under load (an hour on 2 cores): builds have
# no timing assumptions to prove, and three cold-start runs no longer fit one session.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
shift || true
# MIZU_LOADED_CLONE=DIR runs in an earlier clone instead (its builds cached), moved to HEAD.
if [ -n "${MIZU_LOADED_CLONE:-}" ]; then
  clone=$MIZU_LOADED_CLONE
  head=$(git rev-parse HEAD)
  git -C "$clone" fetch -q origin && git -C "$clone" checkout -q --detach "$head"
else
  clone=$(mktemp -d /tmp/mizu-loaded.XXXXXX)
  git clone -q . "$clone"
fi
if [ "${MIZU_LOADED_WARM:-0}" = 1 ]; then
  start=$(date +%s)
  (cd "$clone" &&
    swift build --build-tests &&
    swift build --build-tests --traits TLS &&
    swift build --build-tests --sanitize=thread --scratch-path .build-tsan -Xswiftc -DMIZU_TSAN_LOCKS &&
    swift build -c release --product ChatApp &&
    swift build -c release --product AllocationGuard &&
    swift build -c release --product EchoServer &&
    swift build -c release --product EchoClient &&
    swift build --package-path Benchmarks &&
    bash scripts/fuzz.sh --build-only) > "$clone/warm-build.log" 2>&1
  echo "warm builds (no hogs): $(( $(date +%s) - start )) s"
fi
cores=$(nproc)
hogs=()
for _ in $(seq 1 "$cores"); do
  python3 -c 'while True: pass' &
  hogs+=($!)
done
trap 'kill "${hogs[@]}" 2>/dev/null || true' EXIT
echo "clone: $clone ($(git -C "$clone" rev-parse --short HEAD)); $cores CPU hogs: ${hogs[*]}"
failed=0
for run in $(seq 1 "$runs"); do
  start=$(date +%s)
  set +e
  (cd "$clone" && bash scripts/test.sh "$@") > "$clone/loaded-run-$run.log" 2>&1
  status=$?
  set -e
  echo "run $run: exit $status after $(( $(date +%s) - start )) s; $(grep -E '^suites:' "$clone/loaded-run-$run.log" || echo 'no summary')"
  [ $status -eq 0 ] || failed=$((failed + 1))
done
echo "$((runs - failed)) passed, $failed failed"
[ $failed -eq 0 ]
