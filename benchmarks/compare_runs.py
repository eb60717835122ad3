"""Paired bootstrap between (model, feature set) pairs of *different* run directories that share a
corpus and split (e.g. K-DCN ablations, each its own run since a run trains a pair once).

    python benchmarks/compare_runs.py BASE_RUN:kdcn:all OTHER_RUN:kdcn:all [...] [--out FILE]
    python benchmarks/compare_runs.py BASE_RUN:fgcnn:BF+IF+CF@1 OTHER_RUN:fgcnn:BF+IF+CF@1  # seed 1 of --seeds

The first pair is the reference; every other pair is reported as ``other − reference`` with its
95% interval over the same resampled test requests (the run's first training seed unless ``@seed``
names a further one of its ``--seeds``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import format_table, write_results  # noqa: E402
from core.bootstrap import RequestBootstrap, ci95, paired_difference  # noqa: E402
from core.metrics import evaluate  # noqa: E402
from pipelines.rundir import RunDir  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pairs", nargs="+", help="RUN_DIR:model:feature_set; the first is the reference")
    ap.add_argument("--out")
    args = ap.parse_args()
    preds = []
    for spec in args.pairs:
        root, model, fs = spec.rsplit(":", 2)
        fs, _, seed = fs.partition("@")
        path = RunDir(root).predictions(model, fs, int(seed) if seed else None)
        if not path.is_file():
            raise SystemExit(f"{spec}: no test predictions at {path} (is the pair, or the seed, in that run?)")
        p = pd.read_parquet(path).sort_values(["sample_id", "item_id"])
        preds.append((spec, p.reset_index(drop=True)))
    ref_name, ref = preds[0]
    for name, p in preds[1:]:
        if not p[["sample_id", "item_id", "label"]].equals(ref[["sample_id", "item_id", "label"]]):
            raise SystemExit(f"{name}: test rows differ from {ref_name} (not the same corpus and split)")
    y, g = ref["label"].to_numpy(), ref["sample_id"].to_numpy()
    boot = RequestBootstrap(y, g, seed=0)
    point = {n: evaluate(y, p["score"].to_numpy(), g) for n, p in preds}
    reps = {n: boot.replicates(p["score"].to_numpy()) for n, p in preds}
    rows = []
    for name, _ in preds:
        row = {"pair": name, "auc": point[name]["auc"], "auc_ci95": ci95(reps[name]["auc"]),
               "top@1": point[name]["top@1"], "mrr": point[name]["mrr"]}
        for m in ("auc", "top@1", "mrr"):
            d = paired_difference(point[name][m], point[ref_name][m], reps[name][m], reps[ref_name][m])
            row[f"d_{m}"] = f"{100 * d['diff']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"
        rows.append(row)
    print(f"reference: {ref_name}; {len(set(g))} test requests; differences in points (x100)")
    print(format_table(rows, [("pair", "pair", "<"), ("AUC", "auc", ".4f"), ("T@1", "top@1", ".4f"),
                              ("ΔAUC", "d_auc", "<"), ("ΔT@1", "d_top@1", "<"), ("ΔMRR", "d_mrr", "<")]))
    if args.out:
        write_results(args.out, rows)


if __name__ == "__main__":
    main()
