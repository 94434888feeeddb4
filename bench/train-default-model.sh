#!/bin/bash
# train-default-model.sh -- train MxGuard's default Bayes model on the whole dev
# corpus (SpamAssassin public corpus, dev group: 2,625 ham, 500 spam).
#
# Usage (from the repository root):
#   bench/train-default-model.sh STATE_DIR [CORPUS]
#   MXGUARD=build/src/console/mxguard bench/train-default-model.sh /var/lib/mxguard
#
# STATE_DIR  the mxguard state directory the model goes into (STATE_DIR/bayes).
#            Created when missing.  If it already holds a Bayes model the script
#            stops, unless REPLACE=1: then STATE_DIR/bayes (and nothing else) is
#            deleted first, so the result holds the dev corpus and nothing more.
# CORPUS     the dev tarball (default /work/shared/corpus/spamassassin-dev.tar.gz,
#            or ../shared/corpus/... next to the repository, or $CORPUS_TGZ) or a
#            directory it was unpacked into (holding dev/ham and dev/spam).
#
# Only dev/ham and dev/spam are read.  Per the design, the default model is
# trained on the dev corpus only; the reserved groups (easy-ham-2, spam-2, the
# even half of hard-ham-1) must never be passed here.
#
# Environment: MXGUARD (default build/src/console/mxguard), RULES_DIR (default
# <repo>/rules; the console needs the rules to build its factory bundle),
# TIMEOUT (seconds per learn run, default 1200).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
MXGUARD=${MXGUARD:-build/src/console/mxguard}
RULES_DIR=${RULES_DIR:-$REPO/rules}
TIMEOUT=${TIMEOUT:-1200}

die() { echo "train-default-model.sh: $*" >&2; exit 1; }

if [ $# -lt 1 ] || [ $# -gt 2 ]; then die "usage: $0 STATE_DIR [CORPUS]"; fi
[ -x "$MXGUARD" ] || die "MXGUARD=$MXGUARD is not executable (build it: ninja -C build src/console/mxguard)"
MXGUARD=$(realpath "$MXGUARD")
[ -d "$RULES_DIR" ] || die "RULES_DIR=$RULES_DIR is not a directory"
mkdir -p "$1"
STATE=$(realpath "$1")

src=${2:-}
if [ -z "$src" ]; then
    for c in "${CORPUS_TGZ:-}" /work/shared/corpus/spamassassin-dev.tar.gz "$REPO/../shared/corpus/spamassassin-dev.tar.gz"; do
        if [ -n "$c" ] && [ -f "$c" ]; then src=$c; break; fi
    done
    [ -n "$src" ] || die "dev corpus not found; pass it as the second argument (see /work/shared/corpus/README.md)"
fi

tmp=$(mktemp -d /tmp/mxg-train.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
if [ -d "$src" ]; then
    corpus=$(realpath "$src")
else
    timeout 300 tar xzf "$src" -C "$tmp" dev/ham dev/spam   # the dev group only
    corpus=$tmp
fi
for cls in ham spam; do
    [ -d "$corpus/dev/$cls" ] || die "$corpus/dev/$cls is missing"
done
nham=$(find "$corpus/dev/ham" -maxdepth 1 -type f | wc -l)
nspam=$(find "$corpus/dev/spam" -maxdepth 1 -type f | wc -l)
if [ "$nham" -ne 2625 ] || [ "$nspam" -ne 500 ]; then
    echo "train-default-model.sh: warning: expected 2625 ham and 500 spam, found $nham and $nspam" >&2
fi

if [ -e "$STATE/bayes" ]; then
    [ "${REPLACE:-0}" = 1 ] || die "$STATE/bayes already exists; set REPLACE=1 to delete it and train from scratch"
    rm -rf "$STATE/bayes"
fi

cfg=$tmp/mxguard.toml
cat >"$cfg" <<EOF
hostname = "bench.local"
state_dir = "$STATE"
[scan]
rules_dir = "$RULES_DIR"
EOF

# One process per class; mxguard expands the directories (sorted file names).
for cls in ham spam; do
    timeout "$TIMEOUT" "$MXGUARD" --config "$cfg" learn "$cls" "$corpus/dev/$cls" ||
        die "mxguard learn $cls failed"
done
echo "default model in $STATE/bayes, trained on dev/ham ($nham) and dev/spam ($nspam)"
