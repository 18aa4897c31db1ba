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

# Pinned: the versions the suites were written and last run against.
python_packages=(websockets==17.4 pytest==9.0.3 playwright==1.65.2)
missing_py=()
python3 -c "import websockets, sys; sys.exit(websockets.__version__ != '17.4')" 2>/dev/null || missing_py+=("${python_packages[0]}")
python3 -c "import pytest, sys; sys.exit(pytest.__version__ != '9.0.3')" 2>/dev/null || missing_py+=("${python_packages[1]}")
python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('playwright') != '1.65.2')" 2>/dev/null || missing_py+=("${python_packages[2]}")
if [ "${#missing_py[@]}" -gt 0 ]; then
  echo "installing python packages: ${missing_py[*]}"
  python3 -m pip install -q --disable-pip-version-check "${missing_py[@]}"
fi
