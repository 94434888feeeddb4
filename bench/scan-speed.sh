#!/bin/bash
# scan-speed.sh -- scanning throughput of `mxguard scan` against bogofilter and
# SpamAssassin on one core, in one job, with ratios.
#
# Run from the repository root:
#   MXGUARD=build/src/console/mxguard bench/scan-speed.sh
#
# What is timed (each system once per repetition, in turn, all on CPU $CPU):
#   mxguard       `taskset -c CPU mxguard scan --json FILE...` over all 3,125 dev
#                 messages: ONE process, so process start, opening the state
#                 (stored rule bundle, LMDB Bayes model) and JSON output are
#                 included.  Model: trained on the whole dev corpus
#                 (train-default-model.sh).  A 1-message scan is timed as well
#                 to show that start-up share (mxguard-1msg).
#   bogofilter    `taskset -c CPU bogofilter -C -d DB -T -b < list` over the same
#                 3,125 files: one process (bulk mode), start-up and DB open
#                 included.  DB trained on the whole dev corpus.
#   SpamAssassin  spamd (-L local tests, Bayes trained on the whole dev corpus,
#                 1 child, pinned to CPU) + one `spamc -R` per message, sent one
#                 after another from a client pinned to the same CPU, over a
#                 sample of SA_SAMPLE messages spread evenly over the sorted
#                 corpus.  spamd's start-up and rule compilation are NOT
#                 included (it is a daemon, warmed up with 5 messages); spamc's
#                 fork/exec and the socket round trip are.  CPU time = spamd
#                 (parent + child, from /proc) + all spamc processes.
#
# Environment (all optional):
#   MXGUARD       console binary          (default build/src/console/mxguard)
#   CORPUS_TGZ    dev corpus tarball      (default /work/shared/corpus/spamassassin-dev.tar.gz)
#   WORK          scratch dir, wiped      (default /tmp/bench-scan-speed)
#   REPS          repetitions             (default 5; the report uses the median)
#   CPU           the core to pin to      (default 0)
#   SA_SAMPLE     SpamAssassin sample size (default 200)
#   SKIP_SA=1     leave SpamAssassin out
#   STEP_TIMEOUT  seconds per timed run   (default 900)
#   QUIET_WAIT    seconds to wait for idle CPUs before each repetition (default 30)
#
# Output: a table and greppable lines `scan_speed system=... msgs_per_s=...`
# and `scan_speed_ratio ...`; raw timings in $WORK/speed.txt.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PY=/usr/bin/python3
MXGUARD=${MXGUARD:-build/src/console/mxguard}
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"          # PATH, wait_quiet (busy_before)

WORK=${WORK:-/tmp/bench-scan-speed}
REPS=${REPS:-5}
CPU=${CPU:-0}
SA_SAMPLE=${SA_SAMPLE:-200}
SKIP_SA=${SKIP_SA:-0}
STEP_TIMEOUT=${STEP_TIMEOUT:-900}
QUIET_WAIT=${QUIET_WAIT:-30}

die() { echo "scan-speed.sh: $*" >&2; exit 1; }

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

[ -x "$MXGUARD" ] || die "MXGUARD=$MXGUARD is not executable (build it: ninja -C build src/console/mxguard)"
MXGUARD=$(realpath "$MXGUARD")
need_pkg bogofilter bogofilter
[ "$SKIP_SA" = 1 ] || { need_pkg spamassassin spamassassin sa-learn spamd; need_pkg spamc spamc; }
command -v taskset >/dev/null || die "taskset (util-linux) is missing"

TGZ=""
for c in "${CORPUS_TGZ:-}" /work/shared/corpus/spamassassin-dev.tar.gz "$REPO/../shared/corpus/spamassassin-dev.tar.gz"; do
    if [ -n "$c" ] && [ -f "$c" ]; then TGZ=$c; break; fi
done
[ -n "$TGZ" ] || die "dev corpus tarball not found; set CORPUS_TGZ"

if [ -d "$WORK" ] && [ -n "$(ls -A "$WORK")" ] && [ ! -f "$WORK/.scan-bench-work" ]; then
    die "WORK=$WORK exists, is not empty and was not made by this script; refusing to wipe it"
fi
if [ -d "$WORK" ]; then   # move it away first, so an interrupted wipe leaves no half-deleted WORK
    mv "$WORK" "$WORK.old.$$"
    rm -rf "$WORK.old.$$"
fi
mkdir -p "$WORK/corpus"
touch "$WORK/.scan-bench-work"
WORK=$(realpath "$WORK")
chmod 755 "$WORK"
SA_DIR=$WORK/spamassassin
trap '[ -f "$SA_DIR/spamd.pid" ] && "$PY" "$HERE/scan_sa.py" stop "$SA_DIR"' EXIT

timeout 300 tar xzf "$TGZ" -C "$WORK/corpus" dev/ham dev/spam   # the dev group only
CORPUS=$WORK/corpus
# all dev messages: sorted ham, then sorted spam
"$PY" "$HERE/scan_folds.py" "$CORPUS" "$WORK/folds" >/dev/null
cat "$WORK/folds/all-ham.list" "$WORK/folds/all-spam.list" >"$WORK/all.list"
N=$(wc -l <"$WORK/all.list")
"$PY" -c '
import sys
files = [l.rstrip("\n") for l in open(sys.argv[1])]
k = int(sys.argv[2])
sample = [files[i * len(files) // k] for i in range(k)] if k < len(files) else files
open(sys.argv[3], "w").writelines(f + "\n" for f in sample)
' "$WORK/all.list" "$SA_SAMPLE" "$WORK/sa-sample.list"
echo "== mxguard: $MXGUARD, tree $(git -C "$REPO" log -1 --format='%h %cd' --date=iso 2>/dev/null || echo '?')" \
     "+ $(git -C "$REPO" status --porcelain -uno 2>/dev/null | wc -l) modified files"
echo "== corpus: $N messages, $(xargs -a "$WORK/all.list" cat | wc -c) bytes; SpamAssassin sample: $(wc -l <"$WORK/sa-sample.list") messages"

# ---------------------------------------------------------------- training (untimed)
echo "== training on the whole dev corpus"
MXG=$WORK/mxguard
mkdir -p "$MXG"
MXGUARD=$MXGUARD TIMEOUT=$STEP_TIMEOUT "$HERE/train-default-model.sh" "$MXG/state" "$CORPUS" | sed 's/^/  mxguard: /'
cat >"$MXG/mxguard.toml" <<EOF
hostname = "bench.local"
state_dir = "$MXG/state"
[scan]
rules_dir = "${RULES_DIR:-$REPO/rules}"
EOF

BOGO=$WORK/bogofilter
mkdir -p "$BOGO/db"
timeout "$STEP_TIMEOUT" bogofilter -C -d "$BOGO/db" -n -b <"$WORK/folds/all-ham.list"
timeout "$STEP_TIMEOUT" bogofilter -C -d "$BOGO/db" -s -b <"$WORK/folds/all-spam.list"
echo "  bogofilter: $(bogoutil -w "$BOGO/db" .MSG_COUNT | tail -n 1 | awk '{print $2 " spam, " $3 " ham"}')"

if [ "$SKIP_SA" != 1 ]; then
    mkdir -p "$SA_DIR/bayes"
    "$PY" "$HERE/scan_sa.py" site "$SA_DIR" "$SA_DIR/bayes/bayes"
    for cls in ham spam; do
        timeout "$STEP_TIMEOUT" sa-learn --siteconfigpath "$SA_DIR/site" --dbpath "$SA_DIR/bayes" \
            "--$cls" -f "$WORK/folds/all-$cls.list" | sed 's/^/  sa-learn: /'
    done
    chmod -R a+rwX "$SA_DIR"
    "$PY" "$HERE/scan_sa.py" start "$SA_DIR" --jobs 1 --cpu "$CPU" --timeout $((STEP_TIMEOUT * (REPS + 1))) |
        sed 's/^/  /'
    head -n 5 "$WORK/sa-sample.list" >"$WORK/sa-warmup.list"
    "$PY" "$HERE/scan_sa.py" check --socket "$SA_DIR/spamd.sock" --list "$WORK/sa-warmup.list" >/dev/null
fi

# warm the page cache and check that mxguard has its bundle and model in place
"$MXGUARD" --config "$MXG/mxguard.toml" scan --json "$(head -n 1 "$WORK/all.list")" >/dev/null
xargs -a "$WORK/all.list" cat >/dev/null
head -n 1 "$WORK/all.list" >"$WORK/one.list"

# ---------------------------------------------------------------- timed runs
RES=$WORK/speed.txt
: >"$RES"
bytes_of() { xargs -a "$1" cat | wc -c; }
ALL_BYTES=$(bytes_of "$WORK/all.list")
ONE_BYTES=$(bytes_of "$WORK/one.list")
SA_BYTES=$(bytes_of "$WORK/sa-sample.list")

check_lines() {  # check_lines FILE EXPECTED WHAT
    local got
    got=$(grep -c . "$1" || true)
    [ "$got" -eq "$2" ] || die "$3 printed $got result lines, expected $2 (output: $1)"
}

for rep in $(seq 1 "$REPS"); do
    busy_before=0
    wait_quiet "rep $rep" || true
    echo "== repetition $rep of $REPS (CPUs ${busy_before}% busy before)"

    # the two directories: mxguard expands them (sorted) to the same 3,125 files
    t=$("$PY" "$HERE/scan_time.py" --timeout "$STEP_TIMEOUT" --stdout "$WORK/mxguard.out" -- \
        taskset -c "$CPU" "$MXGUARD" --config "$MXG/mxguard.toml" scan --json "$CORPUS/dev/ham" "$CORPUS/dev/spam")
    check_lines "$WORK/mxguard.out" "$N" "mxguard scan"
    echo "speed system=mxguard rep=$rep n=$N bytes=$ALL_BYTES $t busy_before=$busy_before" | tee -a "$RES"

    t=$("$PY" "$HERE/scan_time.py" --timeout "$STEP_TIMEOUT" --stdout "$WORK/mxguard1.out" -- \
        taskset -c "$CPU" "$MXGUARD" --config "$MXG/mxguard.toml" scan --json "$(cat "$WORK/one.list")")
    check_lines "$WORK/mxguard1.out" 1 "mxguard scan (1 message)"
    echo "speed system=mxguard-1msg rep=$rep n=1 bytes=$ONE_BYTES $t busy_before=$busy_before" | tee -a "$RES"

    t=$("$PY" "$HERE/scan_time.py" --timeout "$STEP_TIMEOUT" --stdin "$WORK/all.list" --stdout "$WORK/bogofilter.out" -- \
        taskset -c "$CPU" bogofilter -C -d "$BOGO/db" -T -b)
    check_lines "$WORK/bogofilter.out" "$N" "bogofilter"
    echo "speed system=bogofilter rep=$rep n=$N bytes=$ALL_BYTES $t busy_before=$busy_before" | tee -a "$RES"

    if [ "$SKIP_SA" != 1 ]; then
        taskset -c "$CPU" "$PY" "$HERE/scan_sa.py" check --socket "$SA_DIR/spamd.sock" --jobs 1 \
            --timeout 120 --list "$WORK/sa-sample.list" --spamd-pidfile "$SA_DIR/spamd.pid" \
            --stats "$WORK/sa.stats" >"$WORK/spamassassin.out"
        n_err=$(awk -F'\t' '$5 == "error"' "$WORK/spamassassin.out" | wc -l)
        [ "$n_err" -eq 0 ] || die "spamc failed for $n_err messages (see $WORK/spamassassin.out)"
        st() { awk -F= -v k="$1" '$1 == k { print $2 }' "$WORK/sa.stats"; }
        cpu=$(awk -v a="$(st client_cpu_s)" -v b="$(st spamd_cpu_s)" 'BEGIN { printf "%.4f", a + b }')
        echo "speed system=spamassassin rep=$rep n=$(st n) bytes=$SA_BYTES wall_s=$(st wall_s) cpu_s=$cpu client_cpu_s=$(st client_cpu_s) spamd_cpu_s=$(st spamd_cpu_s) rc=0 busy_before=$busy_before" | tee -a "$RES"
    fi
done
[ "$SKIP_SA" = 1 ] || { "$PY" "$HERE/scan_sa.py" stop "$SA_DIR"; rm -f "$SA_DIR/spamd.pid"; }

echo
echo "== scanning speed, one core (taskset -c $CPU), median of $REPS; $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs"
"$PY" "$HERE/scan_report.py" speed "$RES" | tee "$WORK/table.txt"
