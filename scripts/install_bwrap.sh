#!/bin/sh
# run_python isolates the agent's code with bubblewrap (docs/isolation.md). Installs Debian's or Ubuntu's package
# where this machine can (as root, or with password-less sudo); otherwise says how. Never fails the build: without
# bwrap the server still starts and run_python refuses to run code, with the same advice.
command -v bwrap >/dev/null 2>&1 && exit 0
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    SUDO=""
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    SUDO="none"
  fi
  if [ "$SUDO" != none ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -q bubblewrap >/dev/null 2>&1 \
      || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q bubblewrap >/dev/null 2>&1; }
  fi
fi
if command -v bwrap >/dev/null 2>&1; then
  echo "bubblewrap installed ($(bwrap --version))"
else
  echo "warning: bubblewrap (bwrap) is not installed, so run_python will refuse to run code." >&2
  echo "  Install it: sudo apt-get install bubblewrap (Fedora: dnf install bubblewrap; Arch: pacman -S bubblewrap)." >&2
fi
