#!/usr/bin/python3
"""scan_folds.py -- deterministic k-fold split of the dev corpus.

Usage: scan_folds.py CORPUS OUT [--folds K]

CORPUS is the directory the dev tarball was unpacked into (it holds dev/ham
and dev/spam).  Only CORPUS/dev/ham and CORPUS/dev/spam are read; anything
else (for instance a reserved evaluation group someone unpacked next to it)
is ignored on purpose.

Per class, the file names are sorted (byte order) and file i goes to fold
i % K.  The split is therefore stratified (each fold has 1/K of the ham and
1/K of the spam) and identical for every system and every run.

For each fold k it writes, with absolute paths, one per line:
    OUT/fold<k>/train-ham.list   OUT/fold<k>/train-spam.list
    OUT/fold<k>/test-ham.list    OUT/fold<k>/test-spam.list
and directories of symlinks with the same content (for tools that take a
directory): OUT/fold<k>/{train,test}/{ham,spam}/.
It also writes OUT/all-ham.list, OUT/all-spam.list and OUT/folds.tsv
(fold, class, file name) and prints one summary line per fold.
"""
import argparse
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("--folds", type=int, default=5)
    a = ap.parse_args()
    if a.folds < 2:
        sys.exit("scan_folds.py: --folds must be >= 2")

    classes = {}
    for cls in ("ham", "spam"):
        d = os.path.join(os.path.abspath(a.corpus), "dev", cls)
        if not os.path.isdir(d):
            sys.exit(f"scan_folds.py: {d} is missing (unpack spamassassin-dev.tar.gz into {a.corpus})")
        names = sorted(n for n in os.listdir(d)
                       if not n.startswith(".") and os.path.isfile(os.path.join(d, n)))
        if not names:
            sys.exit(f"scan_folds.py: {d} is empty")
        classes[cls] = (d, names)

    os.makedirs(a.out, exist_ok=True)
    out = os.path.abspath(a.out)
    with open(os.path.join(out, "folds.tsv"), "w") as tsv:
        for cls, (d, names) in classes.items():
            with open(os.path.join(out, f"all-{cls}.list"), "w") as f:
                f.writelines(os.path.join(d, n) + "\n" for n in names)
            for i, n in enumerate(names):
                tsv.write(f"{i % a.folds}\t{cls}\t{n}\n")

    for k in range(a.folds):
        fdir = os.path.join(out, f"fold{k}")
        os.makedirs(fdir, exist_ok=True)
        for part in ("train", "test"):
            for cls, (d, names) in classes.items():
                sel = [n for i, n in enumerate(names)
                       if (i % a.folds == k) == (part == "test")]
                with open(os.path.join(fdir, f"{part}-{cls}.list"), "w") as f:
                    f.writelines(os.path.join(d, n) + "\n" for n in sel)
                ldir = os.path.join(fdir, part, cls)
                os.makedirs(ldir, exist_ok=True)
                for old in os.listdir(ldir):
                    os.unlink(os.path.join(ldir, old))
                for n in sel:
                    os.symlink(os.path.join(d, n), os.path.join(ldir, n))
        counts = {}
        for part in ("train", "test"):
            for cls in ("ham", "spam"):
                with open(os.path.join(fdir, f"{part}-{cls}.list")) as f:
                    counts[f"{part}_{cls}"] = sum(1 for _ in f)
        print(f"fold={k} " + " ".join(f"{key}={v}" for key, v in counts.items()))


if __name__ == "__main__":
    main()
