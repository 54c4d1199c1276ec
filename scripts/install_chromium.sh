#!/bin/sh
# The JavaScript client's browser check (tests/client/test_js_client.py) drives Debian's or Ubuntu's chromium
# headless. Installs it where this machine can (as root, or with password-less sudo); never fails the build: without
# it that one test is skipped, and says why.
command -v chromium >/dev/null 2>&1 && exit 0
command -v apt-get >/dev/null 2>&1 || exit 0
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else exit 0; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q chromium >/dev/null 2>&1 \
  || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q chromium >/dev/null 2>&1; }
command -v chromium >/dev/null 2>&1 && echo "chromium installed" || echo "warning: chromium not installed" >&2
exit 0
