#!/bin/sh
# web_quarantine.sh -- quarantine search latency and page render time (issue 17).
#
#   BUILD=build bench/web_quarantine.sh            # 100,000 held messages (a few minutes)
#   BUILD=build bench/web_quarantine.sh --smoke    # 2,000, the check `meson test bench-web-smoke` runs
#   COUNT=20000 REPS=100 bench/web_quarantine.sh   # other sizes
#
# Needs the build's mxguard, mxguard-web and tests/tools/quarantine-fill, and
# Debian's python3-selenium, chromium and chromium-driver. See bench/README.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-$here/../build}
export MXGUARD_BIN=${MXGUARD_BIN:-$BUILD/src/console/mxguard}
export MXGUARDD_BIN=${MXGUARDD_BIN:-$BUILD/src/engine/mxguardd}
export MXGUARD_WEB_BIN=${MXGUARD_WEB_BIN:-$BUILD/src/web/mxguard-web}
export QUARANTINE_FILL_BIN=${QUARANTINE_FILL_BIN:-$BUILD/tests/tools/quarantine-fill}
export PYTHONDONTWRITEBYTECODE=1
for b in "$MXGUARD_BIN" "$MXGUARD_WEB_BIN" "$QUARANTINE_FILL_BIN"; do
    [ -x "$b" ] || { echo "web_quarantine.sh: $b is missing (ninja -C $BUILD)" >&2; exit 2; }
done
exec /usr/bin/python3 "$here/web_quarantine.py" --count "${COUNT:-100000}" --reps "${REPS:-200}" "$@"
