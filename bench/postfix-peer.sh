#!/usr/bin/env bash
# postfix-peer.sh -- run a private Postfix instance as a benchmark peer.
#
#   bench/postfix-peer.sh start  DIR PORT DOMAIN
#   bench/postfix-peer.sh stop   DIR
#   bench/postfix-peer.sh status DIR
#   bench/postfix-peer.sh count  DIR      # print number of queued messages
#
# Layout under DIR (e.g. /tmp/bench-pf):
#   DIR/etc     main.cf + master.cf        (postfix -c DIR/etc ...)
#   DIR/queue   queue_directory            (removed again by "stop")
#   DIR/data    data_directory             (removed again by "stop")
#   DIR/maillog log file written by postlogd (no syslog needed)
#
# The instance accepts mail for DOMAIN from 127.0.0.0/8 on 127.0.0.1:PORT.
# In the defer and hold modes it keeps the mail queued on disk and never
# delivers it, so what a load generator measures is Postfix's durable
# accept path (smtpd -> cleanup -> fsync'ed queue file).  Two ways to park
# the mail, and a third mode that delivers it:
#
#   PEER_MODE=defer (default)  defer_transports = smtp, relay: the queue
#       manager picks every message up and moves it to the deferred queue
#       without any connection attempt (close to what a real relay MX does:
#       the scheduler touches every message once).
#   PEER_MODE=hold             every message goes straight to the hold queue
#       (smtpd_data_restrictions = ... static:HOLD); the queue manager never
#       sees it.  Minimal work per message: pure accept path.
#   PEER_MODE=relay            a real relay: mail for DOMAIN is delivered
#       at once to PEER_RELAY_TO (HOST:PORT, required; e.g. an smtp-sink)
#       through the "relay" transport (relay_transport = relay:[HOST]:PORT),
#       without TLS, over up to PEER_CONCURRENCY (default 20, Postfix's
#       default) parallel connections.  A message that cannot be delivered
#       is deferred and not retried for an hour, so it stays visible in
#       "count".  Used by relay_rate.sh.
#
# The default instance in /etc/postfix does not have to run (nor even be
# configured): the only thing this script changes there is
# alternate_config_directories in /etc/postfix/main.cf.  The set-gid tools
# (postqueue, postdrop/sendmail) refuse "-c DIR" for a directory that is not
# listed there unless they run as root; root (which this script needs anyway)
# is exempt, but the entry keeps "postqueue -c DIR" usable for anyone.  If
# /etc/postfix/main.cf does not exist a minimal
# one is created that holds only that setting (plus inet_interfaces =
# loopback-only and compatibility_level).
set -euo pipefail

PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH

die() { echo "postfix-peer: $*" >&2; exit 1; }
log() { echo "postfix-peer: $*" >&2; }

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
case "$dir" in
    /*) ;;
    *) die "DIR must be an absolute path (got '$dir')" ;;
esac
dir=${dir%/}
[ -n "$dir" ] && [ "$dir" != "/" ] || die "refusing DIR=/"
etc=$dir/etc
queue=$dir/queue
data=$dir/data
maillog=$dir/maillog

[ "$(id -u)" = 0 ] || die "must run as root (Postfix master needs it)"
command -v postfix >/dev/null || die "postfix is not installed"

# --- /etc/postfix/main.cf: alternate_config_directories (idempotent) -------
register_alt_dir() {
    local main=/etc/postfix/main.cf cur item found=0
    if [ ! -e "$main" ]; then
        log "creating minimal $main (for alternate_config_directories)"
        mkdir -p /etc/postfix
        # loopback-only: harmless should anyone ever start the default instance
        printf '# created by MxGuard bench/postfix-peer.sh\ncompatibility_level = 3.6\ninet_interfaces = loopback-only\n' >"$main"
    fi
    cur=$(postconf -c /etc/postfix -h alternate_config_directories 2>/dev/null || true)
    for item in ${cur//,/ }; do
        [ "$item" = "$etc" ] && found=1
    done
    if [ $found = 0 ]; then
        if [ -n "$cur" ]; then cur="$cur, $etc"; else cur="$etc"; fi
        postconf -c /etc/postfix -e "alternate_config_directories = $cur"
        log "added $etc to alternate_config_directories in $main"
    fi
}

master_pid() {
    local f=$queue/pid/master.pid pid
    [ -r "$f" ] || return 1
    pid=$(tr -dc '0-9' <"$f")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

port_listening() {
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
}

write_config() {
    local port=$1 domain=$2 mode=$3 restr_data="" relay_to relay_host relay_port conc
    case "$mode" in
        defer|relay) restr_data="" ;;
        hold)  restr_data="check_client_access static:HOLD" ;;
        *) die "PEER_MODE must be 'defer', 'hold' or 'relay' (got '$mode')" ;;
    esac
    if [ "$mode" = relay ]; then
        relay_to=${PEER_RELAY_TO:-}
        relay_host=${relay_to%:*}
        relay_port=${relay_to##*:}
        [ -n "$relay_to" ] && [ "$relay_host" != "$relay_to" ] ||
            die "PEER_MODE=relay needs PEER_RELAY_TO=HOST:PORT"
        case "$relay_port" in (*[!0-9]*|'') die "bad port in PEER_RELAY_TO '$relay_to'" ;; esac
        conc=${PEER_CONCURRENCY:-20}
        case "$conc" in (*[!0-9]*|'') die "bad PEER_CONCURRENCY '$conc'" ;; esac
    fi
    mkdir -p "$etc"
    cat >"$etc/main.cf" <<EOF
# Benchmark peer generated by MxGuard bench/postfix-peer.sh -- do not edit,
# it is rewritten on every "start".
compatibility_level = 3.6
config_directory = $etc
queue_directory = $queue
data_directory = $data
mail_owner = postfix
setgid_group = postdrop

# logging without syslog: postlogd (master.cf "postlog") writes this file
maillog_file = $maillog
maillog_file_prefixes = $dir

myhostname = peer.bench.invalid
mydomain = bench.invalid
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
smtpd_banner = \$myhostname ESMTP benchmark peer
inet_interfaces = loopback-only
inet_protocols = ipv4

# MX-style relay for the benchmark domain only: any other recipient domain
# is rejected, also for loopback clients (no permit_mynetworks).  mynetworks
# still matters: it exempts the load generator from anvil's per-client limits.
mynetworks = 127.0.0.0/8
relay_domains = $domain
smtpd_relay_restrictions = reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_data_restrictions = $restr_data

# concurrency: 50+ simultaneous SMTP sessions
default_process_limit = 150
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0

# Never slow smtpd down because the queue manager lags (the default 1s
# in_flow_delay throttles exactly the thing we want to measure, and in hold
# mode the queue manager never hands out the tokens it waits for).
in_flow_delay = 0

smtp_dns_support_level = disabled
delay_warning_time = 0
queue_run_delay = 3600s
minimal_backoff_time = 3600s
maximal_backoff_time = 4000s
maximal_queue_lifetime = 5d
bounce_queue_lifetime = 5d
notify_classes =
EOF
    if [ "$mode" = relay ]; then
        cat >>"$etc/main.cf" <<EOF

# PEER_MODE=relay: deliver mail for $domain at once to $relay_to
default_transport = error:5.3.0 this peer relays $domain only
relay_transport = relay:[$relay_host]:$relay_port
smtp_tls_security_level = none
relay_destination_concurrency_limit = $conc
default_destination_concurrency_limit = $conc
EOF
    else
        cat >>"$etc/main.cf" <<EOF

# keep every message durably queued, never attempt delivery
defer_transports = smtp, relay, local, virtual, lmtp
default_transport = smtp
relay_transport = relay
EOF
    fi
    cat >"$etc/master.cf" <<EOF
# Benchmark peer generated by MxGuard bench/postfix-peer.sh.
# No service is chrooted (column 5 = n).
# service         type  private unpriv chroot wakeup maxproc command
127.0.0.1:$port   inet  n       -      n      -      -       smtpd
pickup            unix  n       -      n      60     1       pickup
cleanup           unix  n       -      n      -      0       cleanup
qmgr              unix  n       -      n      300    1       qmgr
rewrite           unix  -       -      n      -      -       trivial-rewrite
bounce            unix  -       -      n      -      0       bounce
defer             unix  -       -      n      -      0       bounce
trace             unix  -       -      n      -      0       bounce
verify            unix  -       -      n      -      1       verify
flush             unix  n       -      n      1000?  0       flush
proxymap          unix  -       -      n      -      -       proxymap
proxywrite        unix  -       -      n      -      1       proxymap
smtp              unix  -       -      n      -      -       smtp
relay             unix  -       -      n      -      -       smtp
showq             unix  n       -      n      -      -       showq
error             unix  -       -      n      -      -       error
retry             unix  -       -      n      -      -       error
discard           unix  -       -      n      -      -       discard
local             unix  -       n      n      -      -       local
virtual           unix  -       n      n      -      -       virtual
lmtp              unix  -       -      n      -      -       lmtp
anvil             unix  -       -      n      -      1       anvil
scache            unix  -       -      n      -      1       scache
postlog           unix-dgram n  -      n      -      1       postlogd
EOF
}

# Number of messages in the instance's queue (all queues but "corrupt").
# showq scans the queue directories one after the other, so a message that
# qmgr moves (incoming -> active -> deferred) during the scan can be listed
# twice: wait (at most 60s) until incoming/ and active/ are empty first.
count_queue() {
    local n
    for _ in $(seq 1 600); do
        n=$(find "$queue/incoming" "$queue/active" -type f 2>/dev/null | wc -l) || true
        [ "$n" = 0 ] && break
        sleep 0.1
    done
    if master_pid >/dev/null && n=$(postqueue -c "$etc" -j 2>/dev/null | wc -l); then
        echo "$n"
        return
    fi
    # fallback when the instance is down: count queue files directly
    find "$queue/maildrop" "$queue/incoming" "$queue/active" \
         "$queue/deferred" "$queue/hold" -type f 2>/dev/null | wc -l || true
}

do_stop() {
    local pid
    if pid=$(master_pid); then
        log "stopping instance $etc (master pid $pid)"
        postfix -c "$etc" stop >/dev/null 2>&1 || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "master $pid still alive after 10s, using 'postfix abort'"
            postfix -c "$etc" abort >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null || true
            sleep 0.5
        fi
    fi
    rm -rf "$queue" "$data"
}

do_start() {
    local port=$1 domain=$2 mode=${PEER_MODE:-defer}
    case "$port" in (*[!0-9]*|'') die "bad PORT '$port'" ;; esac
    [ -n "$domain" ] || die "DOMAIN is empty"

    do_stop   # idempotent: a leftover instance in DIR is stopped first
    if port_listening "$port"; then
        die "something already listens on port $port"
    fi
    mkdir -p "$dir"
    chmod 755 "$dir"
    : >"$maillog"
    write_config "$port" "$domain" "$mode"
    register_alt_dir
    mkdir -p "$queue" "$data"
    chown root:root "$queue"
    chmod 755 "$queue"
    chown postfix:postfix "$data"
    chmod 700 "$data"

    # "check" creates the missing queue subdirectories and fixes ownership
    if ! postfix -c "$etc" check >"$dir/check.log" 2>&1; then
        cat "$dir/check.log" >&2
        die "postfix -c $etc check failed"
    fi
    if ! postfix -c "$etc" start >"$dir/start.log" 2>&1; then
        cat "$dir/start.log" >&2
        tail -n 20 "$maillog" >&2 2>/dev/null || true
        die "postfix -c $etc start failed (try: postfix -c $etc start-fg)"
    fi
    for _ in $(seq 1 100); do
        port_listening "$port" && break
        sleep 0.1
    done
    if ! port_listening "$port"; then
        tail -n 30 "$maillog" >&2 2>/dev/null || true
        do_stop
        die "smtpd did not come up on 127.0.0.1:$port (see $maillog)"
    fi
    log "running: config $etc, queue $queue, 127.0.0.1:$port relays $domain, mode $mode${PEER_RELAY_TO:+ (to $PEER_RELAY_TO)}, log $maillog"
}

case "$cmd" in
    start)
        [ $# -eq 4 ] || usage
        do_start "$3" "$4"
        ;;
    stop)
        do_stop
        log "stopped, queue removed ($dir)"
        ;;
    status)
        if pid=$(master_pid); then
            echo "running master_pid=$pid queued=$(count_queue)"
        else
            echo "stopped"
            exit 1
        fi
        ;;
    count)
        count_queue
        ;;
    *)
        usage
        ;;
esac
