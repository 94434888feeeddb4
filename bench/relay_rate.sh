#!/usr/bin/env bash
# relay_rate.sh -- end-to-end relay rate: smtp-source -> server -> smtp-sink,
# Postfix (relay for DOMAIN) against mxguardd (backend for DOMAIN), one job.
#
# For each mode and each server:
#   1. a fresh smtp-sink on 127.0.0.1:SINK_PORT counts the messages it
#      receives (smtp-sink -c: "sess=.. quit=.. mesg=..", mesg = "." received);
#   2. a fresh server whose only route for DOMAIN is that sink:
#        Postfix: postfix-peer.sh with PEER_MODE=relay (relay_transport =
#                 relay:[127.0.0.1]:SINK_PORT, no TLS, PEER_CONCURRENCY);
#        mxguardd: domain DOMAIN with --backend 127.0.0.1:SINK_PORT --tls none,
#                 scoring thresholds at 1000 (no message is held back);
#   3. smtp-source sends N messages of SIZE bytes over SESSIONS sessions
#      (per-conn: one message per connection; reuse: smtp-source -d);
#   4. relay_watch.py follows both counters (smtp-source -c and the sink)
#      every 10 ms without starting processes, until the sink has N messages
#      (plus SETTLE seconds, so that a duplicate would still be counted), no
#      counter moved for STALL seconds, or DRAIN_TIMEOUT;
#   5. checks: smtp-source exit 0, sink count == N exactly, server queue
#      empty (postfix-peer.sh count / mxguard queue list --json), and N
#      "sent" results in the server's log (the sink counts every "." it
#      received, also one it refused).
#
# Figures per run:
#   e2e_secs     start of smtp-source -> last message at the sink (the rate
#                is N / e2e_secs: acceptance plus queue drain)
#   accept_secs  start of smtp-source -> smtp-source exited (every message
#                had its 250); first_accept_s: start -> first 250
#   drain_secs   smtp-source exited -> last message at the sink
#   backlog_at_accept_end  messages accepted but not yet at the sink when
#                smtp-source exited
#   max_backlog  largest accepted - delivered seen (messages queued or in
#                delivery inside the server), and when (max_backlog_at_s,
#                seconds after the start)
#
# Environment (all optional):
#   N=10000  SESSIONS=50  SIZE=4096  MODES="per-conn reuse"
#   DOMAIN=bench.test  RCPT_LOCAL=user  SENDER=sender@client.bench.test
#   HELO_NAME=client.bench.test
#   SINK_PORT=24027      the smtp-sink both servers deliver to
#   SINK_OPTS=           extra smtp-sink options (word-split), e.g. "-r ." makes
#                        it answer 450 to every message (tests the failure path)
#   PF_DIR=/tmp/bench-pf  PF_PORT=24025  PEER_CONCURRENCY=20 (Postfix's
#                        default destination concurrency)
#   MXGUARDD, MXGUARD, MXG_DIR, MXG_PORT, MXG_SHARDS (see lib.sh)
#   MXG_MAX_PER_BACKEND  [delivery] max_per_backend (unset: engine default 10)
#   MXG_MAX_MESSAGES     [delivery] max_messages (unset: engine default 500)
#   RUN_TIMEOUT=600      seconds smtp-source may take
#   DRAIN_TIMEOUT=900    seconds the whole run (accept + drain) may take
#   STALL=30             give up when no counter moved for this long
#   SETTLE=1             seconds to keep counting after the sink reached N
#   SKIP_POSTFIX=1       only mxguardd      SKIP_MXGUARDD=1  only Postfix
#   RESULTS=file         also append KEY=VALUE results to this file
#   QUIET_WAIT=60        wait up to this long for idle CPUs before each run
#   TIMEWAIT_WAIT=70     wait up to this long for the previous run's TIME_WAIT
#                        sockets to expire before each run
#   KEEP_DIR=dir         keep each run's files (counters, timeline, logs) here
#
# Output lines (the last ones are the summary):
#   run peer=postfix mode=reuse msgs=10000 e2e_secs=.. msgs_per_s=.. accept_secs=.. ... verify=ok
#   relay_rate mode=reuse postfix_msgs_per_s=.. mxguardd_msgs_per_s=.. ratio=.. ... target=10 met=yes|no
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

N=${N:-10000}
SESSIONS=${SESSIONS:-50}
SIZE=${SIZE:-4096}
MODES=${MODES:-"per-conn reuse"}
DOMAIN=${DOMAIN:-bench.test}
RCPT_LOCAL=${RCPT_LOCAL:-user}
SENDER=${SENDER:-sender@client.bench.test}
HELO_NAME=${HELO_NAME:-client.bench.test}
SINK_PORT=${SINK_PORT:-24027}
PF_DIR=${PF_DIR:-/tmp/bench-pf}
PF_PORT=${PF_PORT:-24025}
PEER_CONCURRENCY=${PEER_CONCURRENCY:-20}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-900}
STALL=${STALL:-30}
SETTLE=${SETTLE:-1}
RESULTS=${RESULTS:-}
KEEP_DIR=${KEEP_DIR:-}
TARGET=10
PY=/usr/bin/python3

log() { echo "relay_rate: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v smtp-source >/dev/null || die "smtp-source not found (apt-get install postfix)"
command -v smtp-sink >/dev/null || die "smtp-sink not found (apt-get install postfix)"
[ -n "${EPOCHREALTIME:-}" ] || die "needs bash >= 5 (EPOCHREALTIME)"
case "$N$SESSIONS$SIZE$SINK_PORT$PEER_CONCURRENCY" in (*[!0-9]*) die "N, SESSIONS, SIZE, SINK_PORT, PEER_CONCURRENCY must be integers" ;; esac
[ "$N" -gt 0 ] || die "N must be > 0"

run_mxg=1
if [ "${SKIP_MXGUARDD:-0}" = 1 ]; then
    run_mxg=0
elif ! why=$(mxg_usable); then
    log "$why: measuring the Postfix peer only"
    run_mxg=0
fi
run_pf=1
[ "${SKIP_POSTFIX:-0}" = 1 ] && run_pf=0
[ "$run_pf$run_mxg" != 00 ] || die "nothing to measure"

# mxguardd: deliver to the sink in clear text, never hold a message back
MXG_BACKEND=127.0.0.1:$SINK_PORT
MXG_DOMAIN_OPTS="--tls none"
MXG_DOMAIN_SET="reject_threshold=1000 quarantine_threshold=1000 greylist_threshold=1000"
MXG_EXTRA_TOML=""
if [ -n "${MXG_MAX_PER_BACKEND:-}${MXG_MAX_MESSAGES:-}" ]; then
    MXG_EXTRA_TOML="[delivery]"
    [ -n "${MXG_MAX_PER_BACKEND:-}" ] && MXG_EXTRA_TOML+="\nmax_per_backend = $MXG_MAX_PER_BACKEND"
    [ -n "${MXG_MAX_MESSAGES:-}" ] && MXG_EXTRA_TOML+="\nmax_messages = $MXG_MAX_MESSAGES"
fi

WORK=$(mktemp -d /tmp/bench-relay.XXXXXX)
sink_pid=""
watch_pid=""
pf_up=0

stop_sink() {
    [ -n "$sink_pid" ] || return 0
    kill -TERM "$sink_pid" 2>/dev/null
    wait "$sink_pid" 2>/dev/null
    sink_pid=""
}
stop_watch() {
    [ -n "$watch_pid" ] || return 0
    kill -TERM "$watch_pid" 2>/dev/null
    wait "$watch_pid" 2>/dev/null
    watch_pid=""
}
stop_pf() {
    [ "$pf_up" = 1 ] || return 0
    "$here/postfix-peer.sh" stop "$PF_DIR" >/dev/null 2>&1 || true
    pf_up=0
}
cleanup() {
    stop_watch
    mxg_stop
    stop_pf
    stop_sink
    if [ -n "$KEEP_DIR" ]; then
        log "run files kept in $KEEP_DIR"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_sink: a fresh smtp-sink whose counters go to $WORK/sink.count.
# -m 30000: do not leave sessions in the backlog; -u nobody: required as root.
start_sink() {
    if port_listening "$SINK_PORT"; then
        log "port $SINK_PORT (sink) is already in use"
        return 1
    fi
    : >"$WORK/sink.count"
    # shellcheck disable=SC2086
    smtp-sink -u nobody -c -m 30000 -t 300 ${SINK_OPTS:-} "127.0.0.1:$SINK_PORT" 4096 \
        >"$WORK/sink.count" 2>"$WORK/sink.err" &
    sink_pid=$!
    if ! wait_port "$SINK_PORT" 10 "$sink_pid"; then
        cat "$WORK/sink.err" >&2
        log "smtp-sink did not listen on 127.0.0.1:$SINK_PORT"
        return 1
    fi
}

start_server() {  # PEER
    case "$1" in
        postfix)
            PEER_MODE=relay PEER_RELAY_TO=127.0.0.1:$SINK_PORT PEER_CONCURRENCY=$PEER_CONCURRENCY \
                "$here/postfix-peer.sh" start "$PF_DIR" "$PF_PORT" "$DOMAIN" 2>"$WORK/peer.log" || {
                cat "$WORK/peer.log" >&2; return 1; }
            pf_up=1
            server_port=$PF_PORT
            ;;
        mxguardd)
            mxg_start "$DOMAIN" || return 1
            server_port=$MXG_PORT
            ;;
    esac
}

# queue_left PEER: messages still in the server's queue.  Postfix: "count"
# waits until incoming/ and active/ are empty.  mxguardd: a delivery result
# is committed a moment after the sink's 250, so wait (<= 10 s) for 0.
queue_left() {
    local n
    case "$1" in
        postfix) "$here/postfix-peer.sh" count "$PF_DIR" ;;
        mxguardd)
            for _ in $(seq 1 50); do
                n=$(mxg_queue_count)
                [ "$n" = 0 ] && break
                sleep 0.2
            done
            echo "${n:-nan}"
            ;;
    esac
}

stop_server() {
    case "$1" in
        postfix) stop_pf ;;
        mxguardd) mxg_stop ;;
    esac
}

# server_log_stats PEER: delivery outcomes from the server's own log
server_log_stats() {
    local f sent deferred
    case "$1" in
        postfix)
            f=$PF_DIR/maillog
            sent=$(grep -c ' status=sent ' "$f" 2>/dev/null)
            deferred=$(grep -c ' status=deferred ' "$f" 2>/dev/null)
            ;;
        mxguardd)
            f=$MXG_DIR/mxguardd.log
            sent=$(grep 'delivery.result' "$f" 2>/dev/null | grep -c 'status=sent')
            deferred=$(grep 'delivery.result' "$f" 2>/dev/null | grep -c 'status=deferred')
            ;;
    esac
    echo "log_sent=${sent:-0} log_deferred=${deferred:-0}"
}

f3() { awk -v x="$1" 'BEGIN { if (x == "nan") print "nan"; else printf "%.3f", x }'; }
rate() { awk -v n="$1" -v s="$2" 'BEGIN { if (s != "nan" && s > 0) printf "%.1f", n / s; else print "nan" }'; }
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" | head -n 1; }   # value of KEY in a result line

declare -A RES

run_one() {  # PEER MODE
    local peer=$1 mode=$2 extra=() t0 t_acc src_rc wline end delivered last_t
    local e2e acc_s drain r acc_r left verify stats tl at_end max_b max_at first_t first load_before log_sent timewait_before
    [ "$mode" = reuse ] && extra=(-d)
    # The previous run's dirty pages (Postfix's queue files, the sink's
    # dumps, logs) are written back now, not during this run.
    sync
    # Many of the previous run's connections still in TIME_WAIT would crowd
    # the ephemeral port range of this run's clients; wait until they expire.
    local tw_end=$((SECONDS + ${TIMEWAIT_WAIT:-70}))
    while [ "$(ss -Htan state time-wait | wc -l)" -gt 500 ] && [ "$SECONDS" -lt "$tw_end" ]; do sleep 1; done
    timewait_before=$(ss -Htan state time-wait | wc -l)
    wait_quiet relay_rate || true
    load_before=$(loadavg1)
    start_sink || die "cannot start smtp-sink"
    start_server "$peer" || die "cannot start $peer"

    : >"$WORK/source.count"
    tl=$WORK/timeline
    $PY "$here/relay_watch.py" --source "$WORK/source.count" --sink "$WORK/sink.count" \
        --n "$N" --timeline "$tl" --settle "$SETTLE" --stall "$STALL" \
        --timeout "$DRAIN_TIMEOUT" >"$WORK/watch.out" 2>"$WORK/watch.err" &
    watch_pid=$!
    sleep 0.2   # let the watcher take its first (empty) sample

    t0=$EPOCHREALTIME
    timeout "$RUN_TIMEOUT" smtp-source -c -s "$SESSIONS" -m "$N" -l "$SIZE" "${extra[@]}" \
        -f "$SENDER" -t "$RCPT_LOCAL@$DOMAIN" -M "$HELO_NAME" "127.0.0.1:$server_port" \
        >"$WORK/source.count" 2>"$WORK/source.err"
    src_rc=$?
    t_acc=$EPOCHREALTIME
    if [ "$src_rc" != 0 ]; then
        log "$peer: smtp-source exited with $src_rc (124 = RUN_TIMEOUT ${RUN_TIMEOUT}s hit):"
        tail -n 5 "$WORK/source.err" >&2
        stop_watch   # the sink will never get N messages
    fi
    if [ -n "$watch_pid" ]; then
        wait "$watch_pid"
        watch_pid=""
    fi
    wline=$(cat "$WORK/watch.out")
    end=$(echo " $wline" | kv end); end=${end:-killed}
    delivered=$(echo " $wline" | kv delivered); delivered=${delivered:-nan}
    last_t=$(echo " $wline" | kv last_t); last_t=${last_t:-nan}
    first_t=$(echo " $wline" | kv first_t); first_t=${first_t:-nan}

    left=$(queue_left "$peer")
    stats=$(server_log_stats "$peer")
    if [ -n "$KEEP_DIR" ]; then
        mkdir -p "$KEEP_DIR/$peer-$mode"
        cp "$WORK"/*.count "$WORK"/*.err "$tl" "$WORK/watch.out" "$KEEP_DIR/$peer-$mode/" 2>/dev/null
        if [ "$peer" = postfix ]; then cp "$PF_DIR/maillog" "$KEEP_DIR/$peer-$mode/" 2>/dev/null
        else cp "$MXG_DIR/mxguardd.log" "$MXG_DIR/mxguard.toml" "$KEEP_DIR/$peer-$mode/" 2>/dev/null; fi
    fi
    stop_server "$peer"
    stop_sink

    # times relative to the start of smtp-source
    e2e=$(awk -v a="$t0" -v b="$last_t" 'BEGIN { if (b == "nan") print "nan"; else printf "%.3f", b - a }')
    acc_s=$(awk -v a="$t0" -v b="$t_acc" 'BEGIN { printf "%.3f", b - a }')
    first=$(awk -v a="$t0" -v b="$first_t" 'BEGIN { if (b == "nan") print "nan"; else printf "%.3f", b - a }')
    drain=$(awk -v a="$t_acc" -v b="$last_t" 'BEGIN { if (b == "nan") print "nan"; else printf "%.3f", b - a }')
    # from the timeline: backlog when smtp-source exited, and the largest one
    read -r at_end max_b max_at < <(awk -v t0="$t0" -v tacc="$t_acc" '
        { b = $2 - $3; if (b > mb) { mb = b; mt = $1 - t0 }
          if ($1 <= tacc) e = b }
        END { printf "%d %d %.3f\n", e, mb, mt }' "$tl" 2>/dev/null || echo "nan nan nan")

    local problems=()
    [ "$src_rc" = 0 ] || problems+=("SOURCE_FAILED(rc=$src_rc)")
    [ "$delivered" = "$N" ] || problems+=("SINK_COUNT_MISMATCH(got=$delivered,watch=$end)")
    [ "$left" = 0 ] || problems+=("QUEUE_NOT_EMPTY($left)")
    # the sink's mesg counts every "." even if it refused it (smtp-sink -r/-f),
    # so the server's own log must say "sent" N times, too
    log_sent=$(echo " $stats" | kv log_sent)
    [ "$log_sent" = "$N" ] || problems+=("LOG_SENT_MISMATCH($log_sent)")
    verify=ok
    if [ ${#problems[@]} -gt 0 ]; then
        verify=$(IFS=,; echo "${problems[*]}")
        log "$peer $mode: $verify"
    fi
    r=$(rate "$N" "$e2e")
    acc_r=$(rate "$N" "$acc_s")
    [ "$verify" = ok ] || r=nan
    echo "run peer=$peer mode=$mode msgs=$N sessions=$SESSIONS size=$SIZE e2e_secs=$e2e msgs_per_s=$r" \
         "first_accept_s=$first accept_secs=$acc_s accept_msgs_per_s=$acc_r drain_secs=$drain backlog_at_accept_end=$at_end" \
         "max_backlog=$max_b max_backlog_at_s=$max_at delivered=$delivered queue_left=$left $stats" \
         "verify=$verify cpu_busy_before=$busy_before load1_before=$load_before timewait_before=$timewait_before"
    RES[$peer,$mode]=$r
    RES[$peer,$mode,drain]=$drain
    RES[$peer,$mode,maxb]=$max_b
}

extra_desc=""
[ -n "${MXG_MAX_PER_BACKEND:-}" ] && extra_desc+=" mxg_max_per_backend=$MXG_MAX_PER_BACKEND"
[ -n "${MXG_MAX_MESSAGES:-}" ] && extra_desc+=" mxg_max_messages=$MXG_MAX_MESSAGES"
log "N=$N sessions=$SESSIONS size=$SIZE modes='$MODES' cpus=$(nproc) sink=127.0.0.1:$SINK_PORT" \
    "postfix_port=$PF_PORT postfix_concurrency=$PEER_CONCURRENCY mxguardd_port=$MXG_PORT shards=$MXG_SHARDS$extra_desc"
for mode in $MODES; do
    case "$mode" in (per-conn|reuse) ;; (*) die "unknown mode '$mode'" ;; esac
    [ "$run_pf" = 1 ] && run_one postfix "$mode"
    [ "$run_mxg" = 1 ] && run_one mxguardd "$mode"
done

status=0
for mode in $MODES; do
    pf=${RES[postfix,$mode]:-nan}
    mx=${RES[mxguardd,$mode]:-nan}
    [ "$run_pf" = 1 ] && [ "$pf" = nan ] && status=1
    [ "$run_mxg" = 1 ] && [ "$mx" = nan ] && status=1
    ratio=$(awk -v a="$mx" -v b="$pf" 'BEGIN { if (a != "nan" && b != "nan" && b > 0) printf "%.2f", a / b; else print "nan" }')
    met=$(awk -v r="$ratio" -v t="$TARGET" 'BEGIN { if (r == "nan") print "n/a"; else if (r >= t) print "yes"; else print "no" }')
    echo "relay_rate mode=$mode postfix_msgs_per_s=$pf mxguardd_msgs_per_s=$mx ratio=$ratio" \
         "postfix_drain_s=${RES[postfix,$mode,drain]:-nan} mxguardd_drain_s=${RES[mxguardd,$mode,drain]:-nan}" \
         "postfix_max_backlog=${RES[postfix,$mode,maxb]:-nan} mxguardd_max_backlog=${RES[mxguardd,$mode,maxb]:-nan}" \
         "target=$TARGET met=$met"
    if [ -n "$RESULTS" ]; then
        key=${mode//-/_}
        {
            echo "relay_${key}_postfix=$pf"
            echo "relay_${key}_mxguardd=$mx"
            echo "relay_${key}_ratio=$ratio"
            echo "relay_${key}_postfix_drain_s=${RES[postfix,$mode,drain]:-nan}"
            echo "relay_${key}_mxguardd_drain_s=${RES[mxguardd,$mode,drain]:-nan}"
        } >>"$RESULTS"
    fi
done
exit $status
