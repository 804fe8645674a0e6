#!/usr/bin/env bash
# The browser test drives Debian's Chromium (no browser download at test time).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: Chromium is missing; install it with: sudo apt-get install -y chromium" >&2
  exit 1
fi
echo "setup: installing Debian's chromium for the browser test"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
