#!/usr/bin/python3
"""scan_time.py -- run one command, print its wall and CPU time.

Usage: scan_time.py [--timeout S] [--stdin FILE] [--stdout FILE] -- CMD ARG...

Prints one line:  wall_s=... user_s=... sys_s=... cpu_s=... rc=...
user/sys come from wait4() on the command, so they include every descendant
it waited for (taskset, xargs and the like exec or wait).  On timeout the
command's process group is killed and rc=timeout is printed (exit status 124).
"""
import argparse
import os
import signal
import subprocess
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--stdin")
    ap.add_argument("--stdout")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("no command")
    fin = open(a.stdin, "rb") if a.stdin else subprocess.DEVNULL
    fout = open(a.stdout, "wb") if a.stdout else subprocess.DEVNULL
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=fin, stdout=fout, start_new_session=True)
    deadline = t0 + a.timeout
    status = ru = None
    while True:
        pid, status, ru = os.wait4(p.pid, os.WNOHANG)
        if pid == p.pid:
            break
        if time.monotonic() > deadline:
            os.killpg(p.pid, signal.SIGKILL)
            pid, status, ru = os.wait4(p.pid, 0)
            status = None
            break
        time.sleep(0.002)
    wall = time.monotonic() - t0
    p.returncode = 0  # reaped by hand above; keep Popen from waiting again
    rc = "timeout" if status is None else str(os.waitstatus_to_exitcode(status))
    print(f"wall_s={wall:.4f} user_s={ru.ru_utime:.4f} sys_s={ru.ru_stime:.4f} "
          f"cpu_s={ru.ru_utime + ru.ru_stime:.4f} rc={rc}")
    sys.exit(124 if status is None else 0)


if __name__ == "__main__":
    main()
