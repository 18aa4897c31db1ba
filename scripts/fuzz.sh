#!/usr/bin/env bash
# Builds the libFuzzer target (-sanitize=fuzzer,address) and runs it over Fuzz/corpus.
#   scripts/fuzz.sh [seconds]      (default 600)
#   scripts/fuzz.sh --build-only   build it and stop (CI)
# New inputs go to .build-fuzz/corpus (made if missing); libFuzzer reads Fuzz/corpus and its
# subfolders (one per target) as seeds. A crash, a failed invariant or an input taking over
# 10 s fails the run, and the input is saved as .build-fuzz/crash-* (or timeout-*, leak-*).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
if [ "$seconds" != "--build-only" ] && ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: scripts/fuzz.sh [seconds | --build-only]" >&2
  exit 2
fi
mkdir -p .build-fuzz
# SwiftPM can reuse its cached build plan after a source file was added (the build then
# misses it); planning again costs a second.
rm -f .build-fuzz/release.yaml .build-fuzz/release/description.json
if ! swift build --package-path Fuzz --scratch-path .build-fuzz -c release \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library > .build-fuzz/build.log 2>&1; then
  echo "FAILED: building the fuzz target:"; grep -E "error" .build-fuzz/build.log | head -20
  exit 1
fi
[ "$seconds" = "--build-only" ] && exit 0
bin=$(swift build --package-path Fuzz --scratch-path .build-fuzz -c release --show-bin-path)/MizuFuzz
work=.build-fuzz/corpus
mkdir -p "$work"
# Findings go under .build-fuzz, not into the working tree.
"$bin" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -artifact_prefix=.build-fuzz/ "$work" Fuzz/corpus
