#!/usr/bin/env bash
# Builds the DocC documentation of every library, warnings as errors, into static-hosting
# archives (.build-docs/archives/<Module>.doccarchive), and checks it:
#   - every ``Symbol`` link and <doc:Article> link resolves (docc --warnings-as-errors);
#   - every Swift block of an article appears, line for line, in a Tests/*/DocArticleExamples.swift
#     file, which the test build compiles (and partly runs): article code compiles;
#   - public symbols with a doc comment: at least MIZU_DOC_COVERAGE percent per library (98).
# The symbol graphs come from the compiler (swift package dump-symbol-graph, on the TLS build
# the tests use, so it is incremental); the toolchain's docc renders them.
#   scripts/docs.sh            all of it
#   scripts/docs.sh --check    the article code and coverage only (needs the symbol graphs once)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
modules=(MizuHTTP Mizu MizuCompat MizuWebSocket MizuLive MizuLiveClient)
out="$root/.build-docs"
minimum=${MIZU_DOC_COVERAGE:-98}

echo "== article code"
python3 - "$root" <<'PY'
import glob, os, re, sys
root = sys.argv[1]
def lines(text):
    return [l.strip() for l in text.splitlines() if l.strip()]
examples = {p: lines(open(p).read()) for p in glob.glob(os.path.join(root, "Tests/*/DocArticleExamples.swift"))}
failures = 0
blocks = 0
for article in sorted(glob.glob(os.path.join(root, "Sources/*/*.docc/*.md"))):
    for block in re.findall(r"```swift\n(.*?)```", open(article).read(), re.S):
        blocks += 1
        wanted = lines(block)
        imports = [l for l in wanted if l.startswith("import ")]
        body = [l for l in wanted if not l.startswith("import ")]
        def found(have):
            if any(i not in have for i in imports):
                return False
            n = len(body)
            return any(have[k:k + n] == body for k in range(len(have) - n + 1))
        if not any(found(have) for have in examples.values()):
            failures += 1
            print(f"{os.path.relpath(article, root)}: a Swift block is in no DocArticleExamples.swift file:\n  " + "\n  ".join(wanted[:4]) + "\n  ...")
print(f"{blocks} Swift blocks in the articles, {failures} not compiled")
sys.exit(1 if failures else 0)
PY

if [ "${1:-}" != "--check" ]; then
  echo "== symbol graphs"
  mkdir -p "$out"
  swift package --traits TLS dump-symbol-graph --minimum-access-level public > "$out/symbolgraph.log" 2>&1 || {
    # It exits non-zero when a test target's graph fails, after writing the libraries' graphs.
    grep -q "Files written to" "$out/symbolgraph.log" || { tail -20 "$out/symbolgraph.log"; exit 1; }
  }
fi
graphs=$(ls -d "$root"/.build/*/symbolgraph | head -1)

echo "== coverage (public symbols with a doc comment, at least $minimum %)"
python3 - "$graphs" "$minimum" "${modules[@]}" <<'PY'
import glob, json, os, sys
graphs, minimum, modules = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
low = 0
for module in modules:
    seen = {}
    for path in [os.path.join(graphs, f"{module}.symbols.json")] + glob.glob(os.path.join(graphs, f"{module}@*.symbols.json")):
        if not os.path.exists(path):
            continue
        graph = json.load(open(path))
        # A member that implements a documented protocol requirement takes the requirement's
        # documentation (DocC shows it): it counts as documented.
        implements = {r["source"] for r in graph.get("relationships", []) if r["kind"] in ("requirementOf", "defaultImplementationOf", "overrides")}
        conforms = {r["source"] for r in graph.get("relationships", []) if r["kind"] == "memberOf"}
        for symbol in graph["symbols"]:
            identifier = symbol["identifier"]["precise"]
            if symbol["accessLevel"] != "public" or "::SYNTHESIZED::" in identifier or symbol.get("spi"):
                continue
            documented = bool(symbol.get("docComment", {}).get("lines")) or identifier in implements
            seen[identifier] = (documented, ".".join(symbol["pathComponents"]))
    total = len(seen)
    documented = sum(1 for d, _ in seen.values() if d)
    share = 100.0 * documented / total if total else 100.0
    missing = sorted(name for d, name in seen.values() if not d)
    print(f"{module}: {documented}/{total} ({share:.1f} %)" + (f"; undocumented: {', '.join(missing[:12])}{' ...' if len(missing) > 12 else ''}" if missing else ""))
    if share < minimum:
        low += 1
sys.exit(1 if low else 0)
PY

[ "${1:-}" = "--check" ] && exit 0

echo "== docc (warnings as errors)"
mkdir -p "$out/archives"
failed=0
for module in "${modules[@]}"; do
  work="$out/work/$module"
  rm -rf "$work"
  mkdir -p "$work/graphs"
  cp "$graphs/$module.symbols.json" "$work/graphs/"
  cp "$graphs/$module"@*.symbols.json "$work/graphs/" 2>/dev/null || true
  cp -R "Sources/$module/$module.docc" "$work/$module.docc"
  # The wire protocol article is PROTOCOL.md itself, and the limits article the README's
  # "Limits and deadlines" section, so each has one source.
  if [ "$module" = MizuLive ]; then
    cp PROTOCOL.md "$work/$module.docc/WireProtocol.md"
    python3 - README.md "$work/$module.docc/Limits.md" <<'PY'
import sys
text = open(sys.argv[1]).read()
start = text.index("## Limits and deadlines\n")
end = text.index("\n## ", start + 1)
section = text[start:end].replace("## Limits and deadlines", "# Limits and deadlines", 1)
open(sys.argv[2], "w").write(section.rstrip() + "\n")
PY
  fi
  rm -rf "$out/archives/$module.doccarchive"
  docc convert "$work/$module.docc" \
    --additional-symbol-graph-dir "$work/graphs" \
    --fallback-display-name "$module" --fallback-bundle-identifier "dev.mizu.$module" \
    --output-path "$out/archives/$module.doccarchive" \
    --transform-for-static-hosting --hosting-base-path "$module" \
    --warnings-as-errors > "$work/docc.log" 2>&1 || { grep -E "^(error|warning)" "$work/docc.log" | head -200; echo "docc: $module failed"; failed=1; }
  [ -d "$out/archives/$module.doccarchive" ] && echo "$module: $out/archives/$module.doccarchive"
done
exit $failed
