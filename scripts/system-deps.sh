#!/usr/bin/env bash
# Install the Debian packages that perfpilot's tests (or benchmarks) need.
# Usage: scripts/system-deps.sh test|bench
# As root it installs them with apt-get; otherwise it says what to install.
set -euo pipefail

what=${1:-test}
case "$what" in
  test)  pkgs=(chromium postgresql postgresql-15-hypopg python3-venv redis-server) ;;
  bench) pkgs=(nginx-light wrk util-linux valgrind) ;;
  *) echo "usage: $0 test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "perfpilot: please install these Debian packages first: sudo apt-get install ${missing[*]}" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "perfpilot: no apt-get here; install the equivalents of: ${missing[*]}" >&2
  exit 0
fi
echo "perfpilot: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
