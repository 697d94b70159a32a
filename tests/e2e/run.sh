#!/usr/bin/env bash
# Runs the end-to-end tests against the agentgate binary.
#   AGENTGATE_BIN  binary to test (default: <repo>/build/agentgate); relative paths are taken
#                  from the directory run.sh was called from.
#   Extra arguments are passed to `node --test` (e.g. a single file: ./run.sh auth.test.mjs).
set -euo pipefail
if [[ -n "${AGENTGATE_BIN:-}" ]]; then
  AGENTGATE_BIN="$(realpath -m -- "$AGENTGATE_BIN")"
  export AGENTGATE_BIN
fi
cd "$(dirname "$0")"
npm ci --no-audit --no-fund >/dev/null
if [[ $# -gt 0 ]]; then
  files=("$@")
else
  files=(*.test.mjs)
fi
exec node --test --test-concurrency=2 --test-timeout=120000 "${files[@]}"
