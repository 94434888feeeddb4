#!/usr/bin/python3
"""scan_report.py -- result normalisation and the accuracy table.

Every system's verdicts end up in one tab-separated format, one message a line:

    fold  class  file  score  verdict  reasons

class is ham or spam (the corpus directory the file is in), verdict one of
flagged / unsure / clean / error.

Subcommands:
  mxguard  --fold K --expect LIST... < scan.jsonl   `mxguard scan --json` lines
           action quarantine/reject = flagged, greylist = unsure, deliver = clean
  bogofilter --fold K --expect LIST... < out        `bogofilter -T -v -b` lines
           "file S|H|U spamicity": S = flagged, U = unsure, H = clean
  table    [--times FILE] RESULTS.tsv...           per-fold and total table
  worst    [-n N] RESULTS.tsv                       misclassified messages,
           spam missed (lowest score first) and ham flagged (highest first)
  speed    SPEED.txt                                the scan-speed.sh table: per
           system the median over repetitions of msgs/s, MB/s (10^6 bytes) and
           msgs per CPU-second, and the mxguard ratios

--expect names the list files of the messages that were scanned; a message
with no output line is reported as verdict "error", so a crash or a skipped
file cannot make a system look better.
"""
import argparse
import collections
import json
import math
import os
import sys


def cls_of(path):
    c = os.path.basename(os.path.dirname(path))
    return c if c in ("ham", "spam") else "?"


def read_expect(lists):
    files = []
    for lf in lists:
        with open(lf) as f:
            files.extend(l.rstrip("\n") for l in f if l.strip())
    return files


def emit(fold, expect, got):
    """got: path -> (score, verdict, reasons)."""
    seen = set()
    for path in expect:
        seen.add(path)
        score, verdict, reasons = got.get(path, ("nan", "error", "no output for this file"))
        print(f"{fold}\t{cls_of(path)}\t{path}\t{score}\t{verdict}\t{reasons}")
    for path in sorted(set(got) - seen):
        print(f"scan_report.py: output for a file that was not asked for: {path}", file=sys.stderr)


def cmd_mxguard(a):
    got = {}
    bad = 0
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            j = json.loads(line)
            path, score, action = j["file"], float(j["score"]), j["action"]
        except (ValueError, KeyError, TypeError):
            bad += 1
            continue
        verdict = {"quarantine": "flagged", "reject": "flagged",
                   "greylist": "unsure", "deliver": "clean"}.get(action, "error")
        reasons = ",".join(f"{r.get('rule')}:{r.get('score'):+g}" for r in j.get("reasons", [])
                           if isinstance(r, dict) and isinstance(r.get("score"), (int, float)))
        got[path] = (f"{score:.2f}", verdict, f"action={action} {reasons}".strip())
    if bad:
        print(f"scan_report.py: {bad} unparsable line(s) in mxguard output", file=sys.stderr)
    emit(a.fold, read_expect(a.expect), got)


def cmd_bogofilter(a):
    got = {}
    for line in sys.stdin:
        parts = line.rstrip("\n").rsplit(" ", 2)
        if len(parts) != 3 or parts[1] not in ("S", "H", "U"):
            if line.strip():
                print(f"scan_report.py: unexpected bogofilter line: {line.strip()[:100]}", file=sys.stderr)
            continue
        path, letter, p = parts
        verdict = {"S": "flagged", "U": "unsure", "H": "clean"}[letter]
        got[path] = (p, verdict, f"bogosity={letter}")
    emit(a.fold, read_expect(a.expect), got)


def load(paths):
    rows = []
    for p in paths:
        system = os.path.basename(p)
        if system.startswith("results-"):
            system = system[len("results-"):]
        system = system.rsplit(".", 1)[0]
        with open(p) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 5:
                    continue
                fold, cls, path, score, verdict = parts[:5]
                reasons = parts[5] if len(parts) > 5 else ""
                rows.append((system, fold, cls, path, score, verdict, reasons))
    return rows


def pct(n, d):
    return 100.0 * n / d if d else math.nan


def cmd_table(a):
    rows = load(a.results)
    times = {}
    if a.times and os.path.exists(a.times):
        with open(a.times) as f:
            for line in f:
                kv = dict(x.split("=", 1) for x in line.split() if "=" in x)
                if "system" in kv and "wall_s" in kv:
                    times[kv["system"]] = times.get(kv["system"], 0.0) + float(kv["wall_s"])
    systems = []
    for r in rows:
        if r[0] not in systems:
            systems.append(r[0])
    # stats[system][fold][cls] = Counter(verdict)
    stats = collections.defaultdict(lambda: collections.defaultdict(lambda: collections.defaultdict(collections.Counter)))
    for system, fold, cls, _path, _score, verdict, _r in rows:
        stats[system][fold][cls][verdict] += 1

    print("Per fold (spam caught = flagged spam / spam tested; ham flagged = flagged ham / ham tested)")
    hdr = f"{'system':<13} {'fold':>4} {'spam caught':>20} {'ham flagged':>18} {'unsure s/h':>11} {'errors':>6}"
    print(hdr)
    print("-" * len(hdr))
    for s in systems:
        for fold in sorted(stats[s], key=lambda x: (len(x), x)):
            sp, hm = stats[s][fold]["spam"], stats[s][fold]["ham"]
            ns, nh = sum(sp.values()), sum(hm.values())
            print(f"{s:<13} {fold:>4} {sp['flagged']:>5}/{ns:<5} {pct(sp['flagged'], ns):7.2f}% "
                  f"{hm['flagged']:>4}/{nh:<5} {pct(hm['flagged'], nh):6.2f}% "
                  f"{sp['unsure']:>5}/{hm['unsure']:<5} {sp['error'] + hm['error']:>6}")
    print()
    print("Total over all folds")
    hdr = (f"{'system':<13} {'spam caught':>20} {'per-fold min-max':>16} {'ham flagged':>18} "
           f"{'per-fold min-max':>16} {'unsure s/h':>11} {'errors':>6} {'run time':>9}")
    print(hdr)
    print("-" * len(hdr))
    kvs = {}
    for s in systems:
        tot = {c: collections.Counter() for c in ("spam", "ham")}
        fold_spam, fold_ham = [], []
        for fold, by_cls in stats[s].items():
            for c in ("spam", "ham"):
                tot[c].update(by_cls[c])
            ns, nh = sum(by_cls["spam"].values()), sum(by_cls["ham"].values())
            if ns:
                fold_spam.append(pct(by_cls["spam"]["flagged"], ns))
            if nh:
                fold_ham.append(pct(by_cls["ham"]["flagged"], nh))
        ns, nh = sum(tot["spam"].values()), sum(tot["ham"].values())
        caught, flagged = tot["spam"]["flagged"], tot["ham"]["flagged"]
        errors = tot["spam"]["error"] + tot["ham"]["error"]
        rt = times.get(s)
        rts = f"{rt:8.0f}s" if rt is not None else f"{'-':>9}"
        mm = lambda v: f"{min(v):6.2f}-{max(v):6.2f}%" if v else "-"
        print(f"{s:<13} {caught:>5}/{ns:<5} {pct(caught, ns):7.2f}% {mm(fold_spam):>16} "
              f"{flagged:>4}/{nh:<5} {pct(flagged, nh):6.2f}% {mm(fold_ham):>16} "
              f"{tot['spam']['unsure']:>5}/{tot['ham']['unsure']:<5} {errors:>6} {rts}")
        kv = (f"scan_accuracy system={s} spam_tested={ns} spam_caught={caught} "
              f"spam_caught_pct={pct(caught, ns):.2f} ham_tested={nh} ham_flagged={flagged} "
              f"ham_flagged_pct={pct(flagged, nh):.2f} spam_unsure={tot['spam']['unsure']} "
              f"ham_unsure={tot['ham']['unsure']} errors={errors}"
              + (f" run_time_s={rt:.1f}" if rt is not None else ""))
        kvs[s] = kv
    print()
    for s in systems:
        print(kvs[s])
    if "mxguard" in systems:
        kv = dict(x.split("=", 1) for x in kvs["mxguard"].split()[1:])
        ok = float(kv["spam_caught_pct"]) >= 97.0 and float(kv["ham_flagged_pct"]) <= 0.3 \
            and int(kv["errors"]) == 0
        print(f"scan_accuracy_target system=mxguard spam_caught_min=97 ham_flagged_max=0.3 "
              f"met={'yes' if ok else 'no'}")


def cmd_worst(a):
    rows = load([a.results])
    def fscore(r):
        try:
            return float(r[4])
        except ValueError:
            return math.nan
    missed = [r for r in rows if r[2] == "spam" and r[5] != "flagged"]
    fps = [r for r in rows if r[2] == "ham" and r[5] == "flagged"]
    missed.sort(key=lambda r: (math.inf if math.isnan(fscore(r)) else fscore(r)))
    fps.sort(key=lambda r: -(fscore(r) if not math.isnan(fscore(r)) else -math.inf))
    for title, lst in (("spam missed (not quarantined/rejected), lowest score first", missed),
                       ("ham flagged (quarantined/rejected), highest score first", fps)):
        print(f"{title}: {len(lst)}")
        for r in lst[:a.n]:
            print(f"  fold {r[1]}  {r[4]:>7}  {r[5]:<8} {os.path.join(r[2], os.path.basename(r[3]))}")
            if r[6]:
                print(f"      {r[6][:400]}")
        if len(lst) > a.n:
            print(f"  ... {len(lst) - a.n} more in {a.results}")


def median(v):
    v = sorted(v)
    n = len(v)
    if not n:
        return math.nan
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def cmd_speed(a):
    runs = collections.defaultdict(list)
    order = []
    with open(a.speed) as f:
        for line in f:
            if not line.startswith("speed "):
                continue
            kv = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
            s = kv["system"]
            if s not in order:
                order.append(s)
            n, b = int(kv["n"]), int(kv["bytes"])
            wall, cpu = float(kv["wall_s"]), float(kv["cpu_s"])
            runs[s].append({"n": n, "bytes": b, "wall": wall, "cpu": cpu,
                            "mps": n / wall, "MBps": b / 1e6 / wall,
                            "mpcpu": n / cpu if cpu > 0 else math.nan,
                            "busy": kv.get("busy_before", "?")})
    res = {}
    hdr = (f"{'system':<14} {'msgs':>5} {'MB':>6} {'reps':>4} {'wall s':>8} {'msgs/s':>9} {'MB/s':>8} "
           f"{'CPU s':>8} {'msgs/CPU-s':>10} {'msgs/s min-max':>17}")
    print(hdr)
    print("-" * len(hdr))
    for s in order:
        r = runs[s]
        m = {k: median([x[k] for x in r]) for k in ("wall", "cpu", "mps", "MBps", "mpcpu")}
        res[s] = m
        lo, hi = min(x["mps"] for x in r), max(x["mps"] for x in r)
        print(f"{s:<14} {r[0]['n']:>5} {r[0]['bytes'] / 1e6:>6.2f} {len(r):>4} {m['wall']:>8.3f} "
              f"{m['mps']:>9.1f} {m['MBps']:>8.3f} {m['cpu']:>8.3f} {m['mpcpu']:>10.1f} "
              f"{lo:>8.1f}-{hi:<8.1f}")
    print()
    for s in order:
        m = res[s]
        print(f"scan_speed system={s} msgs_per_s={m['mps']:.2f} MB_per_s={m['MBps']:.4f} "
              f"msgs_per_cpu_s={m['mpcpu']:.2f} wall_s={m['wall']:.4f} cpu_s={m['cpu']:.4f} reps={len(runs[s])}")
    if "mxguard" in res and "mxguard-1msg" in res:
        m, one = res["mxguard"], res["mxguard-1msg"]
        n = runs["mxguard"][0]["n"]
        if m["wall"] > one["wall"]:
            print(f"scan_speed_startup mxguard_1msg_wall_s={one['wall']:.4f} "
                  f"share_of_full_run={100 * one['wall'] / m['wall']:.1f}% "
                  f"msgs_per_s_without_startup={n / (m['wall'] - one['wall']):.1f}")
    for peer, target in (("spamassassin", 100.0), ("bogofilter", 1.0)):
        if "mxguard" in res and peer in res:
            m, p = res["mxguard"], res[peer]
            rw, rb, rc = m["mps"] / p["mps"], m["MBps"] / p["MBps"], m["mpcpu"] / p["mpcpu"]
            print(f"scan_speed_ratio mxguard/{peer} msgs_per_s={rw:.1f}x MB_per_s={rb:.1f}x "
                  f"msgs_per_cpu_s={rc:.1f}x target>={target:g}x "
                  f"met={'yes' if min(rw, rc) >= target else ('partly' if max(rw, rc) >= target else 'no')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("mxguard", "bogofilter"):
        p = sub.add_parser(name)
        p.add_argument("--fold", required=True)
        p.add_argument("--expect", nargs="+", required=True)
    p = sub.add_parser("table")
    p.add_argument("--times")
    p.add_argument("results", nargs="+")
    p = sub.add_parser("speed")
    p.add_argument("speed")
    p = sub.add_parser("worst")
    p.add_argument("-n", type=int, default=15)
    p.add_argument("results")
    a = ap.parse_args()
    {"mxguard": cmd_mxguard, "bogofilter": cmd_bogofilter,
     "table": cmd_table, "worst": cmd_worst, "speed": cmd_speed}[a.cmd](a)


if __name__ == "__main__":
    main()
