#!/usr/bin/env bash
# Lists each module's public API (kind and path of every public symbol, SPI marked), from
# the compiler's symbol graphs: diff two runs to see what a change added or removed.
#   scripts/public-api.sh [Module ...]     default: MizuHTTP Mizu MizuWebSocket MizuLive
set -euo pipefail
cd "$(dirname "$0")/.."
modules=("$@")
[ ${#modules[@]} -eq 0 ] && modules=(MizuHTTP Mizu MizuWebSocket MizuLive)
# It exits non-zero when a test target's graph fails, after writing the libraries' graphs.
swift package dump-symbol-graph --minimum-access-level public > /dev/null 2>&1 || true
dir=$(ls -d .build/*/symbolgraph | head -1)
for module in "${modules[@]}"; do
  # Extensions of another module's types (Mizu's HTTPServer.service) are in Module@Other files.
  python3 - "$module" "$dir/$module.symbols.json" "$dir/$module"@*.symbols.json <<'PY'
import json, os, sys
module, paths = sys.argv[1], [p for p in sys.argv[2:] if os.path.exists(p)]
lines = set()
for path in paths:
    for s in json.load(open(path))["symbols"]:
        if s["accessLevel"] == "public":
            lines.add(f"{module}: {s['kind']['identifier'].removeprefix('swift.')} {'.'.join(s['pathComponents'])}" + (" [spi]" if s.get("spi") else ""))
print("\n".join(sorted(lines)))
PY
done
