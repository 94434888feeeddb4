#!/usr/bin/env bash
# run-all.sh -- the whole MxGuard benchmark in one job, Postfix peer and
# mxguardd one after the other, ending in a summary with ratios.
#
#   MXGUARDD=build/src/engine/mxguardd MXGUARD=build/src/console/mxguard bench/run-all.sh
#
# Steps
#   1. accept_rate.sh: durable accept rate, 4 KiB bodies, 50 sessions,
#      N messages, with and without connection reuse (smtp-source -d).
#   2. idle_sessions.py: IDLE_K idle sessions (banner + EHLO) against
#      mxguardd, RSS growth per session; and, for comparison, IDLE_K_POSTFIX
#      sessions against the Postfix peer (one smtpd process per session, so
#      the master and all its children are summed).
#   3. latency.py: end-of-DATA -> 250 latency at half the mxguardd peak
#      accept rate (max of the two accept modes), against mxguardd and
#      against Postfix at the same rate; plus Postfix at half its own peak.
#   4. relay_rate.sh: end-to-end relay rate, smtp-source -> server ->
#      smtp-sink, RELAY_N messages, both modes, every message checked at the
#      sink and both queues empty afterwards.
#
# Environment (all optional; see accept_rate.sh and lib.sh for more):
#   MXGUARDD, MXGUARD  without them only the Postfix side runs
#   N=20000  SESSIONS=50  SIZE=4096  DOMAIN=bench.test
#   IDLE_K=20000       idle sessions vs mxguardd
#   IDLE_PER_SOURCE=1000  sessions per loopback source address; keep it
#                      <= max_connections_per_ip (MXG_MAX_PER_IP, default 1000)
#   IDLE_K_POSTFIX=100 idle sessions vs Postfix (must stay < its 150 smtpd processes)
#   LAT_SECONDS=20  LAT_SESSIONS=50  LAT_PROCS=1  LAT_RATE=  (force a latency rate)
#   RELAY_N=10000      messages per relay run;  SKIP_RELAY=1 skips step 4
#   OUT=/tmp/bench-results-<time>   where logs and results.env go
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

export N=${N:-20000}
export SESSIONS=${SESSIONS:-50}
export SIZE=${SIZE:-4096}
export DOMAIN=${DOMAIN:-bench.test}
export PF_DIR=${PF_DIR:-/tmp/bench-pf}
export PF_PORT=${PF_PORT:-24025}
export MXGUARDD MXGUARD MXG_DIR MXG_PORT MXG_BACKEND MXG_MAX_PER_IP
IDLE_K=${IDLE_K:-20000}
IDLE_PER_SOURCE=${IDLE_PER_SOURCE:-1000}
IDLE_K_POSTFIX=${IDLE_K_POSTFIX:-100}
LAT_SECONDS=${LAT_SECONDS:-20}
LAT_SESSIONS=${LAT_SESSIONS:-50}
LAT_PROCS=${LAT_PROCS:-1}
LAT_RATE=${LAT_RATE:-}
RELAY_N=${RELAY_N:-10000}
OUT=${OUT:-/tmp/bench-results-$(date +%Y%m%d-%H%M%S)}
PY=/usr/bin/python3

mkdir -p "$OUT"
RESULTS=$OUT/results.env
: >"$RESULTS"

log() { echo "run-all: $*" >&2; }

pf_started=0
cleanup() {
    mxg_stop
    [ "$pf_started" = 1 ] && "$here/postfix-peer.sh" stop "$PF_DIR" >/dev/null 2>&1
    true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run_mxg=1
if ! why=$(mxg_usable); then
    log "$why: running the Postfix side only"
    run_mxg=0
fi

# ---- file descriptors -------------------------------------------------------
# mxguardd keeps sessions in io_uring fixed-file tables (one per shard, each
# up to RLIMIT_NOFILE), so the process descriptor limit does not cap IDLE_K;
# the client spreads its sockets over worker processes.
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ]; then
    ulimit -Sn "$hard"
else
    ulimit -Sn 1048576 2>/dev/null || true
fi

get() { sed -n "s/^$1=//p" "$RESULTS" | tail -n 1; }
put() { echo "$1=$2" >>"$RESULTS"; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" | head -n 1; }   # from a result line

# ---- 1. accept rate -------------------------------------------------------
log "step 1/4: accept rate (N=$N, $SESSIONS sessions, $SIZE byte bodies)"
RESULTS=$RESULTS "$here/accept_rate.sh" 2>&1 | tee "$OUT/accept_rate.log" | grep -E '^(run|accept_rate) '

# ---- 2. idle sessions -----------------------------------------------------
log "step 2/4: idle sessions"
if [ "$run_mxg" = 1 ]; then
    wait_quiet run-all || true
    # Idle sessions spread over one shard per CPU, as deployed.
    if MXG_SHARDS=0 mxg_start "$DOMAIN"; then
        sleep 1
        line=$($PY "$here/idle_sessions.py" --port "$MXG_PORT" -k "$IDLE_K" \
                --per-source "$IDLE_PER_SOURCE" --pid "$mxg_pid" 2>"$OUT/idle_mxguardd.err")
        echo "$line" | tee "$OUT/idle_mxguardd.log"
        put idle_mxguardd_sessions "$IDLE_K"
        put idle_mxguardd_ok "$(echo "$line" | field ok)"
        put idle_mxguardd_bytes "$(echo "$line" | field bytes_per_session)"
        put idle_mxguardd_anon_bytes "$(echo "$line" | field anon_bytes_per_session)"
        mxg_stop
    else
        log "mxguardd did not start for the idle test"
    fi
fi
if "$here/postfix-peer.sh" start "$PF_DIR" "$PF_PORT" "$DOMAIN" 2>>"$OUT/postfix-peer.log"; then
    pf_started=1
    sleep 1
    master=$(tr -dc '0-9' <"$PF_DIR/queue/pid/master.pid")
    line=$($PY "$here/idle_sessions.py" --port "$PF_PORT" -k "$IDLE_K_POSTFIX" \
            --pid "$master" --children 2>"$OUT/idle_postfix.err")
    echo "$line" | tee "$OUT/idle_postfix.log"
    put idle_postfix_sessions "$IDLE_K_POSTFIX"
    put idle_postfix_ok "$(echo "$line" | field ok)"
    put idle_postfix_bytes "$(echo "$line" | field bytes_per_session)"
    put idle_postfix_anon_bytes "$(echo "$line" | field anon_bytes_per_session)"
    "$here/postfix-peer.sh" stop "$PF_DIR" 2>>"$OUT/postfix-peer.log"
    pf_started=0
fi

# ---- 3. latency at half the mxguardd peak ---------------------------------
log "step 3/4: latency"
peak() {   # max of the accept rates of one peer
    local a b
    a=$(get "accept_per_conn_$1"); b=$(get "accept_reuse_$1")
    awk -v a="${a:-nan}" -v b="${b:-nan}" 'BEGIN {
        m = -1
        if (a != "nan" && a + 0 > m) m = a + 0
        if (b != "nan" && b + 0 > m) m = b + 0
        if (m < 0) print "nan"; else printf "%.1f", m }'
}
mx_peak=$(peak mxguardd)
pf_peak=$(peak postfix)
put peak_mxguardd "$mx_peak"
put peak_postfix "$pf_peak"
half() { awk -v p="$1" 'BEGIN { if (p == "nan") print "nan"; else printf "%.0f", p / 2 }'; }
if [ -n "$LAT_RATE" ]; then
    rate=$LAT_RATE
elif [ "$mx_peak" != nan ]; then
    rate=$(half "$mx_peak")
else
    rate=$(half "$pf_peak")
    log "no mxguardd peak rate: latency at half the Postfix peak instead"
fi
put latency_rate "$rate"

latency_run() {   # TAG PORT RATE
    local line
    wait_quiet run-all || true
    line=$($PY "$here/latency.py" --port "$2" --rate "$3" --seconds "$LAT_SECONDS" \
            --sessions "$LAT_SESSIONS" --procs "$LAT_PROCS" --size "$SIZE" \
            --rcpt "user@$DOMAIN" 2>"$OUT/latency_$1.err")
    echo "$line" | head -n 1 | sed "s/^latency /latency peer=$1 /" | tee "$OUT/latency_$1.log"
    for f in rate p50_ms p99_ms n late errors; do
        put "latency_$1_$f" "$(echo "$line" | field "$f")"
    done
}

if [ "$rate" = nan ] || [ "$rate" = 0 ]; then
    log "no usable rate for the latency test, skipped"
else
    if [ "$run_mxg" = 1 ] && mxg_start "$DOMAIN"; then
        latency_run mxguardd "$MXG_PORT" "$rate"
        mxg_stop
    fi
    if "$here/postfix-peer.sh" start "$PF_DIR" "$PF_PORT" "$DOMAIN" 2>>"$OUT/postfix-peer.log"; then
        pf_started=1
        latency_run postfix "$PF_PORT" "$rate"
        pf_half=$(half "$pf_peak")
        if [ "$pf_half" != nan ] && [ "$pf_half" != "$rate" ] && [ "$pf_half" != 0 ]; then
            "$here/postfix-peer.sh" start "$PF_DIR" "$PF_PORT" "$DOMAIN" 2>>"$OUT/postfix-peer.log"
            latency_run postfix_own_half "$PF_PORT" "$pf_half"
            put latency_postfix_own_half_target "$pf_half"
        fi
        "$here/postfix-peer.sh" stop "$PF_DIR" 2>>"$OUT/postfix-peer.log"
        pf_started=0
    fi
fi

# ---- 4. end-to-end relay rate ---------------------------------------------
if [ "${SKIP_RELAY:-0}" = 1 ]; then
    log "step 4/4: relay rate skipped (SKIP_RELAY=1)"
else
    log "step 4/4: relay rate (N=$RELAY_N, $SESSIONS sessions, $SIZE byte bodies)"
    N=$RELAY_N RESULTS=$RESULTS "$here/relay_rate.sh" 2>&1 | tee "$OUT/relay_rate.log" |
        grep -E '^(run|relay_rate) '
fi

# ---- summary --------------------------------------------------------------
ratio() { awk -v a="${1:-nan}" -v b="${2:-nan}" 'BEGIN {
    if (a == "" || b == "" || a == "nan" || b == "nan" || b + 0 == 0) print "nan"
    else printf "%.2f", a / b }'; }
echo
echo "==== MxGuard benchmark summary ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, results in $OUT) ===="
printf '%-44s %14s %14s %9s\n' "metric" "postfix" "mxguardd" "ratio"
for m in per_conn reuse; do
    pf=$(get "accept_${m}_postfix"); mx=$(get "accept_${m}_mxguardd")
    case $m in (reuse) label="reuse, smtp-source -d" ;; (*) label="one msg per connection" ;; esac
    printf '%-44s %14s %14s %9s\n' "accept msgs/s ($label)" \
        "${pf:-n/a}" "${mx:-n/a}" "$(ratio "$mx" "$pf")"
done
printf '%-44s %14s %14s %9s\n' "idle sessions ok/attempted" \
    "$(get idle_postfix_ok)/$(get idle_postfix_sessions)" "$(get idle_mxguardd_ok)/$(get idle_mxguardd_sessions)" -
pfb=$(get idle_postfix_bytes); mxb=$(get idle_mxguardd_bytes)
printf '%-44s %14s %14s %9s\n' "idle bytes/session RSS (postfix: all procs)" \
    "${pfb:-n/a}" "${mxb:-n/a}" "$(ratio "$pfb" "$mxb")"
pfa=$(get idle_postfix_anon_bytes); mxa=$(get idle_mxguardd_anon_bytes)
printf '%-44s %14s %14s %9s\n' "idle bytes/session RssAnon" "${pfa:-n/a}" "${mxa:-n/a}" "$(ratio "$pfa" "$mxa")"
for f in p50_ms p99_ms rate late; do
    pf=$(get "latency_postfix_$f"); mx=$(get "latency_mxguardd_$f")
    printf '%-44s %14s %14s %9s\n' "latency $f @ ${rate} msgs/s" "${pf:-n/a}" "${mx:-n/a}" \
        "$( [ "$f" = rate ] || [ "$f" = late ] && echo - || ratio "$pf" "$mx")"
done
for m in per_conn reuse; do
    pf=$(get "relay_${m}_postfix"); mx=$(get "relay_${m}_mxguardd")
    [ -n "$pf$mx" ] || continue
    case $m in (reuse) label="reuse" ;; (*) label="per connection" ;; esac
    printf '%-44s %14s %14s %9s\n' "relay msgs/s end-to-end ($label)" "${pf:-n/a}" "${mx:-n/a}" "$(ratio "$mx" "$pf")"
    printf '%-44s %14s %14s %9s\n' "relay drain s after accept ($label)" \
        "$(get "relay_${m}_postfix_drain_s")" "$(get "relay_${m}_mxguardd_drain_s")" -
done
if [ -n "$(get latency_postfix_own_half_p50_ms)" ]; then
    printf '%-44s %14s\n' "postfix latency p50/p99 ms @ $(get latency_postfix_own_half_target) msgs/s" \
        "$(get latency_postfix_own_half_p50_ms)/$(get latency_postfix_own_half_p99_ms)"
fi
echo "(ratio: mxguardd/postfix for msgs/s, postfix/mxguardd for bytes and ms; > 1 = mxguardd better."
echo " 'late' > 0: the peer could not keep up with the target rate, see latency.py --help.)"
for p in mxguardd postfix; do
    got=$(get "latency_${p}_rate")
    [ -n "$got" ] || continue
    if awk -v g="$got" -v t="$rate" 'BEGIN { exit !(g == "nan" || g < 0.95 * t) }'; then
        echo "NOTE: $p sustained only $got of $rate msgs/s in the latency run (server, or the" \
             "Python client on a small machine, saturated)"
    fi
done
echo "summary accept_per_conn_ratio=$(get accept_per_conn_ratio) accept_reuse_ratio=$(get accept_reuse_ratio)" \
     "idle_bytes_mxguardd=${mxb:-nan} latency_rate=$rate latency_p99_ms_mxguardd=$(get latency_mxguardd_p99_ms)" \
     "latency_p99_ms_postfix=$(get latency_postfix_p99_ms)" \
     "relay_per_conn_ratio=$(get relay_per_conn_ratio) relay_reuse_ratio=$(get relay_reuse_ratio)"
