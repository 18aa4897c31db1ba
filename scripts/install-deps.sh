#!/usr/bin/env bash
# Installs what building and testing need, idempotently: a second run does nothing.
#   zlib (CZlib), Chromium (the page's browser test), redis-server (the backplane tests
#   start their own on 127.0.0.1; the package's service is not used), and Python packages for the
#   interop, contract and browser tests. Autobahn installs itself (scripts/autobahn.sh).
set -euo pipefail

need_apt=()
[ -f /usr/include/zlib.h ] || need_apt+=(zlib1g-dev)
command -v chromium >/dev/null || need_apt+=(chromium)
command -v redis-server >/dev/null || need_apt+=(redis-server)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

missing_py=()
python3 -c "import websockets" 2>/dev/null || missing_py+=(websockets)
python3 -c "import pytest" 2>/dev/null || missing_py+=(pytest)
python3 -c "import playwright.sync_api" 2>/dev/null || missing_py+=(playwright)
if [ "${#missing_py[@]}" -gt 0 ]; then
  echo "installing python packages: ${missing_py[*]}"
  python3 -m pip install -q --disable-pip-version-check "${missing_py[@]}"
fi
