#!/usr/bin/env bash
# Runs the Autobahn TestSuite fuzzingclient against a release build of EchoServer and
# fails on any FAILED or UNIMPLEMENTED case (OK, NON-STRICT and INFORMATIONAL pass).
#   scripts/autobahn.sh            cases 1 to 13 (all of them; the compression cases take long)
#   scripts/autobahn.sh --quick    a fast subset (no 9.x performance, sampled 12.x and 13.x)
#   scripts/autobahn.sh --record   the full run, and its table written into CONFORMANCE.md
#                                  (by hand: CI never rewrites tracked files)
#   scripts/autobahn.sh --client [--quick|--record]
#                                  the client half instead: the fuzzingserver against a release
#                                  build of EchoClient (WebSocketClient), same cases and verdicts
#   scripts/autobahn.sh --prepare  installs the suite and builds both release binaries, then
#                                  exits: after it the two halves can run at once (test.sh does)
#   --shards N                     splits the cases over N wstest processes run at once (one
#                                  EchoServer or EchoClient each); the verdict covers them all
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

cases='["1.*","2.*","3.*","4.*","5.*","6.*","7.*","8.*","9.*","10.*","11.*","12.*","13.*"]'
mode=full
side=server
shards=1
for argument in "$@"; do
  case "$argument" in
    --quick)
      mode=quick
      cases='["1.*","2.*","3.*","4.*","5.*","6.*","7.*","10.*","12.1.*","13.1.*","13.3.*","13.5.*","13.7.*"]' ;;
    --record) mode=record ;;
    --client) side=client ;;
    --prepare) mode=prepare ;;
    --shards=*) shards=${argument#--shards=} ;;
  esac
done

# Python 2.7 from pyenv; the suite is Python 2 only.
py2=""
for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/2.7*/bin/python /usr/bin/python2.7; do
  [ -x "$candidate" ] && py2=$candidate && break
done
[ -n "$py2" ] || { echo "FAILED: Python 2.7 not found (pyenv versions)"; exit 1; }

site_dir="$root/.build-autobahn/site"
mkdir -p "$root/.build-autobahn"
if [ ! -d "$site_dir/autobahntestsuite" ]; then
  echo "installing autobahntestsuite into $site_dir"
  if ! "$py2" -m pip install -q --disable-pip-version-check --target "$site_dir" autobahntestsuite==25.10.1 > "$root/.build-autobahn/pip.log" 2>&1; then
    echo "FAILED: installing autobahntestsuite:"; grep -v DEPRECATION "$root/.build-autobahn/pip.log" | tail -20
    rm -rf "$site_dir"
    exit 1
  fi
fi

cat > "$root/.build-autobahn/wstest.py" <<'PY'
import site, sys
site.addsitedir(sys.argv.pop(1))  # the .pth files of zope and friends need addsitedir
from autobahntestsuite.wstest import run
sys.argv[0] = "wstest"
sys.exit(run())
PY
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_for_port() {
  for _ in $(seq 1 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
build_release() {  # build_release PRODUCT
  echo "== building $1 (release)"
  if ! swift build -c release --product "$1" > "$root/.build-autobahn/build-$1.log" 2>&1; then
    # Never a stale binary: a failed build fails the run, with its reason.
    echo "FAILED: the release build of $1:"; grep -E "error" "$root/.build-autobahn/build-$1.log" | head -20
    exit 1
  fi
}
if [ "$mode" = prepare ]; then
  build_release EchoServer
  build_release EchoClient
  exit 0
fi
product=$([ "$side" = server ] && echo EchoServer || echo EchoClient)
build_release "$product"
bin=$(swift build -c release --show-bin-path)/$product

# The cases' groups (1.* ... 11.*, and 12.x.* and 13.x.* one by one: they are the slow ones)
# dealt round-robin over the shards, so each gets a share of the slow ones.
groups=$(python3 - "$cases" <<'PY'
import json, sys
groups = []
for pattern in json.loads(sys.argv[1]):
    if pattern in ("12.*", "13.*"):
        groups += ["%s.%d.*" % (pattern[:2], n) for n in range(1, 8 if pattern == "13.*" else 6)]
    else:
        groups.append(pattern)
print(json.dumps(groups))
PY
)
shard_cases() {  # shard_cases INDEX: the JSON list of shard INDEX's groups
  python3 -c 'import json, sys; g = json.loads(sys.argv[1]); i, n = int(sys.argv[2]), int(sys.argv[3]); print(json.dumps(g[i::n]))' "$groups" "$1" "$shards"
}

pids=()
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done' EXIT
run_server_shard() {  # run_server_shard WORK CASES: wstest's fuzzingclient against an EchoServer
  local work=$1 shard=$2 port echo_pid
  port=$(free_port)
  "$bin" --host 127.0.0.1 --port "$port" > "$work/echo.log" 2>&1 &
  echo_pid=$!
  wait_for_port "$port" || { echo "FAILED: EchoServer did not start"; tail -20 "$work/echo.log"; kill $echo_pid; return 1; }
  cat > "$work/fuzzingclient.json" <<JSON
{
  "outdir": "$work/reports",
  "servers": [{"agent": "MizuLive", "url": "ws://127.0.0.1:$port"}],
  "cases": $shard,
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
JSON
  local status=0
  (cd "$work" && timeout 3000 "$py2" "$root/.build-autobahn/wstest.py" "$site_dir" -m fuzzingclient -s fuzzingclient.json > "$work/wstest.log" 2>&1) || {
    echo "FAILED: wstest exited with an error"; tail -20 "$work/wstest.log"; status=1; }
  if ! kill -0 "$echo_pid" 2>/dev/null; then
    echo "FAILED: EchoServer died during the run"; tail -20 "$work/echo.log"; status=1
  fi
  kill $echo_pid 2>/dev/null || true
  return $status
}
run_client_shard() {  # run_client_shard WORK CASES: an EchoClient against wstest's fuzzingserver
  local work=$1 shard=$2 port wstest_pid
  port=$(free_port)
  cat > "$work/fuzzingserver.json" <<JSON
{
  "url": "ws://127.0.0.1:$port",
  "outdir": "$work/reports",
  "cases": $shard,
  "exclude-cases": [],
  "exclude-agent-cases": {}
}
JSON
  # --webport 0: no report web server (it takes port 8080, which anything else may hold).
  (cd "$work" && exec "$py2" "$root/.build-autobahn/wstest.py" "$site_dir" -m fuzzingserver -s fuzzingserver.json --webport 0 > "$work/wstest.log" 2>&1) &
  wstest_pid=$!
  wait_for_port "$port" || { echo "FAILED: the fuzzingserver did not start"; tail -20 "$work/wstest.log"; kill $wstest_pid; return 1; }
  local status=0
  timeout 3000 "$bin" --autobahn "ws://127.0.0.1:$port" --agent MizuWebSocketClient > "$work/client.log" 2>&1 || {
    echo "FAILED: EchoClient exited with an error"; tail -20 "$work/client.log"; status=1; }
  kill $wstest_pid 2>/dev/null || true
  return $status
}

rm -rf "$root/.build-autobahn/run-$side"*
indexes=()
for index in $(seq 0 $((shards - 1))); do
  work="$root/.build-autobahn/run-$side-$index"
  mkdir -p "$work"
  shard=$(shard_cases "$index")
  echo "== Autobahn $([ "$side" = server ] && echo fuzzingclient || echo fuzzingserver), shard $((index + 1)) of $shards: $shard"
  "run_${side}_shard" "$work" "$shard" &
  pids+=($!)
  indexes+=("$work/reports/index.json")
done
failed_shards=0
for pid in "${pids[@]}"; do wait "$pid" || failed_shards=$((failed_shards + 1)); done
pids=()
[ $failed_shards -eq 0 ] || { echo "FAILED: $failed_shards of $shards shards did not finish"; exit 1; }

python3 - "$root/CONFORMANCE.md" "$mode" "$side" "${indexes[@]}" <<'PY'
import json, sys, collections
out, mode, side, indexes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
cases = {}
for index in indexes:  # one per shard; each names the agent once
    cases.update(next(iter(json.load(open(index)).values())))
key = lambda c: [int(p) for p in c.split(".")]
sections = collections.OrderedDict()
for case in sorted(cases, key=key):
    sections.setdefault(case.split(".")[0], collections.Counter())[cases[case]["behavior"]] += 1
bad = [(c, cases[c]["behavior"]) for c in sorted(cases, key=key)
       if cases[c]["behavior"] not in ("OK", "NON-STRICT", "INFORMATIONAL")]
kinds = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
total = collections.Counter()
lines = ["| section | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
for section, counter in sections.items():
    total.update(counter)
    lines.append("| %s | %s |" % (section, " | ".join(str(counter.get(k, 0)) for k in kinds)))
lines.append("| all | %s |" % " | ".join(str(total.get(k, 0)) for k in kinds))
table = "\n".join(lines)
print(table)
if mode == "record":
    text = open(out).read() if __import__("os").path.exists(out) else ""
    marker = "autobahn" if side == "server" else "autobahn-client"
    start, end = "<!-- %s:start -->" % marker, "<!-- %s:end -->" % marker
    if start in text and end in text:
        text = text[:text.index(start) + len(start)] + "\n" + table + "\n" + text[text.index(end):]
        open(out, "w").write(text)
print("%d cases, %d failed or unimplemented" % (sum(total.values()), len(bad)))
for case, behavior in bad:
    print("  %s %s" % (case, behavior))
print("autobahn (%s): %d passed, %d failed" % (side, sum(total.values()) - len(bad), len(bad)))
sys.exit(1 if bad else 0)
PY
