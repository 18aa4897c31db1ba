#!/usr/bin/env bash
# Runs every test suite. `scripts/test.sh --quick` skips the slow external suites
# (Autobahn's compression cases, the browser) for local iterations; CI runs it all.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

bash scripts/install-deps.sh

echo "== build (warnings are errors for our own code)"
build_log=$(mktemp)
swift build --build-tests 2>&1 | tee "$build_log" | grep -E "error|warning|Compiling|Build" | grep -v "^\[" || true
if grep -E "^/.*(Sources|Tests|Examples)/.*warning:" "$build_log" | grep -v "/.build/" ; then
  echo "FAILED: the build printed warnings"
  exit 1
fi
if grep -q "error:" "$build_log"; then
  echo "FAILED: build error"
  exit 1
fi

echo "== unit and integration tests"
swift test --skip-build 2>&1 | tee /tmp/mizu-swift-test.log | grep -vE "^(\[|✔ Test [a-zA-Z]+\(\) passed|◇ Test)" || true
if ! grep -q "✔ Test run with .* passed" /tmp/mizu-swift-test.log; then
  echo "FAILED: swift test"
  exit 1
fi

echo "== all suites passed"
