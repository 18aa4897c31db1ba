#!/usr/bin/env bash
# Fails when a module imports, or lists in Package.swift, one of our modules that
# ARCHITECTURE.md's table does not allow it (e.g. the WebSocket layer reaching the router).
set -euo pipefail
cd "$(dirname "$0")/.."
swift package dump-package > .build-architecture.json
trap 'rm -f .build-architecture.json' EXIT
python3 - <<'EOF'
import json, pathlib, re, sys

ours = {"CZlib", "MizuHTTP", "Mizu", "MizuCompat", "MizuWebSocket", "MizuLive", "MizuLiveClient"}
allowed = {
    "CZlib": set(),
    "MizuHTTP": {"CZlib"},
    "Mizu": {"MizuHTTP"},
    "MizuCompat": {"Mizu"},
    "MizuWebSocket": {"MizuHTTP", "CZlib"},
    "MizuLive": {"MizuHTTP", "MizuWebSocket"},
    "MizuLiveClient": {"MizuWebSocket", "MizuHTTP"},
}
problems = []
package = json.load(open(".build-architecture.json"))
for target in package["targets"]:
    name = target["name"]
    if name not in allowed:
        continue
    listed = set()
    for dependency in target.get("dependencies", []):
        for kind in ("byName", "target"):
            if kind in dependency:
                listed.add(dependency[kind][0])
    for extra in sorted((listed & ours) - allowed[name]):
        problems.append(f"Package.swift: {name} depends on {extra}")
    folder = pathlib.Path(target.get("path") or f"Sources/{name}")
    for source in sorted(folder.rglob("*.swift")):
        for number, line in enumerate(source.read_text().splitlines(), 1):
            match = re.match(r"\s*(?:@[\w()]+\s+)*import\s+(?:\w+\s+)?(\w+)", line)
            if match and match.group(1) in ours and match.group(1) not in allowed[name]:
                problems.append(f"{source}:{number}: {name} imports {match.group(1)}")
for problem in problems:
    print(problem)
if problems:
    print(f"architecture: {len(problems)} imports the module table forbids (ARCHITECTURE.md)")
    sys.exit(1)
print(f"architecture: {len(allowed)} modules import only what ARCHITECTURE.md allows")
EOF
