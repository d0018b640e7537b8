#!/usr/bin/env bash
# The Debian packages the test suite needs, installed once (a rerun finds them and does nothing):
# - the drawing window's end-to-end test runs on Xvfb, driven by xdotool; OpenCV's GUI build
#   (the draw extra) needs libGL, GLib, libSM and libXext;
# - the browser tests drive Debian's chromium through Playwright (never a downloaded browser);
# - wrk is the load generator of benchmarks/serve_load.py.
# Installs them as root or through sudo; otherwise says in one line what to run.
set -euo pipefail
PACKAGES="xvfb xdotool libgl1 libglib2.0-0 libsm6 libxext6 chromium wrk"

if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    echo "digitrec: the tests need Chromium (at /usr/bin/chromium), Xvfb, xdotool and wrk;" \
        "this is not a Debian or Ubuntu system: install them with its package manager" >&2
    exit 1
fi
missing=""
for p in $PACKAGES; do
    # installed, not merely known: a removed package keeps a status (its config files)
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "digitrec: the tests need Debian packages: run  apt-get install$missing  as root" >&2
    exit 1
fi
echo "digitrec: installing the Debian packages the tests need:$missing"
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
