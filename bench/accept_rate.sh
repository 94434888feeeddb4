#!/usr/bin/env bash
# accept_rate.sh -- durable SMTP accept rate: Postfix peer vs mxguardd.
#
# Drives smtp-source (Postfix's load generator) with SESSIONS parallel
# sessions and N messages of SIZE bytes body to a fresh (empty-queue) Postfix
# peer and then to a fresh mxguardd, in two modes:
#   per-conn  one message per TCP connection (smtp-source default):
#             connect, banner, HELO, MAIL, RCPT, DATA, ., QUIT
#   reuse     smtp-source -d: all of a session's messages over one connection
# Every run is timed with the wall clock, and the number of messages that
# ended up in the server's queue is checked against N.
#
# Environment (all optional):
#   N=20000            messages per run
#   SESSIONS=50        parallel SMTP sessions
#   SIZE=4096          body bytes per message (smtp-source -l)
#   MODES="per-conn reuse"
#   DOMAIN=bench.test  recipient domain (rcpt: RCPT_LOCAL@DOMAIN)
#   RCPT_LOCAL=user    SENDER=sender@client.bench.test  HELO_NAME=client.bench.test
#   PF_DIR=/tmp/bench-pf  PF_PORT=24025   Postfix peer (PEER_MODE=defer|hold)
#   MXGUARDD=/path/to/mxguardd  MXGUARD=/path/to/mxguard (console)
#                      if MXGUARDD is unset/not executable only Postfix runs;
#                      MXGUARD defaults to "mxguard" next to MXGUARDD
#   MXG_DIR=/tmp/bench-mxg  MXG_PORT=24026  MXG_BACKEND=127.0.0.1:2599
#                      (see lib.sh; per run the script writes MXG_DIR/mxguard.toml,
#                      runs "$MXGUARD --config CFG domain add DOMAIN --customer
#                      bench --backend MXG_BACKEND --active", starts
#                      "$MXGUARDD --config CFG", waits for the port, loads it,
#                      counts "$MXGUARD --config CFG queue list --json", SIGTERM)
#   RUN_TIMEOUT=600    seconds one smtp-source run may take
#   SKIP_POSTFIX=1     only run mxguardd
#   RESULTS=file       also append KEY=VALUE results to this file
#   QUIET_WAIT=60      before each run wait up to this many seconds for the
#                      CPUs to be <= 20% busy with other work (warns if not)
#   KEEP=1             leave the last Postfix peer running
#
# Output lines (the last ones are the summary):
#   run peer=postfix mode=per-conn msgs=20000 secs=... msgs_per_s=... queued=20000 verify=ok
#   accept_rate mode=per-conn postfix_msgs_per_s=... mxguardd_msgs_per_s=... ratio=...
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

N=${N:-20000}
SESSIONS=${SESSIONS:-50}
SIZE=${SIZE:-4096}
MODES=${MODES:-"per-conn reuse"}
DOMAIN=${DOMAIN:-bench.test}
RCPT_LOCAL=${RCPT_LOCAL:-user}
SENDER=${SENDER:-sender@client.bench.test}
HELO_NAME=${HELO_NAME:-client.bench.test}
PF_DIR=${PF_DIR:-/tmp/bench-pf}
PF_PORT=${PF_PORT:-24025}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
RESULTS=${RESULTS:-}

log() { echo "accept_rate: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v smtp-source >/dev/null || die "smtp-source not found (apt-get install postfix)"
case "$N$SESSIONS$SIZE" in (*[!0-9]*) die "N, SESSIONS, SIZE must be integers" ;; esac
[ "$N" -gt 0 ] || die "N must be > 0"

run_mxg=1
if ! why=$(mxg_usable); then
    log "$why: measuring the Postfix peer only"
    run_mxg=0
fi
run_pf=1
[ "${SKIP_POSTFIX:-0}" = 1 ] && run_pf=0
[ "$run_pf$run_mxg" != 00 ] || die "nothing to measure (SKIP_POSTFIX=1 and no usable mxguardd)"

cleanup() {
    mxg_stop
    if [ "$run_pf" = 1 ] && [ "${KEEP:-0}" != 1 ]; then
        "$here/postfix-peer.sh" stop "$PF_DIR" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }

# load PORT MODE: one smtp-source run; sets run_secs, run_rc
load() {
    local port=$1 mode=$2 extra=() t0 t1
    [ "$mode" = reuse ] && extra=(-d)
    t0=$(now)
    timeout "$RUN_TIMEOUT" smtp-source -s "$SESSIONS" -m "$N" -l "$SIZE" "${extra[@]}" \
        -f "$SENDER" -t "$RCPT_LOCAL@$DOMAIN" -M "$HELO_NAME" "127.0.0.1:$port" \
        >"$WORK_LOG" 2>&1
    run_rc=$?
    t1=$(now)
    run_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    if [ "$run_rc" != 0 ]; then
        log "smtp-source exited with $run_rc (124 = RUN_TIMEOUT ${RUN_TIMEOUT}s hit):"
        tail -n 5 "$WORK_LOG" >&2
    fi
}

# sample_busy: wait for/measure other CPU load before a server is started
sample_busy() { wait_quiet accept_rate || true; }

rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", n / s; else print "nan" }'; }

declare -A RES

report_run() {  # PEER MODE QUEUED
    local peer=$1 mode=$2 queued=$3 verify=ok r
    [ "$queued" = "$N" ] || verify=MISMATCH
    [ "$run_rc" = 0 ] || verify="FAILED(rc=$run_rc)"
    r=$(rate "$N" "$run_secs")
    [ "$verify" = ok ] || r=nan
    echo "run peer=$peer mode=$mode msgs=$N sessions=$SESSIONS size=$SIZE secs=$run_secs msgs_per_s=$r queued=$queued verify=$verify cpu_busy_before=$busy_before"
    RES[$peer,$mode]=$r
}

run_postfix() {
    local mode=$1 queued
    WORK_LOG=$PF_DIR.smtp-source.log
    sample_busy
    "$here/postfix-peer.sh" start "$PF_DIR" "$PF_PORT" "$DOMAIN" || die "cannot start the Postfix peer"
    load "$PF_PORT" "$mode"
    # every message got its 250, so it is on disk; "count" waits until qmgr
    # has moved everything out of incoming/active before it asks postqueue
    queued=$("$here/postfix-peer.sh" count "$PF_DIR")
    # stop it now so that its queue manager does not compete with the next run
    [ "${KEEP:-0}" = 1 ] || "$here/postfix-peer.sh" stop "$PF_DIR" 2>/dev/null
    report_run postfix "$mode" "$queued"
}

run_mxguardd() {
    local mode=$1 queued
    sample_busy
    mxg_start "$DOMAIN" || die "cannot start mxguardd"
    WORK_LOG=$MXG_DIR/smtp-source.log
    load "$MXG_PORT" "$mode"
    sleep 0.5
    queued=$(mxg_queue_count)
    mxg_stop
    report_run mxguardd "$mode" "$queued"
}

log "N=$N sessions=$SESSIONS size=$SIZE modes='$MODES' cpus=$(nproc) postfix_port=$PF_PORT mxguardd_port=$MXG_PORT peer_mode=${PEER_MODE:-defer}"
for mode in $MODES; do
    case "$mode" in (per-conn|reuse) ;; (*) die "unknown mode '$mode'" ;; esac
    [ "$run_pf" = 1 ] && run_postfix "$mode"
    [ "$run_mxg" = 1 ] && run_mxguardd "$mode"
done

status=0
for mode in $MODES; do
    pf=${RES[postfix,$mode]:-nan}
    mx=${RES[mxguardd,$mode]:-nan}
    [ "$run_pf" = 1 ] && [ "$pf" = nan ] && status=1
    [ "$run_mxg" = 1 ] && [ "$mx" = nan ] && status=1
    ratio=$(awk -v a="$mx" -v b="$pf" 'BEGIN { if (a != "nan" && b != "nan" && b > 0) printf "%.2f", a / b; else print "nan" }')
    echo "accept_rate mode=$mode postfix_msgs_per_s=$pf mxguardd_msgs_per_s=$mx ratio=$ratio"
    if [ -n "$RESULTS" ]; then
        key=${mode//-/_}
        {
            echo "accept_${key}_postfix=$pf"
            echo "accept_${key}_mxguardd=$mx"
            echo "accept_${key}_ratio=$ratio"
        } >>"$RESULTS"
    fi
done
[ "$run_mxg" = 1 ] || echo "accept_rate note=mxguardd_not_run (set MXGUARDD and MXGUARD)"
exit $status
