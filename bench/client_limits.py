#!/usr/bin/python3
"""What one client address gets through in a fixed time: messages accepted
(250 after DATA) and connections greeted (220), with the engine's default
per-client limits and with them off, in the same run.

  /usr/bin/python3 bench/client_limits.py [--seconds 30] [--threads 16]

MXGUARDD_BIN / MXGUARD_BIN choose the binaries (default: build/). Every
sender stops at the deadline; a run is bounded in time and count."""
import argparse
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
import mxg  # noqa: E402

MESSAGE = b"From: a@c.example\r\nTo: u@example.com\r\nSubject: rate\r\n\r\nbody\r\n.\r\n"


def reply(s, buf):
    while True:
        while b"\r\n" not in buf[0]:
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError
            buf[0] += chunk
        line, buf[0] = buf[0].split(b"\r\n", 1)
        if line[3:4] != b"-":
            return int(line[:3])


def sender(port, deadline, reuse, counts, lock, cap):
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.77", 0)) as s:
                buf = [b""]
                if reply(s, buf) != 220:
                    with lock:
                        counts["refused_connections"] += 1
                    continue
                with lock:
                    counts["connections"] += 1
                s.sendall(b"EHLO bench.example\r\n")
                reply(s, buf)
                while time.monotonic() < deadline:
                    with lock:
                        if counts["messages"] >= cap:
                            return
                    s.sendall(b"MAIL FROM:<a@c.example>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n")
                    codes = [reply(s, buf), reply(s, buf), reply(s, buf)]
                    if codes[2] != 354:
                        with lock:
                            counts["refused_messages"] += 1
                        s.sendall(b"RSET\r\n")
                        reply(s, buf)
                        if not reuse:
                            break
                        continue
                    s.sendall(MESSAGE)
                    if reply(s, buf) == 250:
                        with lock:
                            counts["messages"] += 1
                    if not reuse:
                        break
                s.sendall(b"QUIT\r\n")
        except (OSError, EOFError):
            with lock:
                counts["errors"] += 1


def run(smtp_extra, seconds, threads, reuse):
    d = mxg.Daemon(smtp_extra=smtp_extra + "max_connections_per_ip = 100000\n", shards=2).start()
    try:
        counts = dict(messages=0, connections=0, refused_connections=0, refused_messages=0, errors=0)
        lock = threading.Lock()
        deadline = time.monotonic() + seconds
        ts = [threading.Thread(target=sender, args=(d.port, deadline, reuse, counts, lock, 1_000_000))
              for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(seconds + 30)
        return counts
    finally:
        d.stop()
        d.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--threads", type=int, default=16)
    a = ap.parse_args()
    for reuse in (False, True):
        mode = "reused sessions" if reuse else "one message per connection"
        off = run("max_connection_rate = 0\nmax_message_rate = 0\n", a.seconds, a.threads, reuse)
        on = run("max_connection_rate = 120\nmax_message_rate = 600\n", a.seconds, a.threads, reuse)
        for name, c in (("limits off", off), ("defaults (120 conn/min, 600 msg/min)", on)):
            print("%s, %s: %d messages and %d connections from one address in %.0f s "
                  "(%d connections and %d messages refused, %d errors)"
                  % (mode, name, c["messages"], c["connections"], a.seconds, c["refused_connections"],
                     c["refused_messages"], c["errors"]))


if __name__ == "__main__":
    main()
