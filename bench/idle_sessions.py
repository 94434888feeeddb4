#!/usr/bin/python3
"""idle_sessions.py -- memory cost of idle SMTP sessions.

Opens K concurrent SMTP sessions to HOST:PORT.  Every session reads the 220
banner, sends "EHLO <name>", reads the whole (multi-line) 250 reply and then
stays idle.  The server's memory (VmRSS and RssAnon from /proc/PID/status) is
sampled before the first connection and again once every session is
established and has been idle for --settle seconds:

  idle_sessions sessions=K ok=.. failed=.. rss_before_kib=.. rss_after_kib=..
      bytes_per_session=.. rss_anon_before_kib=.. rss_anon_after_kib=..
      anon_bytes_per_session=.. sources=.. procs=.. establish_secs=..

Connections come from several loopback source addresses (127.0.0.2,
127.0.0.3, ...; --per-source sessions each) so that one (source, destination)
pair never needs more ephemeral ports than the kernel has.  The sessions are
spread over --procs worker processes (default: as many as the RLIMIT_NOFILE
hard limit requires; each worker raises its soft limit as far as needed),
each one single-threaded and non-blocking (selectors/epoll).  The whole run is
bounded by --timeout.

Exit status: 0 if every session got its banner and EHLO reply and was still
open at the end, 1 otherwise, 2 on usage/environment errors (e.g. a file
descriptor limit that is too low and cannot be raised).
"""

import argparse
import collections
import errno
import ipaddress
import json
import os
import resource
import select
import selectors
import socket
import sys
import time

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
FD_RESERVE = 64          # descriptors a worker needs besides its sockets

# session states
CONNECTING, BANNER, EHLO, IDLE, DEAD = range(5)
PHASE = {CONNECTING: "connect", BANNER: "banner", EHLO: "ehlo"}


def log(msg):
    sys.stderr.write("idle_sessions: %s\n" % msg)
    sys.stderr.flush()


def ename(num):
    return errno.errorcode.get(num, str(num))


# ---------------------------------------------------------------- memory ---

def read_status(pids):
    """Sum of VmRSS and RssAnon (KiB) over pids; (None, None) if no pid."""
    if not pids:
        return None, None
    rss = anon = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("RssAnon:"):
                        anon += int(line.split()[1])
        except FileNotFoundError:
            pass            # a child that exited meanwhile
    return rss, anon


def descendants(pid):
    """pid plus all its descendants (for process-per-connection servers)."""
    children = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])   # field 4
        children[ppid].append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p == os.getpid():
            continue        # never count this benchmark's own processes
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


# ------------------------------------------------------------ fd limits ---

def nofile_hard():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return None if hard == resource.RLIM_INFINITY else hard


def raise_nofile(needed):
    """Raise RLIMIT_NOFILE to `needed`; exit 2 with an explanation if impossible."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:  # works only with CAP_SYS_RESOURCE
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return
        except (ValueError, OSError) as e:
            log("need %d file descriptors but the RLIMIT_NOFILE hard limit is %d "
                "and cannot be raised (%s); use more --procs or fewer --sessions"
                % (needed, hard, e))
            sys.exit(2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


# --------------------------------------------------------------- worker ---

class Session:
    __slots__ = ("sock", "state", "buf", "started")

    def __init__(self, sock):
        self.sock = sock
        self.state = CONNECTING
        self.buf = b""
        self.started = time.monotonic()


class Worker:
    """Owns sessions with global indices [lo, hi)."""

    def __init__(self, args, sources, family, lo, hi, deadline):
        self.args = args
        self.sources = sources
        self.family = family
        self.lo, self.hi = lo, hi
        self.deadline = deadline
        self.sel = selectors.DefaultSelector()
        self.sessions = []
        self.inflight = set()
        self.ok = 0
        self.failures = collections.Counter()
        self.ehlo = ("EHLO %s\r\n" % args.ehlo).encode()

    def fail(self, s, why):
        if s.state in PHASE:
            self.inflight.discard(s)
        elif s.state == IDLE:
            self.ok -= 1
        s.state = DEAD
        self.failures[why] += 1
        try:
            self.sel.unregister(s.sock)
        except (KeyError, ValueError):
            pass
        s.sock.close()

    def start_one(self, i):
        src = self.sources[i // self.args.per_source]
        try:
            sock = socket.socket(self.family, socket.SOCK_STREAM)
        except OSError as e:
            self.failures["socket:" + ename(e.errno)] += 1
            return
        sock.setblocking(False)
        s = Session(sock)
        self.sessions.append(s)
        self.inflight.add(s)
        try:
            if self.family == socket.AF_INET:
                # pick the source port at connect() time, per 4-tuple
                sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            sock.bind((src, 0))
            rc = sock.connect_ex((self.args.host, self.args.port))
        except OSError as e:
            self.fail(s, "connect:" + ename(e.errno))
            return
        if rc not in (0, errno.EINPROGRESS):
            self.fail(s, "connect:" + ename(rc))
            return
        self.sel.register(sock, selectors.EVENT_WRITE, s)

    def replies(self, s):
        """Complete reply lines read so far as (code, is_final); None if the session died."""
        try:
            data = s.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError as e:
            self.fail(s, "recv:" + ename(e.errno))
            return None
        if not data:
            self.fail(s, "eof_in_" + PHASE[s.state] if s.state in PHASE else "closed_while_idle")
            return None
        s.buf += data
        out = []
        while b"\n" in s.buf:
            line, s.buf = s.buf.split(b"\n", 1)
            line = line.rstrip(b"\r")
            out.append((line[:3].decode("ascii", "replace"), len(line) < 4 or line[3:4] != b"-"))
        if len(s.buf) > 65536:
            self.fail(s, "overlong_line")
            return None
        return out

    def on_event(self, s):
        if s.state == DEAD:
            return
        if s.state == CONNECTING:
            err = s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.fail(s, "connect:" + ename(err))
                return
            s.state = BANNER
            self.sel.modify(s.sock, selectors.EVENT_READ, s)
            return
        lines = self.replies(s)
        if lines is None:
            return
        for code, final in lines:
            if s.state == BANNER:
                if code != "220":
                    self.fail(s, "banner_" + code)
                    return
                if final:
                    try:
                        s.sock.send(self.ehlo)   # a few bytes, empty send buffer
                    except OSError as e:
                        self.fail(s, "send:" + ename(e.errno))
                        return
                    s.state = EHLO
            elif s.state == EHLO:
                if code != "250":
                    self.fail(s, "ehlo_" + code)
                    return
                if final:
                    s.state = IDLE
                    self.inflight.discard(s)
                    self.ok += 1
            else:
                # unsolicited reply while idle (e.g. "421 timeout"): session lost
                self.fail(s, "unsolicited_" + code)
                return

    def establish(self, progress):
        nxt = self.lo
        last_check = 0.0
        last_progress = time.monotonic()
        while nxt < self.hi or self.inflight:
            now = time.monotonic()
            if now > self.deadline:
                for s in list(self.inflight):
                    self.fail(s, "timeout_total_" + PHASE[s.state])
                self.failures["never_started"] += self.hi - nxt
                return
            while nxt < self.hi and len(self.inflight) < self.args.window:
                self.start_one(nxt)
                nxt += 1
            for key, _ in self.sel.select(timeout=0.2):
                self.on_event(key.data)
            now = time.monotonic()
            if now - last_check > 0.5:   # per-session handshake timeout
                last_check = now
                for s in list(self.inflight):
                    if now - s.started > self.args.session_timeout:
                        self.fail(s, "timeout_" + PHASE[s.state])
            if progress and now - last_progress > 5:
                last_progress = now
                log("progress: started=%d ok=%d failed=%d"
                    % (nxt - self.lo, self.ok, sum(self.failures.values())))

    def idle_until(self, ctrl_fd):
        """Watch idle sessions until ctrl_fd becomes readable (or EOF)."""
        self.sel.register(ctrl_fd, selectors.EVENT_READ, None)
        while True:
            for key, _ in self.sel.select(timeout=1.0):
                if key.data is None:
                    self.sel.unregister(ctrl_fd)
                    return
                self.on_event(key.data)

    def status(self):
        return {"ok": self.ok, "failures": dict(self.failures)}

    def close(self):
        for s in self.sessions:
            if s.state != DEAD:
                s.sock.close()


def worker_main(args, sources, family, lo, hi, deadline, ctrl_r, rep_w, progress):
    raise_nofile(hi - lo + FD_RESERVE)
    w = Worker(args, sources, family, lo, hi, deadline)
    w.establish(progress)
    os.write(rep_w, (json.dumps(w.status()) + "\n").encode())
    w.idle_until(ctrl_r)
    os.write(rep_w, (json.dumps(w.status()) + "\n").encode())
    w.close()


def read_line(fd, deadline):
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            return None
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        buf += chunk
    return json.loads(buf)


# ----------------------------------------------------------------- main ---

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1", help="server address (loopback)")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-k", "--sessions", type=int, default=20000)
    ap.add_argument("--pid", type=int, action="append", default=[],
                    help="server pid whose memory is sampled (repeatable; summed)")
    ap.add_argument("--children", action="store_true",
                    help="also sum all descendants of --pid (process-per-connection servers)")
    ap.add_argument("--source-base", default="127.0.0.2",
                    help="first loopback source address (default 127.0.0.2)")
    ap.add_argument("--per-source", type=int, default=10000,
                    help="sessions per source address (default 10000)")
    ap.add_argument("--procs", type=int, default=0,
                    help="client worker processes (default 0 = as few as the fd limit allows)")
    ap.add_argument("--ehlo", default="bench.test")
    ap.add_argument("--window", type=int, default=200,
                    help="max sessions per worker in connect/banner/EHLO phase (default 200)")
    ap.add_argument("--session-timeout", type=float, default=30.0,
                    help="seconds one session may take to get banner + EHLO reply")
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds all sessions stay idle before the second memory sample")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="bound on establishing all sessions, in seconds (default 120)")
    args = ap.parse_args()

    if min(args.sessions, args.per_source, args.window) <= 0 or args.procs < 0:
        ap.error("--sessions, --per-source, --window must be > 0, --procs >= 0")
    base = ipaddress.ip_address(args.source_base)
    dest = ipaddress.ip_address(args.host)
    if not (base.is_loopback and dest.is_loopback):
        ap.error("traffic stays on loopback: --host and --source-base must be loopback addresses")
    family = socket.AF_INET6 if base.version == 6 else socket.AF_INET
    if dest.version != base.version:
        ap.error("--host and --source-base must be of the same address family")
    nsrc = (args.sessions + args.per_source - 1) // args.per_source
    if family == socket.AF_INET6 and nsrc > 1:
        ap.error("IPv6 has one loopback address (::1): use --per-source >= --sessions")
    sources = [str(base + i) for i in range(nsrc)]
    if family == socket.AF_INET and ipaddress.ip_address(sources[-1]) not in ipaddress.ip_network("127.0.0.0/8"):
        ap.error("too many source addresses for 127.0.0.0/8")
    for pid in args.pid:
        if not os.path.exists("/proc/%d/status" % pid):
            ap.error("no process with pid %d" % pid)

    procs = args.procs
    if procs == 0:
        hard = nofile_hard()
        per_proc = args.sessions if hard is None else max(1, hard - FD_RESERVE)
        procs = (args.sessions + per_proc - 1) // per_proc
    procs = min(procs, args.sessions)

    def sample():
        pids = args.pid
        if args.children:
            pids = [p for pid in args.pid for p in descendants(pid)]
        return read_status(pids)

    rss_before, anon_before = sample()
    t_start = time.monotonic()
    deadline = t_start + args.timeout

    workers = []     # (pid, ctrl_w, rep_r)
    bounds = [args.sessions * i // procs for i in range(procs + 1)]
    for i in range(procs):
        ctrl_r, ctrl_w = os.pipe()
        rep_r, rep_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(ctrl_w)
                os.close(rep_r)
                for _, cw, rr in workers:     # siblings' pipe ends
                    os.close(cw)
                    os.close(rr)
                worker_main(args, sources, family, bounds[i], bounds[i + 1], deadline,
                            ctrl_r, rep_w, progress=(i == 0))
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 2
            except BaseException as e:   # report, never return into the parent's code
                log("worker %d: %r" % (i, e))
                code = 3
            os._exit(code)
        os.close(ctrl_r)
        os.close(rep_w)
        workers.append((pid, ctrl_w, rep_r))

    ready = []
    for pid, _, rep_r in workers:
        ready.append(read_line(rep_r, deadline + 30))
    establish_secs = time.monotonic() - t_start

    time.sleep(args.settle)
    rss_after, anon_after = sample()

    ok = 0
    failures = collections.Counter()
    worker_errors = 0
    for (pid, ctrl_w, rep_r), first in zip(workers, ready):
        final = None
        if first is not None:
            os.write(ctrl_w, b"report\n")
            final = read_line(rep_r, time.monotonic() + 30)
        os.close(ctrl_w)
        if final is None:
            worker_errors += 1
            final = first or {"ok": 0, "failures": {}}
        ok += final["ok"]
        failures.update(final["failures"])
    for pid, _, rep_r in workers:
        _, status = os.waitpid(pid, 0)
        os.close(rep_r)
        if os.waitstatus_to_exitcode(status) == 2:
            return 2
    failed = args.sessions - ok
    if worker_errors:
        failures["worker_lost"] += worker_errors

    def per_session(before, after):
        if before is None or ok == 0:
            return "nan"
        return "%.0f" % ((after - before) * 1024.0 / ok)

    def kib(v):
        return "nan" if v is None else v

    fields = [
        ("sessions", args.sessions), ("ok", ok), ("failed", failed),
        ("rss_before_kib", kib(rss_before)), ("rss_after_kib", kib(rss_after)),
        ("bytes_per_session", per_session(rss_before, rss_after)),
        ("rss_anon_before_kib", kib(anon_before)), ("rss_anon_after_kib", kib(anon_after)),
        ("anon_bytes_per_session", per_session(anon_before, anon_after)),
        ("sources", len(sources)), ("procs", procs),
        ("establish_secs", "%.2f" % establish_secs),
    ]
    print("idle_sessions " + " ".join("%s=%s" % kv for kv in fields), flush=True)
    if failures:
        print("idle_sessions_failures " + " ".join(
            "%s=%d" % kv for kv in sorted(failures.items())), flush=True)
    if not args.pid:
        log("no --pid given: server memory not sampled")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
