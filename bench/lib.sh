# lib.sh -- helpers shared by accept_rate.sh, relay_rate.sh and run-all.sh (source it).
#
# mxguardd side: everything comes from the environment, so the scripts work
# with any build:
#   MXGUARDD      path to the daemon        (required for the mxguardd runs)
#   MXGUARD       path to the console        (default: "mxguard" next to MXGUARDD)
#   MXG_DIR       scratch dir, wiped per run (default /tmp/bench-mxg)
#   MXG_PORT      SMTP port                  (default 24026)
#   MXG_BACKEND   backend of the bench domain (default 127.0.0.1:2599, nothing
#                 listens there, so accepted mail stays queued)
#   MXG_MAX_PER_IP  max_connections_per_ip in the generated config (default 1000)
#   MXG_SHARDS    smtp.shards (default 1: on a 2-core machine the load
#                 generator needs the other core; 0 = one per CPU)
#   MXG_EXTRA_TOML  text appended to the generated config (start it with a
#                 section header, e.g. "[delivery]\nmax_per_backend = 20")
#   MXG_DOMAIN_OPTS extra options for "domain add" (word-split, e.g. "--tls none")
#   MXG_DOMAIN_SET  settings applied afterwards with "domain set DOMAIN ..."
#                 (word-split KEY=VALUE list; empty = none)

PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

MXGUARDD=${MXGUARDD:-}
MXGUARD=${MXGUARD:-}
if [ -n "$MXGUARDD" ] && [ -z "$MXGUARD" ]; then
    MXGUARD=$(dirname "$MXGUARDD")/mxguard
fi
MXG_DIR=${MXG_DIR:-/tmp/bench-mxg}
MXG_PORT=${MXG_PORT:-24026}
MXG_BACKEND=${MXG_BACKEND:-127.0.0.1:2599}
MXG_MAX_PER_IP=${MXG_MAX_PER_IP:-1000}
MXG_SHARDS=${MXG_SHARDS:-1}
MXG_EXTRA_TOML=${MXG_EXTRA_TOML:-}
MXG_DOMAIN_OPTS=${MXG_DOMAIN_OPTS:-}
MXG_DOMAIN_SET=${MXG_DOMAIN_SET:-}
mxg_pid=""

port_listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

# wait_port PORT SECONDS [PID]: wait until something listens on PORT; fail
# early if PID (the server being started) dies.
wait_port() {
    for _ in $(seq 1 $(($2 * 10))); do
        port_listening "$1" && return 0
        if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}

# mxg_usable: 0 if MXGUARDD and MXGUARD are executable; else explains why not.
mxg_usable() {
    if [ -z "$MXGUARDD" ]; then
        echo "MXGUARDD is not set"
    elif [ ! -x "$MXGUARDD" ]; then
        echo "MXGUARDD=$MXGUARDD is missing or not executable"
    elif [ ! -x "$MXGUARD" ]; then
        echo "MXGUARD=$MXGUARD (console) is missing or not executable"
    else
        return 0
    fi
    return 1
}

# mxg_start DOMAIN: fresh state dir + config, add DOMAIN, start mxguardd,
# wait for its port and for "engine.ready" in its log (MXG_READY_TIMEOUT,
# default 180 s).  Sets mxg_pid and mxg_cfg.
mxg_start() {
    local domain=$1
    mxg_cfg=$MXG_DIR/mxguard.toml
    if port_listening "$MXG_PORT"; then
        echo "port $MXG_PORT is already in use" >&2
        return 1
    fi
    rm -rf "$MXG_DIR"
    mkdir -p "$MXG_DIR/state"
    cat >"$mxg_cfg" <<EOF
hostname = "mx.bench.test"
state_dir = "$MXG_DIR/state"
[smtp]
listen = ["127.0.0.1:$MXG_PORT"]
shards = $MXG_SHARDS
max_connections_per_ip = $MXG_MAX_PER_IP
# One loopback client is the whole load: the per-client rates (on by default,
# off in Postfix's defaults) would measure the limit, not the engine.
max_connection_rate = 0
max_message_rate = 0
EOF
    [ -z "$MXG_EXTRA_TOML" ] || printf '%b\n' "$MXG_EXTRA_TOML" >>"$mxg_cfg"
    # shellcheck disable=SC2086  # the option lists are meant to be split
    if ! "$MXGUARD" --config "$mxg_cfg" domain add "$domain" --customer bench \
            --backend "$MXG_BACKEND" --active $MXG_DOMAIN_OPTS >"$MXG_DIR/domain-add.log" 2>&1; then
        cat "$MXG_DIR/domain-add.log" >&2
        echo "'$MXGUARD --config $mxg_cfg domain add $domain ...' failed" >&2
        return 1
    fi
    # shellcheck disable=SC2086
    if [ -n "$MXG_DOMAIN_SET" ] && ! "$MXGUARD" --config "$mxg_cfg" domain set "$domain" \
            $MXG_DOMAIN_SET >>"$MXG_DIR/domain-add.log" 2>&1; then
        cat "$MXG_DIR/domain-add.log" >&2
        echo "'$MXGUARD --config $mxg_cfg domain set $domain $MXG_DOMAIN_SET' failed" >&2
        return 1
    fi
    "$MXGUARDD" --config "$mxg_cfg" >"$MXG_DIR/mxguardd.log" 2>&1 &
    mxg_pid=$!
    if ! wait_port "$MXG_PORT" 30 "$mxg_pid"; then
        tail -n 30 "$MXG_DIR/mxguardd.log" >&2
        echo "mxguardd did not listen on 127.0.0.1:$MXG_PORT within 30s" >&2
        mxg_stop
        return 1
    fi
    # The listeners are opened before the slow start-up work (on a fresh
    # state dir without a prebuilt factory bundle, compiling the rules takes
    # ~4 s of CPU, much more on a busy machine); connections wait in the
    # backlog until then.  A run must not time that, so wait for
    # "engine.ready" in the log.
    for _ in $(seq 1 $((${MXG_READY_TIMEOUT:-180} * 10))); do
        grep -q 'event=engine.ready' "$MXG_DIR/mxguardd.log" 2>/dev/null && return 0
        kill -0 "$mxg_pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 30 "$MXG_DIR/mxguardd.log" >&2
    echo "mxguardd exited or did not log engine.ready within ${MXG_READY_TIMEOUT:-180}s" >&2
    mxg_stop
    return 1
}

# mxg_stop: SIGTERM, wait up to 10 s, then SIGKILL.
mxg_stop() {
    [ -n "$mxg_pid" ] || return 0
    kill -TERM "$mxg_pid" 2>/dev/null
    for _ in $(seq 1 100); do
        kill -0 "$mxg_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$mxg_pid" 2>/dev/null; then
        echo "mxguardd did not exit within 10s of SIGTERM, killing it" >&2
        kill -KILL "$mxg_pid" 2>/dev/null
    fi
    wait "$mxg_pid" 2>/dev/null
    mxg_pid=""
}

# mxg_queue_count: entries printed by "mxguard queue list --json" -- a JSON
# array, an object holding one array, or one JSON object per line.
mxg_queue_count() {
    "$MXGUARD" --config "$mxg_cfg" queue list --json 2>"$MXG_DIR/queue-list.err" |
    /usr/bin/python3 -c '
import json, sys
text = sys.stdin.read()
try:
    doc = json.loads(text)
except ValueError:
    print(sum(1 for l in text.splitlines() if l.strip()))
    sys.exit(0)
if isinstance(doc, list):
    print(len(doc))
elif isinstance(doc, dict):
    arrays = [v for v in doc.values() if isinstance(v, list)]
    print(len(arrays[0]) if len(arrays) == 1 else 1)
else:
    print(1)
'
}

loadavg1() { cut -d' ' -f1 /proc/loadavg; }

# cpu_busy_pct: share of CPU time (all CPUs) not idle/iowait over 1 second.
cpu_busy_pct() {
    local a b
    a=$(head -n 1 /proc/stat)
    sleep 1
    b=$(head -n 1 /proc/stat)
    echo "$a
$b" | awk '{ t = 0; for (i = 2; i <= NF; i++) t += $i; idle = $5 + $6
             if (NR == 1) { t0 = t; i0 = idle } else { dt = t - t0
             busy = 0; if (dt > 0) busy = 100 * (dt - (idle - i0)) / dt; printf "%d", busy } }'
}

# wait_quiet TAG: wait (at most QUIET_WAIT seconds, default 60) until other
# processes use <= 20% of the CPUs, because every figure here is CPU-bound on
# small machines.  Sets busy_before to the last sample; warns, naming the top
# CPU consumers, when the machine did not get quiet.
wait_quiet() {
    local end=$((SECONDS + ${QUIET_WAIT:-60}))
    while :; do
        busy_before=$(cpu_busy_pct)
        [ "$busy_before" -le 20 ] && return 0
        [ "$SECONDS" -ge "$end" ] && break
        sleep 1
    done
    echo "$1: WARNING: CPUs ${busy_before}% busy with other work before the run; figures will be low/noisy. Top CPU users:" >&2
    ps -eo pid,pcpu,etime,args --sort=-pcpu | sed -n '2,4p' | cut -c1-120 | sed 's/^/    /' >&2
    return 1
}
