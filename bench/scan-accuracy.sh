#!/bin/bash
# scan-accuracy.sh -- 5-fold cross-validated accuracy of mxguard, SpamAssassin
# and bogofilter on the dev corpus (SpamAssassin public corpus, dev group only).
#
# Run from the repository root:
#   MXGUARD=build/src/console/mxguard bench/scan-accuracy.sh
#
# Environment (all optional):
#   MXGUARD     console binary                (default build/src/console/mxguard)
#   CORPUS_TGZ  dev corpus tarball            (default /work/shared/corpus/spamassassin-dev.tar.gz,
#               or ../shared/corpus/... next to the repository)
#   WORK        scratch dir, wiped at start   (default /tmp/bench-scan-acc)
#   SYSTEMS     which systems to run          (default "mxguard spamassassin bogofilter")
#   RULES_DIR   mxguard rules directory       (default <repo>/rules; copied to
#               $WORK/rules at the start, so all folds use the same rules)
#   SA_JOBS     spamd children / parallel spamc clients (default 2)
#   SA_EVERY    SpamAssassin tests only every N-th message of each test fold
#               (default 1 = all; use 2 or 3 on a busy machine, the table says
#               how many messages each system saw)
#   STEP_TIMEOUT  limit in seconds for every single tool invocation (default 1200)
#   WORST       how many misclassified mxguard messages to list (default 20)
#
# Output: the table on stdout; verdicts per message in $WORK/results-<system>.tsv
# (fold, class, file, score, verdict, reasons); timings in $WORK/times.txt;
# logs in $WORK/<system>/fold<k>/.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
PY=/usr/bin/python3

MXGUARD=${MXGUARD:-build/src/console/mxguard}
WORK=${WORK:-/tmp/bench-scan-acc}
SYSTEMS=${SYSTEMS:-"mxguard spamassassin bogofilter"}
RULES_DIR=${RULES_DIR:-$REPO/rules}
SA_JOBS=${SA_JOBS:-2}
SA_EVERY=${SA_EVERY:-1}
STEP_TIMEOUT=${STEP_TIMEOUT:-1200}
WORST=${WORST:-20}
FOLDS=5

die() { echo "scan-accuracy.sh: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# need_pkg PACKAGE COMMAND...: apt-get install PACKAGE when a command is missing.
need_pkg() {
    local pkg=$1 c
    shift
    for c in "$@"; do
        command -v "$c" >/dev/null && continue
        echo "== installing $pkg (Debian package)"
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y "$pkg" >"$WORK.apt-$pkg.log" 2>&1 ||
            die "apt-get install -y $pkg failed, see $WORK.apt-$pkg.log"
        return 0
    done
}

corpus_tgz() {
    local c
    for c in "${CORPUS_TGZ:-}" /work/shared/corpus/spamassassin-dev.tar.gz "$REPO/../shared/corpus/spamassassin-dev.tar.gz"; do
        [ -n "$c" ] && [ -f "$c" ] && { echo "$c"; return 0; }
    done
    die "dev corpus tarball not found; set CORPUS_TGZ (see /work/shared/corpus/README.md)"
}

for s in $SYSTEMS; do
    case $s in
        mxguard)
            [ -x "$MXGUARD" ] || die "MXGUARD=$MXGUARD is not executable (build it: ninja -C build src/console/mxguard)"
            MXGUARD=$(realpath "$MXGUARD") ;;
        spamassassin) need_pkg spamassassin spamassassin sa-learn spamd; need_pkg spamc spamc ;;
        bogofilter) need_pkg bogofilter bogofilter bogoutil ;;
        *) die "unknown system '$s' (mxguard, spamassassin, bogofilter)" ;;
    esac
done

# WORK is wiped: only when it is empty or was made by this script.
if [ -d "$WORK" ] && [ -n "$(ls -A "$WORK")" ] && [ ! -f "$WORK/.scan-bench-work" ]; then
    die "WORK=$WORK exists, is not empty and was not made by this script; refusing to wipe it"
fi
if [ -d "$WORK" ]; then   # move it away first, so an interrupted wipe leaves no half-deleted WORK
    mv "$WORK" "$WORK.old.$$"
    rm -rf "$WORK.old.$$"
fi
mkdir -p "$WORK"
touch "$WORK/.scan-bench-work"
WORK=$(realpath "$WORK")
SA_RUNNING=""
trap '[ -z "$SA_RUNNING" ] || "$PY" "$HERE/scan_sa.py" stop "$SA_RUNNING"' EXIT
chmod 755 "$WORK"       # spamd's children run as nobody and read the Bayes DB below
TGZ=$(corpus_tgz)
mkdir -p "$WORK/corpus"
timeout 300 tar xzf "$TGZ" -C "$WORK/corpus" dev/ham dev/spam   # the dev group only
CORPUS=$WORK/corpus
TIMES=$WORK/times.txt
: >"$TIMES"

if [[ " $SYSTEMS " == *" mxguard "* ]]; then
    # Freeze the rules for the whole run (every fold compiles its own factory
    # bundle from them), even if someone edits rules/ meanwhile.
    [ -d "$RULES_DIR" ] || die "RULES_DIR=$RULES_DIR is not a directory"
    cp -r "$RULES_DIR" "$WORK/rules"
    RULES_DIR=$WORK/rules
    echo "== mxguard: $MXGUARD, tree $(git -C "$REPO" log -1 --format='%h %cd' --date=iso 2>/dev/null || echo '?')" \
         "+ $(git -C "$REPO" status --porcelain -uno 2>/dev/null | wc -l) modified files;" \
         "rules snapshot sha256 $(cat "$RULES_DIR"/*.rules | sha256sum | cut -c1-16)"
fi

echo "== folds: $FOLDS, stratified, file i of each class (sorted by name) in fold i % $FOLDS"
"$PY" "$HERE/scan_folds.py" --folds "$FOLDS" "$CORPUS" "$WORK/folds"
FD=$WORK/folds

# ---------------------------------------------------------------- mxguard
run_mxguard() {
    local k=$1 d=$WORK/mxguard/fold$1 t0 rc
    rm -rf "$d"
    mkdir -p "$d/state"
    cat >"$d/mxguard.toml" <<EOF
hostname = "bench.local"
state_dir = "$d/state"
[scan]
rules_dir = "$RULES_DIR"
EOF
    t0=$(now)
    for cls in ham spam; do
        if ! timeout "$STEP_TIMEOUT" xargs -a "$FD/fold$k/train-$cls.list" \
                "$MXGUARD" --config "$d/mxguard.toml" learn "$cls" >>"$d/learn.log" 2>&1; then
            tail -n 20 "$d/learn.log" >&2
            die "mxguard learn $cls failed for fold $k (log: $d/learn.log)"
        fi
    done
    tail -n 1 "$d/learn.log" | sed "s/^/  fold $k: /"
    rc=0
    cat "$FD/fold$k/test-ham.list" "$FD/fold$k/test-spam.list" |
        timeout "$STEP_TIMEOUT" xargs "$MXGUARD" --config "$d/mxguard.toml" scan --json \
            >"$d/scan.jsonl" 2>"$d/scan.err" || rc=$?
    echo "system=mxguard fold=$k wall_s=$(since "$t0")" >>"$TIMES"
    if [ "$rc" -ne 0 ]; then
        echo "  fold $k: mxguard scan exited $rc; messages without a verdict count as errors. stderr:" >&2
        head -n 5 "$d/scan.err" | sed 's/^/    /' >&2
    fi
    "$PY" "$HERE/scan_report.py" mxguard --fold "$k" \
        --expect "$FD/fold$k/test-ham.list" "$FD/fold$k/test-spam.list" \
        <"$d/scan.jsonl" >>"$WORK/results-mxguard.tsv"
}

# ---------------------------------------------------------------- bogofilter
run_bogofilter() {
    local k=$1 d=$WORK/bogofilter/fold$1 t0 rc
    rm -rf "$d"
    mkdir -p "$d/db"
    t0=$(now)
    timeout "$STEP_TIMEOUT" bogofilter -C -d "$d/db" -n -b <"$FD/fold$k/train-ham.list" >>"$d/train.log" 2>&1 ||
        die "bogofilter -n failed for fold $k (log: $d/train.log)"
    timeout "$STEP_TIMEOUT" bogofilter -C -d "$d/db" -s -b <"$FD/fold$k/train-spam.list" >>"$d/train.log" 2>&1 ||
        die "bogofilter -s failed for fold $k (log: $d/train.log)"
    echo "  fold $k: $(bogoutil -w "$d/db" .MSG_COUNT | tail -n 1 | awk '{print "model holds " $2 " spam and " $3 " ham messages"}')"
    rc=0
    cat "$FD/fold$k/test-ham.list" "$FD/fold$k/test-spam.list" |
        timeout "$STEP_TIMEOUT" bogofilter -C -d "$d/db" -T -b >"$d/classify.out" 2>"$d/classify.err" || rc=$?
    echo "system=bogofilter fold=$k wall_s=$(since "$t0")" >>"$TIMES"
    # exit status: 0 spam, 1 ham, 2 unsure (of the last message), 3 error
    [ "$rc" -le 2 ] || { head -n 5 "$d/classify.err" >&2; echo "  fold $k: bogofilter exited $rc" >&2; }
    "$PY" "$HERE/scan_report.py" bogofilter --fold "$k" \
        --expect "$FD/fold$k/test-ham.list" "$FD/fold$k/test-spam.list" \
        <"$d/classify.out" >>"$WORK/results-bogofilter.tsv"
}

# ---------------------------------------------------------------- SpamAssassin
run_spamassassin() {
    local k=$1 d=$WORK/spamassassin/fold$1 t0 magic nham nspam
    rm -rf "$d"
    mkdir -p "$d/bayes"
    "$PY" "$HERE/scan_sa.py" site "$d" "$d/bayes/bayes"
    t0=$(now)
    for cls in ham spam; do
        timeout "$STEP_TIMEOUT" sa-learn --siteconfigpath "$d/site" --dbpath "$d/bayes" \
            "--$cls" -f "$FD/fold$k/train-$cls.list" >>"$d/learn.log" 2>&1 ||
            { tail -n 20 "$d/learn.log" >&2; die "sa-learn --$cls failed for fold $k"; }
    done
    magic=$(sa-learn --siteconfigpath "$d/site" --dbpath "$d/bayes" --dump magic 2>/dev/null)
    nspam=$(echo "$magic" | awk '/non-token data: nspam/ {print $3}')
    nham=$(echo "$magic" | awk '/non-token data: nham/ {print $3}')
    echo "  fold $k: Bayes DB holds $nspam spam and $nham ham (sa-learn skips duplicate Message-IDs)"
    if [ "${nspam:-0}" -lt 200 ] || [ "${nham:-0}" -lt 200 ]; then
        die "SpamAssassin Bayes needs >= 200 of each class (has spam=$nspam ham=$nham)"
    fi
    chmod -R a+rwX "$d"
    # every SA_EVERY-th message of each test list (all of them by default)
    awk -v e="$SA_EVERY" '(FNR - 1) % e == 0' "$FD/fold$k/test-ham.list" "$FD/fold$k/test-spam.list" >"$d/test.list"
    SA_RUNNING=$d
    "$PY" "$HERE/scan_sa.py" start "$d" --jobs "$SA_JOBS" --timeout "$STEP_TIMEOUT" | sed "s/^/  fold $k: /"
    "$PY" "$HERE/scan_sa.py" check --socket "$d/spamd.sock" --jobs "$SA_JOBS" --timeout 120 \
        --fold "$k" --list "$d/test.list" --stats "$d/check.stats" >"$d/results.tsv"
    "$PY" "$HERE/scan_sa.py" stop "$d"
    SA_RUNNING=""
    echo "system=spamassassin fold=$k wall_s=$(since "$t0")" >>"$TIMES"
    echo "  fold $k: $(grep -c 'BAYES_' "$d/results.tsv" || true) of $(wc -l <"$d/results.tsv") verdicts include a BAYES_ rule"
    cat "$d/results.tsv" >>"$WORK/results-spamassassin.tsv"
}

for s in $SYSTEMS; do
    echo "== $s"
    for k in $(seq 0 $((FOLDS - 1))); do
        "run_$s" "$k"
    done
done

echo
echo "== results (dev corpus, $FOLDS folds; $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "   mxguard: flagged = action quarantine or reject (score >= 6), unsure = greylist (score >= 4)"
echo "   SpamAssassin: flagged = score >= 5.0 (required_score), local tests (-L), Bayes trained per fold"
[ "$SA_EVERY" = 1 ] || echo "   SpamAssassin tested every ${SA_EVERY}th message of each test fold only (SA_EVERY=$SA_EVERY)"
echo "   bogofilter: flagged = S (spamicity >= 0.99), unsure = U (0.45 .. 0.99), stock parameters"
echo "   run time = training + classifying, all folds, wall clock"
results=()
for s in $SYSTEMS; do results+=("$WORK/results-$s.tsv"); done
"$PY" "$HERE/scan_report.py" table --times "$TIMES" "${results[@]}" | tee "$WORK/table.txt"
if [[ " $SYSTEMS " == *" mxguard "* ]]; then
    echo
    echo "== mxguard misclassifications (all in $WORK/worst-mxguard.txt)"
    "$PY" "$HERE/scan_report.py" worst -n 100000 "$WORK/results-mxguard.tsv" >"$WORK/worst-mxguard.txt"
    "$PY" "$HERE/scan_report.py" worst -n "$WORST" "$WORK/results-mxguard.tsv"
fi
