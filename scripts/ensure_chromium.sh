#!/usr/bin/env bash
# The browser tests drive Debian's chromium (never a downloaded browser build). Install it when missing:
# with apt-get when we are root, otherwise say the one command to run.
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then
  exit 0
fi
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "browser: installing Debian's chromium for the browser tests (apt-get install chromium)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
  exit 0
fi
echo "browser: /usr/bin/chromium is missing and this user cannot install it." >&2
echo "browser: run   sudo apt-get install -y chromium   then make test again." >&2
exit 1
