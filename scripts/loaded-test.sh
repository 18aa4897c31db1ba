#!/usr/bin/env bash
# Proves the test command does not depend on this machine's speed: runs the README's test
# command N times in a row on a fresh clone of HEAD while a CPU hog keeps every core busy.
#   scripts/loaded-test.sh [runs] [test.sh arguments...]     (default: 3 full runs)
# Each run's summary goes to stdout; logs stay in the clone's .build-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
shift || true
clone=$(mktemp -d /tmp/mizu-loaded.XXXXXX)
git clone -q . "$clone"
cores=$(nproc)
hogs=()
for _ in $(seq 1 "$cores"); do
  python3 -c 'while True: pass' &
  hogs+=($!)
done
trap 'kill "${hogs[@]}" 2>/dev/null || true' EXIT
echo "clone: $clone ($(git rev-parse --short HEAD)); $cores CPU hogs: ${hogs[*]}"
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
