#!/usr/bin/env bash
# Lists each module's public API (kind and path of every public symbol, SPI marked), from
# the compiler's symbol graphs: diff two runs to see what a change added or removed.
#   scripts/public-api.sh [Module ...]     default: MizuHTTP Mizu MizuWebSocket MizuLive
set -euo pipefail
cd "$(dirname "$0")/.."
modules=("$@")
[ ${#modules[@]} -eq 0 ] && modules=(MizuHTTP Mizu MizuWebSocket MizuLive)
swift package dump-symbol-graph --minimum-access-level public > /dev/null 2>&1
dir=$(ls -d .build/*/symbolgraph | head -1)
for module in "${modules[@]}"; do
  python3 - "$dir/$module.symbols.json" "$module" <<'PY'
import json, sys
graph = json.load(open(sys.argv[1]))
lines = sorted({
    f"{sys.argv[2]}: {s['kind']['identifier'].removeprefix('swift.')} {'.'.join(s['pathComponents'])}" + (" [spi]" if s.get("spi") else "")
    for s in graph["symbols"] if s["accessLevel"] == "public"
})
print("\n".join(lines))
PY
done
