#!/usr/bin/python3
"""scan_sa.py -- classify messages with SpamAssassin through spamc/spamd.

Usage:
  scan_sa.py site DIR BAYES_PATH
  scan_sa.py start DIR [--jobs N] [--cpu LIST] [--timeout S]
  scan_sa.py stop DIR
  scan_sa.py check --socket SOCK [--jobs N] [--timeout S] [--fold K]
                   [--class ham|spam] [--spamd-pidfile F] [--stats FILE]
                   (FILE... | --list LISTFILE...)

site writes a SpamAssassin site config dir DIR/site: the Debian plugin loads
(/etc/spamassassin/*.pre, 65_debian.cf) plus a local.cf with Bayes on at
BAYES_PATH, no auto-learning, no auto-expiry and no network tests.

start runs spamd in the background: local tests only (-L), no user configs
(-x), N children (default 1) that are never recycled, listening on the unix
socket DIR/spamd.sock, pid in DIR/spamd.pid, log DIR/spamd.log, children as
user nobody (spamd refuses to run them as root), optionally pinned with
taskset -c LIST.  spamd is bounded by `timeout S` (default 3600).  It returns
when spamd answers a PING (spamc -K).  stop sends SIGTERM and waits.

check: for every message it runs `spamc -U SOCK -R -t S < message` (the report mode:
first line "score/threshold", then the rules that hit) and prints one
tab-separated result line, the format scan_report.py reads:

    fold  class  file  score  verdict  reasons

verdict is "flagged" when the score reaches spamd's threshold (5.0 by
default), "clean" below it and "error" when spamc failed or timed out (the
score is then "nan").  reasons lists the rules that hit, "RULE:score,...".

--jobs N runs N spamc clients at once (spamd should have N children).
--stats FILE writes key=value lines after the run: n, bytes, wall_s,
client_cpu_s (user+sys of all spamc processes) and, with --spamd-pidfile,
spamd_cpu_s: user+sys consumed meanwhile by the spamd parent and all its
children (read from /proc before and after; children must not be recycled
during the run, start spamd with a large --max-conn-per-child).
"""
import argparse
import concurrent.futures
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time

RULE_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s")
CLK = os.sysconf("SC_CLK_TCK")


def spamd_cpu(pidfile):
    """user+sys seconds of the spamd parent (incl. reaped children) and its
    live children."""
    parent = read_pid(pidfile)
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        ppid = int(fields[1])
        utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
        if int(pid) == parent:
            total += utime + stime + cutime + cstime
        elif ppid == parent:
            total += utime + stime
    return total / CLK


def cmd_site(a):
    site = os.path.join(a.dir, "site")
    os.makedirs(site, exist_ok=True)
    for name in sorted(os.listdir("/etc/spamassassin")):
        if name.endswith(".pre") or name == "65_debian.cf":
            shutil.copy(os.path.join("/etc/spamassassin", name), site)
    with open(os.path.join(site, "local.cf"), "w") as f:
        f.write(f"""# written by bench/scan_sa.py
required_score 5.0
use_bayes 1
bayes_auto_learn 0
bayes_auto_expire 0
bayes_path {a.bayes_path}
bayes_file_mode 0666
dns_available no
skip_rbl_checks 1
""")


def cmd_start(a):
    d = os.path.abspath(a.dir)
    sock, pidfile = os.path.join(d, "spamd.sock"), os.path.join(d, "spamd.pid")
    for p in (sock, pidfile):
        if os.path.exists(p):
            os.unlink(p)
    cmd = ["timeout", str(a.timeout), "spamd", "-L", "-x", "-u", "nobody",
           "-m", str(a.jobs), f"--min-children={a.jobs}", "--min-spare=1",
           f"--max-spare={a.jobs}", "--max-conn-per-child=1000000",
           f"--socketpath={sock}", "--socketmode=0666",
           f"--siteconfigpath={os.path.join(d, 'site')}",
           "-s", os.path.join(d, "spamd.log"), f"--pidfile={pidfile}"]
    if a.cpu:
        cmd = ["taskset", "-c", a.cpu] + cmd
    subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=open(os.path.join(d, "spamd.err"), "ab"), start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if os.path.exists(sock) and os.path.exists(pidfile):
            p = subprocess.run(["spamc", "-U", sock, "-K"], capture_output=True, timeout=30)
            if p.returncode == 0 and p.stdout.startswith(b"SPAMD/"):
                # wait until all children are forked, so none starts during a timed run
                kids = 0
                for _ in range(300):
                    kids = len(children(read_pid(pidfile)))
                    if kids >= a.jobs:
                        break
                    time.sleep(0.1)
                print(f"spamd ready: pid {read_pid(pidfile)}, {kids} children")
                return
        time.sleep(0.5)
    sys.exit(f"scan_sa.py: spamd did not answer on {sock} within 300 s; see {d}/spamd.log and spamd.err")


def cmd_stop(a):
    """SIGTERM to the spamd parent; wait (20 s at most) until it and its
    children are gone, then SIGKILL what is left."""
    pidfile = os.path.join(a.dir, "spamd.pid")
    try:
        pid = read_pid(pidfile)
    except (OSError, ValueError, IndexError):
        return
    procs = [pid] + children(pid)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(200):
        if not any(os.path.exists(f"/proc/{p}") for p in procs):
            return
        time.sleep(0.1)
    for p in procs:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def read_pid(pidfile):
    with open(pidfile) as f:
        return int(f.read().split()[0])


def children(parent):
    kids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            if int(st[st.rindex(")") + 2:].split()[1]) == parent:
                kids.append(int(pid))
    return kids


def check_one(sock, path, timeout):
    try:
        with open(path, "rb") as msg:
            p = subprocess.run(["spamc", "-U", sock, "-R", "-t", str(timeout), "-x"],
                               stdin=msg, capture_output=True, timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        return "nan", "error", "timeout"
    out = p.stdout.decode("utf-8", "replace").splitlines()
    if not out or "/" not in out[0]:
        err = p.stderr.decode("utf-8", "replace").strip().replace("\t", " ")
        return "nan", "error", f"spamc rc={p.returncode} {err[:120]}"
    try:
        score, thresh = (float(x) for x in out[0].split("/", 1))
    except ValueError:
        return "nan", "error", f"unparsable {out[0][:60]!r}"
    rules = []
    in_table = False
    for line in out[1:]:
        if line.startswith("---- "):
            in_table = True
            continue
        if in_table:
            m = RULE_RE.match(line)
            if m:
                rules.append(f"{m.group(2)}:{m.group(1)}")
    verdict = "flagged" if score >= thresh else "clean"
    return f"{score:.1f}", verdict, ",".join(rules)


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("site", "start", "stop"):
        ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        ap.add_argument("mode")
        ap.add_argument("dir")
        if sys.argv[1] == "site":
            ap.add_argument("bayes_path")
        if sys.argv[1] == "start":
            ap.add_argument("--jobs", type=int, default=1)
            ap.add_argument("--cpu")
            ap.add_argument("--timeout", type=int, default=3600)
        a = ap.parse_args()
        {"site": cmd_site, "start": cmd_start, "stop": cmd_stop}[a.mode](a)
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["check"])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=120)
    ap.add_argument("--fold", default="-")
    ap.add_argument("--class", dest="cls", default="-")
    ap.add_argument("--list", action="append", default=[])
    ap.add_argument("--stats")
    ap.add_argument("--spamd-pidfile")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()

    files = list(a.files)
    for lf in a.list:
        with open(lf) as f:
            files.extend(l.rstrip("\n") for l in f if l.strip())
    nbytes = sum(os.path.getsize(p) for p in files)

    cpu0 = spamd_cpu(a.spamd_pidfile) if a.spamd_pidfile else None
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, a.jobs)) as ex:
        results = ex.map(lambda p: (p, check_one(a.socket, p, a.timeout)), files)
        for path, (score, verdict, reasons) in results:
            cls = a.cls
            if cls == "-":
                cls = os.path.basename(os.path.dirname(path))
            print(f"{a.fold}\t{cls}\t{path}\t{score}\t{verdict}\t{reasons}", flush=True)
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu1 = spamd_cpu(a.spamd_pidfile) if a.spamd_pidfile else None
    if a.stats:
        with open(a.stats, "w") as f:
            f.write(f"n={len(files)}\nbytes={nbytes}\nwall_s={wall:.3f}\n")
            f.write("client_cpu_s=%.3f\n" % ((ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)))
            if cpu0 is not None:
                f.write(f"spamd_cpu_s={cpu1 - cpu0:.3f}\n")


if __name__ == "__main__":
    main()
