#!/usr/bin/env bash
# Saves screenshots of the dashboard into docs/screenshots/ (PNG), by running the dashboard's
# browser test (tests/e2e/dashboard.test.mjs) with AGENTGATE_SCREENSHOTS set. Builds nothing:
# it uses $AGENTGATE_BIN, else build-dev/agentgate, else build/agentgate. Needs what
# `scripts/deps.sh test` installs (Chromium, Node) and tests/e2e/node_modules (npm ci there).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=${AGENTGATE_BIN:-}
if [ -z "$bin" ]; then
  for candidate in build-dev/agentgate build/agentgate; do
    if [ -x "$candidate" ]; then bin=$root/$candidate; break; fi
  done
fi
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "screenshots.sh: no agentgate binary; build one first (or set AGENTGATE_BIN)" >&2
  exit 1
fi
bin=$(realpath "$bin")  # the test runs from tests/e2e
out=$root/docs/screenshots
mkdir -p "$out"
cd tests/e2e
rc=0
AGENTGATE_BIN=$bin AGENTGATE_SCREENSHOTS=$out \
  node --test --test-timeout=120000 dashboard.test.mjs || rc=$?
echo "screenshots in $out:"
ls "$out"
exit "$rc"
