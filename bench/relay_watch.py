#!/usr/bin/python3
"""relay_watch.py -- follow the counters of smtp-source -c and smtp-sink -c.

Used by relay_rate.sh while one relay run is in progress.  Both programs
write one record per event to their stdout and flush it at once:

  smtp-source -c   "<messages accepted so far>\\r"   (after each 250 to ".")
  smtp-sink -c     "sess=S quit=Q mesg=M\\r"         (mesg = "." received)

Every --interval seconds (default 0.01) the last complete record of each
file is read (a seek to the end; no process is started), and a line
"<unix time> <accepted> <delivered>" is appended to --timeline whenever one
of the two numbers changed.  accepted - delivered is the backlog inside the
server under test (queued or in delivery, not yet at the sink).

The watch ends
  * --settle seconds after delivered reached --n (so that a message that
    arrives twice is still counted: the caller checks delivered == N),
  * or when neither counter moved for --stall seconds (a message stuck in a
    queue, or the load generator died),
  * or after --timeout seconds in all.
It then prints one line:

  relay_watch end=reached|stalled|timeout accepted=A delivered=D
      first_t=<time of the first accepted message> last_t=<time delivered
      last changed> reached_t=<time delivered first reached N, or nan>
"""

import argparse
import os
import sys
import time


def last_record(path, tail=96):
    """The last complete (\\r-terminated) record of the file, or ""."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - tail))
            data = f.read()
    except OSError:
        return ""
    parts = data.split(b"\r")
    # the part after the last \r is an unfinished record (or empty)
    if len(parts) < 2:
        return ""
    return parts[-2].decode("ascii", "replace").strip()


def source_count(path):
    rec = last_record(path)
    return int(rec) if rec.isdigit() else 0


def sink_count(path):
    for field in last_record(path).split():
        if field.startswith("mesg="):
            value = field[5:]
            return int(value) if value.isdigit() else 0
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", required=True, help="stdout file of smtp-source -c")
    ap.add_argument("--sink", required=True, help="stdout file of smtp-sink -c")
    ap.add_argument("--n", type=int, required=True, help="messages expected at the sink")
    ap.add_argument("--timeline", required=True, help="output: 'time accepted delivered' per change")
    ap.add_argument("--interval", type=float, default=0.01)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--stall", type=float, default=30.0)
    ap.add_argument("--timeout", type=float, default=900.0)
    a = ap.parse_args()

    start = time.time()
    accepted = delivered = 0
    first_t = last_t = reached_t = None
    moved_t = start
    end = "timeout"
    with open(a.timeline, "w") as out:
        while True:
            now = time.time()
            acc = source_count(a.source)
            dlv = sink_count(a.sink)
            if acc != accepted or dlv != delivered:
                if acc > 0 and first_t is None:
                    first_t = now
                if dlv != delivered:
                    last_t = now
                accepted, delivered = acc, dlv
                moved_t = now
                out.write(f"{now:.4f} {acc} {dlv}\n")
            if reached_t is None and delivered >= a.n:
                reached_t = now
            if reached_t is not None and now - reached_t >= a.settle:
                end = "reached"
                break
            if now - moved_t >= a.stall:
                end = "stalled"
                break
            if now - start >= a.timeout:
                break
            time.sleep(a.interval)

    def fmt(t):
        return "nan" if t is None else f"{t:.4f}"

    print(f"relay_watch end={end} accepted={accepted} delivered={delivered} "
          f"first_t={fmt(first_t)} last_t={fmt(last_t)} reached_t={fmt(reached_t)}")
    return 0 if end == "reached" and delivered == a.n else 1


if __name__ == "__main__":
    sys.exit(main())
