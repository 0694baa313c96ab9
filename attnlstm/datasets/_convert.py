"""Rebuild the bundled dataset files in ``attnlstm/datasets/data/`` from their public sources.

This script is for maintainers; it is never run at import time and the package never reads the
source files. It turns text files shipped inside two BSD-3 licensed wheels into small compressed
``.npz`` files that :mod:`attnlstm.datasets` loads offline.

Sources (see ``data/README.md`` for origin, citation and licence of each):

* ``aeon/datasets/data/JapaneseVowels/JapaneseVowels_TRAIN.ts`` and ``..._TEST.ts`` from the
  aeon wheel (checked with aeon 1.6.0; the same bytes ship in sktime 1.2.0 under
  ``sktime/datasets/data/JapaneseVowels/``).
* ``sktime/datasets/data/mitdb/mitdb.csv`` from the sktime wheel (sktime >= 0.34; checked with
  sktime 1.2.0).

Reproduce::

    pip download --no-deps -d /tmp/dsw aeon sktime
    cd /tmp/dsw && unzip -q -o aeon-*.whl 'aeon/datasets/data/JapaneseVowels/*' \\
        && unzip -q -o sktime-*.whl 'sktime/datasets/data/mitdb/*'
    python -m attnlstm.datasets._convert --japanese-vowels /tmp/dsw/aeon/datasets/data/JapaneseVowels \\
        --mitdb /tmp/dsw/sktime/datasets/data/mitdb/mitdb.csv

The script checks each source file's SHA-256 against the value recorded below (pass
``--no-verify`` to convert a different release on purpose), parses it with nothing but the
standard library and NumPy, checks the documented facts (counts, lengths, labels, anomalous
segment), and writes:

* ``japanese_vowels.npz``: ``x_train``/``x_test`` float32 (total_T, 12) -- every case's
  (T_i, 12) time-major block stacked along time --, ``len_train``/``len_test`` int64 (N,) the
  T_i, ``y_train``/``y_test`` int64 (N,) speaker index 0..8. Values are parsed from the text
  decimals and rounded once to float32.
* ``ecg_mitdb.npz``: ``signal`` float32 (7500,), ``labels`` int8 (7500,).

``np.savez_compressed`` writes a fixed zip timestamp, so rerunning the script on the same inputs
gives byte-identical files.
"""
import argparse
import hashlib
import os
import sys

import numpy as np

JV_N_CHANNELS = 12
JV_CLASSES = ("1", "2", "3", "4", "5", "6", "7", "8", "9")
JV_SHA256 = {
    "TRAIN": "68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd",
    "TEST": "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462",
}
JV_COUNTS = {"TRAIN": 270, "TEST": 370}

MITDB_SHA256 = "d4f2539a5e85e1ac1e7f8bba152b5e60a02356282463a8a1c97848ad3e1bb386"
MITDB_ROWS = 7500
MITDB_SEGMENT = (6936, 7287)  # first and last row (0-based, inclusive) labelled 1

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_sha(path, expected, verify):
    got = sha256_of(path)
    if verify and got != expected:
        raise SystemExit(
            f"{path}: SHA-256 {got} differs from the recorded {expected}; "
            "pass --no-verify to convert this file anyway (then update data/README.md)."
        )
    return got


def parse_ts(path):
    """Parse an (unequal-length, multivariate, classification) .ts file.

    Returns (cases, labels): cases a list of float64 arrays of shape (T_i, channels),
    time-major; labels a list of str. Header lines start with '@', comments with '#'; after
    '@data' each line is one case, channels separated by ':', values inside a channel by ',',
    the class label last.
    """
    cases, labels = [], []
    n_channels = None
    in_data = False
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                low = line.lower()
                if low.startswith("@dimensions"):
                    n_channels = int(line.split()[1])
                elif low.startswith("@missing") and line.split()[1].lower() != "false":
                    raise SystemExit(f"{path}:{lineno}: missing values are not supported")
                elif low.startswith("@data"):
                    in_data = True
                continue
            parts = line.split(":")
            label = parts[-1].strip()
            channels = [np.array([float(v) for v in p.split(",")]) for p in parts[:-1]]
            if n_channels is not None and len(channels) != n_channels:
                raise SystemExit(f"{path}:{lineno}: {len(channels)} channels, header says {n_channels}")
            lengths = {len(c) for c in channels}
            if len(lengths) != 1:
                raise SystemExit(f"{path}:{lineno}: channels have different lengths {sorted(lengths)}")
            cases.append(np.stack(channels, axis=1))  # (T_i, channels): time-major
            labels.append(label)
    return cases, labels


def convert_japanese_vowels(src_dir, out_path, verify=True):
    arrays = {}
    for split in ("TRAIN", "TEST"):
        path = os.path.join(src_dir, f"JapaneseVowels_{split}.ts")
        digest = check_sha(path, JV_SHA256[split], verify)
        cases, labels = parse_ts(path)
        if len(cases) != JV_COUNTS[split]:
            raise SystemExit(f"{path}: {len(cases)} cases, expected {JV_COUNTS[split]}")
        if any(c.shape[1] != JV_N_CHANNELS for c in cases):
            raise SystemExit(f"{path}: a case does not have {JV_N_CHANNELS} channels")
        unknown = sorted(set(labels) - set(JV_CLASSES))
        if unknown:
            raise SystemExit(f"{path}: unknown labels {unknown}")
        key = split.lower()
        arrays[f"x_{key}"] = np.concatenate(cases, axis=0).astype(np.float32)
        arrays[f"len_{key}"] = np.array([c.shape[0] for c in cases], dtype=np.int64)
        arrays[f"y_{key}"] = np.array([JV_CLASSES.index(lab) for lab in labels], dtype=np.int64)
        lens = arrays[f"len_{key}"]
        print(f"{split}: {len(cases)} cases, lengths {lens.min()}..{lens.max()}, "
              f"class counts {np.bincount(arrays[f'y_{key}']).tolist()}, sha256 {digest}")
    np.savez_compressed(out_path, **arrays)
    print(f"wrote {out_path} ({os.path.getsize(out_path)} bytes)")


def convert_mitdb(csv_path, out_path, verify=True):
    digest = check_sha(csv_path, MITDB_SHA256, verify)
    with open(csv_path, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
        if header != ["data", "label"]:
            raise SystemExit(f"{csv_path}: header {header}, expected ['data', 'label']")
        rows = [line.strip().split(",") for line in f if line.strip()]
    signal = np.array([float(r[0]) for r in rows], dtype=np.float32)
    labels = np.array([int(r[1]) for r in rows], dtype=np.int8)
    if signal.shape != (MITDB_ROWS,):
        raise SystemExit(f"{csv_path}: {signal.shape[0]} rows, expected {MITDB_ROWS}")
    idx = np.flatnonzero(labels)
    first, last = int(idx[0]), int(idx[-1])
    if (first, last) != MITDB_SEGMENT or len(idx) != last - first + 1 or set(labels.tolist()) != {0, 1}:
        raise SystemExit(f"{csv_path}: labelled rows are not the one segment {MITDB_SEGMENT}")
    print(f"mitdb: {signal.shape[0]} rows, anomalous rows {first}..{last} ({len(idx)}), sha256 {digest}")
    np.savez_compressed(out_path, signal=signal, labels=labels)
    print(f"wrote {out_path} ({os.path.getsize(out_path)} bytes)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--japanese-vowels", metavar="DIR",
                   help="folder holding JapaneseVowels_TRAIN.ts and JapaneseVowels_TEST.ts")
    p.add_argument("--mitdb", metavar="CSV", help="path of sktime's mitdb.csv")
    p.add_argument("--out", default=DATA_DIR, help="output folder (default: the package's data/)")
    p.add_argument("--no-verify", action="store_true", help="skip the SHA-256 check of the sources")
    args = p.parse_args(argv)
    if not (args.japanese_vowels or args.mitdb):
        p.error("give --japanese-vowels and/or --mitdb")
    if args.japanese_vowels:
        convert_japanese_vowels(args.japanese_vowels, os.path.join(args.out, "japanese_vowels.npz"),
                                verify=not args.no_verify)
    if args.mitdb:
        convert_mitdb(args.mitdb, os.path.join(args.out, "ecg_mitdb.npz"), verify=not args.no_verify)
    return 0


if __name__ == "__main__":
    sys.exit(main())
