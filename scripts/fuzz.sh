#!/usr/bin/env bash
# Builds the libFuzzer target (-sanitize=fuzzer,address) and runs it over Fuzz/corpus.
#   scripts/fuzz.sh [seconds]   (default 600)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
swift build --package-path Fuzz --scratch-path .build-fuzz -c release \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library 2>&1 | grep -E "error|warning:|Compiling|Build complete" || true
bin=$(swift build --package-path Fuzz --scratch-path .build-fuzz -c release --show-bin-path)/MizuFuzz
work=.build-fuzz/corpus
mkdir -p "$work"
"$bin" -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1 "$work" Fuzz/corpus
