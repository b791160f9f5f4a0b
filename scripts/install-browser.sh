#!/usr/bin/env bash
# Install Debian's Chromium for the browser test (tests/browser), if missing.
# Never downloads a browser through Playwright. Needs root (apt-get); otherwise
# it says what to run and exits 0 so `make test` carries on (the browser test
# then skips, saying why).
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "install-browser: $CHROMIUM is installed."
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser: $CHROMIUM is missing and this is not root, so it is not installed." >&2
    echo "install-browser: run 'sudo apt-get install chromium' to enable the browser test." >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: no apt-get here; install Chromium at $CHROMIUM to enable the browser test." >&2
    exit 0
fi
echo "install-browser: installing Debian's chromium package."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium
test -x "$CHROMIUM"
echo "install-browser: $CHROMIUM installed."
