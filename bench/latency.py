#!/usr/bin/python3
"""latency.py -- end-of-DATA to 250 latency under a paced load.

--sessions persistent SMTP sessions (EHLO once, then MAIL / RCPT / DATA /
body / "." in a loop) send messages at --rate messages per second in total
(0 = as fast as the sessions can) for --seconds.  For each message the time
from writing the final ".\\r\\n" to reading the complete 250 reply is
recorded; messages sent during the first --warmup seconds are not
counted.

  latency rate=<achieved msgs/s> target_rate=R sessions=M size=S n=..
      p50_ms=.. p90_ms=.. p99_ms=.. p999_ms=.. max_ms=.. mean_ms=.. errors=.. late=..

Message i is due at start + i/R (one global schedule).  "late" counts
measured messages whose transaction started more than 10 ms after their
slot because every session was busy: the server (or this client) did not
keep up with the target rate, and the latency figures then understate what
an open-loop client would see.

The client is Python: spread it over --procs processes (each takes its share
of sessions and of the schedule) when one CPU is not enough; check "late".
MAIL/RCPT/DATA are sent as one PIPELINING group when the server advertises
it (--pipelining auto); the measured interval is the same either way.
Exit status 0 if every message got its 250 and at least one was measured.
"""

import argparse
import array
import asyncio
import email.utils
import ipaddress
import json
import os
import socket
import struct
import sys
import time


class ReplyError(Exception):
    pass


class SmtpProtocol(asyncio.Protocol):
    """Splits the byte stream into SMTP replies and hands them to a waiter."""

    def __init__(self):
        self.transport = None
        self.buf = b""
        self.lines = []          # lines of the reply being read
        self.replies = []        # complete replies (code, lines) not yet consumed
        self.waiter = None
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        start = 0
        while True:
            i = buf.find(b"\n", start)
            if i < 0:
                break
            line = buf[start:i].rstrip(b"\r")
            start = i + 1
            self.lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                self.replies.append((line[:3], self.lines))
                self.lines = []
        self.buf = buf[start:]
        if len(self.buf) > 65536:
            self.transport.close()
            return
        if self.replies and self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc):
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def reply(self, timeout):
        """Next complete reply as (code bytes, [lines])."""
        while not self.replies:
            if self.closed:
                raise ReplyError("connection closed by server")
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self.waiter, timeout)
            except asyncio.TimeoutError:
                raise ReplyError("reply timeout") from None
            finally:
                self.waiter = None
        return self.replies.pop(0)


class Schedule:
    """Send slots of one process: the global schedule is slot j at
    start + j/rate; process `offset` of `stride` owns j = offset, offset+stride, ..."""

    def __init__(self, rate, start, end, max_messages, stride=1, offset=0):
        self.rate = rate
        self.start = start
        self.end = end
        self.max_messages = max_messages
        self.stride = stride
        self.offset = offset
        self.issued = 0

    def next_slot(self, now):
        if self.max_messages and self.issued >= self.max_messages:
            return None
        if self.rate > 0:
            slot = self.start + (self.issued * self.stride + self.offset) / self.rate
        else:
            slot = now
        if slot >= self.end or now >= self.end:
            return None
        self.issued += 1
        return slot


def expect(code, reply, what):
    if reply[0] != code:
        text = b" / ".join(reply[1]).decode("utf-8", "replace")
        raise ReplyError("%s: expected %s, got %s" % (what, code.decode(), text))


def build_body(size):
    """size bytes of numbered 78-character CRLF lines (like smtp-source)."""
    out = bytearray()
    n = 0
    while len(out) < size:
        n += 1
        num = b"%d" % n
        out += num + b"X" * (76 - len(num)) + b"\r\n"
    out = bytes(out[:size])
    if not out.endswith(b"\r\n"):
        out = out[:-2] + b"\r\n"
    return out


class Stats:
    def __init__(self, max_errors, sched):
        self.lat = array.array("d")
        self.errors = {}
        self.seen = set()
        self.late = 0
        self.max_errors = max_errors
        self.sched = sched

    def error(self, what, detail=""):
        """Count an error; print each distinct message once; stop the whole
        run once more than max_errors errors happened."""
        key = what.split(":")[0].replace(" ", "_")
        self.errors[key] = self.errors.get(key, 0) + 1
        msg = (what + " " + detail).strip()
        if msg not in self.seen and len(self.seen) < 20:
            self.seen.add(msg)
            sys.stderr.write("latency: %s\n" % msg)
        if sum(self.errors.values()) > self.max_errors and self.sched.end > 0:
            sys.stderr.write("latency: more than %d errors, stopping\n" % self.max_errors)
            self.sched.end = 0     # no further slots are handed out


class DateCache:
    """RFC 5322 Date header value, recomputed once per second."""

    def __init__(self):
        self.sec = -1
        self.value = ""

    def get(self):
        now = int(time.time())
        if now != self.sec:
            self.sec = now
            self.value = email.utils.formatdate(now)
        return self.value


async def session(idx, args, sched, stats, body, measure_from, deadline_hard, dates):
    loop = asyncio.get_running_loop()
    perf = time.perf_counter
    msg_no = 0
    tmo = args.reply_timeout
    mail = b"MAIL FROM:<%s>\r\n" % args.sender.encode()
    rcpt = b"RCPT TO:<%s>\r\n" % args.rcpt.encode()
    group = mail + rcpt + b"DATA\r\n"
    hdr_fmt = ("From: <%s>\r\nTo: <%s>\r\nDate: %%s\r\nMessage-ID: <%%d.%d.%d.%d@%s>\r\n"
               "Subject: latency probe\r\n\r\n"
               % (args.sender, args.rcpt, os.getpid(), idx, int(sched.start), args.ehlo))
    while True:
        now = loop.time()
        if now >= sched.end or (sched.max_messages and sched.issued >= sched.max_messages):
            return
        try:
            transport, proto = await asyncio.wait_for(
                loop.create_connection(SmtpProtocol, args.host, args.port), tmo)
        except (OSError, asyncio.TimeoutError) as e:
            stats.error("connect", str(e))
            await asyncio.sleep(0.5)
            continue
        try:
            expect(b"220", await proto.reply(tmo), "banner")
            transport.write(b"EHLO %s\r\n" % args.ehlo.encode())
            r = await proto.reply(tmo)
            expect(b"250", r, "EHLO")
            advertised = any(l[4:].upper().startswith(b"PIPELINING") for l in r[1])
            pipelining = args.pipelining == "on" or (args.pipelining == "auto" and advertised)
            while True:
                now = loop.time()
                slot = sched.next_slot(now)
                if slot is None:
                    break
                if slot > now:
                    await asyncio.sleep(slot - now)
                    now = loop.time()
                # counted by when it is really sent: behind an overloaded
                # server the schedule's slots lag far behind the clock
                counted = now >= measure_from
                if counted and now - slot > 0.010:
                    stats.late += 1
                msg_no += 1
                if pipelining:
                    transport.write(group)
                    expect(b"250", await proto.reply(tmo), "MAIL")
                    expect(b"250", await proto.reply(tmo), "RCPT")
                    expect(b"354", await proto.reply(tmo), "DATA")
                else:
                    transport.write(mail)
                    expect(b"250", await proto.reply(tmo), "MAIL")
                    transport.write(rcpt)
                    expect(b"250", await proto.reply(tmo), "RCPT")
                    transport.write(b"DATA\r\n")
                    expect(b"354", await proto.reply(tmo), "DATA")
                transport.write((hdr_fmt % (dates.get(), msg_no)).encode() + body)
                t0 = perf()
                transport.write(b".\r\n")
                r = await proto.reply(tmo)
                t1 = perf()
                expect(b"250", r, "end of DATA")
                if counted:
                    stats.lat.append(t1 - t0)
            transport.write(b"QUIT\r\n")
            try:
                await proto.reply(min(tmo, 5))
            except ReplyError:
                pass
            transport.close()
            return
        except ReplyError as e:
            stats.error(str(e))
            transport.abort()
            if loop.time() >= deadline_hard:
                return
            await asyncio.sleep(0.2)


async def run(args, sessions, start, stride, offset, max_messages):
    """One process's share of the load; start is a time.monotonic() value."""
    loop = asyncio.get_running_loop()      # loop.time() is time.monotonic()
    body = build_body(args.size)
    end = start + args.seconds
    sched = Schedule(args.rate, start, end, max_messages, stride, offset)
    stats = Stats(args.max_errors, sched)
    measure_from = start + args.warmup
    hard = end + args.reply_timeout + 10
    dates = DateCache()
    tasks = [asyncio.create_task(session(i, args, sched, stats, body, measure_from, hard, dates))
             for i in range(sessions)]
    done, pending = await asyncio.wait(tasks, timeout=max(1.0, hard - loop.time()))
    for t in pending:
        t.cancel()
        stats.error("hard_timeout")
    for t in done:
        if t.exception() is not None:
            stats.error("exception", repr(t.exception()))
    stopped_early = sched.end == 0
    return {"lat": stats.lat, "errors": stats.errors, "late": stats.late,
            "issued": sched.issued, "stopped_early": stopped_early}


def pct(sorted_vals, p):
    """Nearest-rank percentile."""
    if not sorted_vals:
        return float("nan")
    k = max(0, min(len(sorted_vals) - 1, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def encode_result(res):
    head = json.dumps({k: v for k, v in res.items() if k != "lat"}).encode()
    return struct.pack("!II", len(head), len(res["lat"])) + head + res["lat"].tobytes()


def decode_result(data):
    if len(data) < 8:
        return None
    hlen, nlat = struct.unpack("!II", data[:8])
    res = json.loads(data[8:8 + hlen])
    lat = array.array("d")
    lat.frombytes(data[8 + hlen:8 + hlen + 8 * nlat])
    res["lat"] = lat
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--sessions", type=int, default=50, help="concurrent sessions (default 50)")
    ap.add_argument("--rate", type=float, default=100.0,
                    help="target messages/s over all sessions; 0 = unpaced (default 100)")
    ap.add_argument("--seconds", type=float, default=20.0, help="load duration (default 20)")
    ap.add_argument("--warmup", type=float, default=1.0,
                    help="seconds at the start not counted (default 1)")
    ap.add_argument("--max-messages", type=int, default=1000000,
                    help="bound on messages sent (default 1000000; 0 = none)")
    ap.add_argument("--size", type=int, default=4096, help="body bytes per message (default 4096)")
    ap.add_argument("--sender", default="sender@client.bench.test")
    ap.add_argument("--rcpt", default="user@bench.test")
    ap.add_argument("--ehlo", default="client.bench.test")
    ap.add_argument("--pipelining", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--procs", type=int, default=1,
                    help="client processes sharing sessions and schedule (default 1)")
    ap.add_argument("--reply-timeout", type=float, default=30.0)
    ap.add_argument("--max-errors", type=int, default=20,
                    help="stop (each process) after this many errors (default 20)")
    args = ap.parse_args()
    if args.sessions <= 0 or args.seconds <= 0 or args.rate < 0 or args.size < 2:
        ap.error("--sessions and --seconds must be > 0, --rate >= 0, --size >= 2")
    if args.procs < 1 or args.procs > args.sessions:
        ap.error("--procs must be between 1 and --sessions")
    if args.warmup >= args.seconds:
        args.warmup = 0.0
    if not ipaddress.ip_address(args.host).is_loopback:
        ap.error("traffic stays on loopback: --host must be a loopback address")

    procs = args.procs
    start = time.monotonic() + 0.3
    shares = [args.sessions * (i + 1) // procs - args.sessions * i // procs for i in range(procs)]
    maxm = [(args.max_messages * (i + 1) // procs - args.max_messages * i // procs)
            if args.max_messages else 0 for i in range(procs)]
    results = []
    if procs == 1:
        results.append(asyncio.run(run(args, shares[0], start, 1, 0, maxm[0])))
    else:
        children = []
        for i in range(procs):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    os.close(r)
                    for _, rr in children:
                        os.close(rr)
                    res = asyncio.run(run(args, shares[i], start, procs, i, maxm[i]))
                    data = encode_result(res)
                    view = memoryview(data)
                    while view:
                        view = view[os.write(w, view):]
                except BaseException as e:   # never return into the parent's code
                    sys.stderr.write("latency: worker %d: %r\n" % (i, e))
                    code = 3
                os._exit(code)
            os.close(w)
            children.append((pid, r))
        for pid, r in children:
            chunks = []
            while True:
                chunk = os.read(r, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
            os.close(r)
            os.waitpid(pid, 0)
            res = decode_result(b"".join(chunks))
            if res is None:
                res = {"lat": array.array("d"), "errors": {"worker_lost": 1}, "late": 0,
                       "issued": 0, "stopped_early": True}
            results.append(res)

    lat = sorted(v for res in results for v in res["lat"])
    errors = {}
    for res in results:
        for k, v in res["errors"].items():
            errors[k] = errors.get(k, 0) + v
    late = sum(res["late"] for res in results)
    stopped_early = any(res["stopped_early"] for res in results)
    measured_secs = args.seconds - args.warmup
    ms = lambda v: "%.3f" % (v * 1000.0)
    n = len(lat)
    nerr = sum(errors.values())
    fields = [
        ("rate", "nan" if stopped_early else "%.1f" % (n / measured_secs)),
        ("target_rate", "%g" % args.rate),
        ("sessions", args.sessions), ("size", args.size), ("n", n),
        ("p50_ms", ms(pct(lat, 50))), ("p90_ms", ms(pct(lat, 90))),
        ("p99_ms", ms(pct(lat, 99))), ("p999_ms", ms(pct(lat, 99.9))),
        ("max_ms", ms(lat[-1] if lat else float("nan"))),
        ("mean_ms", ms(sum(lat) / n if n else float("nan"))),
        ("errors", nerr), ("late", late), ("procs", procs),
    ]
    print("latency " + " ".join("%s=%s" % kv for kv in fields), flush=True)
    if n == 0 and nerr == 0:
        sys.stderr.write("latency: nothing measured: every message fell into --warmup "
                         "(raise --seconds or --max-messages)\n")
    if errors:
        print("latency_errors " + " ".join("%s=%d" % kv for kv in sorted(errors.items())),
              flush=True)
    return 0 if nerr == 0 and n > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
