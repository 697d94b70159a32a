#!/usr/bin/env bash
# Installs what agentgate needs from Debian 12's packages, skipping what is already there.
# Usage: scripts/deps.sh [build|test|bench]...   (default: build)
set -euo pipefail

want=(build-essential cmake ninja-build pkg-config libboost1.81-dev libboost-json1.81-dev
      libboost-url1.81-dev libsqlite3-dev libssl-dev libcurl4-openssl-dev libpsl-dev
      ca-certificates)
for group in "${@:-build}"; do
  case "$group" in
    build) ;;
    test) want+=(libgtest-dev chromium) ; command -v node >/dev/null || want+=(nodejs npm) ;;
    bench) want+=(libbenchmark-dev nginx-light wrk curl jq sqlite3) ;;
    *) echo "deps.sh: unknown group '$group' (build, test, bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "==> installing: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
