"""Cost of the report's request bootstrap (``core.bootstrap``) against a row-by-row reference.

    python benchmarks/bench_bootstrap.py [--requests 1000,2000] [--boot 1000] [--models 12] [--seeds 3]

Synthetic test splits of ``--requests`` requests x 31 candidates; ``--models`` (model, feature
set) pairs of ``--seeds`` score vectors each, bootstrapped with one shared count matrix (what a
report does), p50 and p99 seconds per pair over the pairs. The peer: the same replicates computed by materialising each resampled split
and calling ``core.metrics.evaluate`` (timed on 20 replicates and scaled, as a ratio in this run).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import format_table, write_results  # noqa: E402
from core.bootstrap import RequestBootstrap  # noqa: E402
from core.metrics import evaluate  # noqa: E402

PER = 31


def split(n_req: int, seed: int):
    rng = np.random.default_rng(seed)
    y = np.zeros((n_req, PER), np.int64)
    y[:, 0] = 1
    s = rng.random((n_req, PER))
    s[:, 0] += 0.4
    return y.ravel(), np.clip(s / s.max(), 0, 1).ravel(), np.repeat(np.arange(n_req), PER)


def reference_seconds(y, s, g, weights, n: int = 20) -> float:
    """Seconds per replicate of the slow way: build the resampled rows, evaluate them."""
    t = time.perf_counter()
    for counts in weights[:n]:
        idx = np.concatenate([np.flatnonzero(g == r) for r, c in enumerate(counts) for _ in range(int(c))])
        copy = np.repeat(np.arange(int(counts.sum())), PER)
        evaluate(y[idx], s[idx], copy)
    return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", default="1000,2000")
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--models", type=int, default=12)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "bootstrap.json"))
    args = ap.parse_args()
    rows = []
    for n_req in [int(x) for x in args.requests.split(",")]:
        y, _, g = split(n_req, 0)
        t0 = time.perf_counter()
        boot = RequestBootstrap(y, g, n_boot=args.boot, seed=0)
        setup_s = time.perf_counter() - t0
        per_model = []
        for m in range(args.models):
            s = np.stack([split(n_req, 1 + m * args.seeds + k)[1] for k in range(args.seeds)])
            t = time.perf_counter()
            boot.replicates(s)
            per_model.append(time.perf_counter() - t)
        ref = args.seeds * reference_seconds(y, split(n_req, 1)[1], g, boot.weights)
        p50, p99 = np.percentile(per_model, [50, 99])
        rows.append({"requests": n_req, "rows": n_req * PER, "replicates": args.boot, "models": args.models,
                     "seeds": args.seeds,
                     "setup_s": setup_s, "p50_s_per_model": float(p50), "p99_s_per_model": float(p99),
                     "report_total_s": setup_s + float(np.sum(per_model)),
                     "reference_s_per_model": ref * args.boot, "speedup": ref * args.boot / float(p50),
                     "load_average": [round(x, 2) for x in os.getloadavg()]})
        rows[-1]["load"] = " ".join(f"{x:.1f}" for x in rows[-1]["load_average"])
    print(format_table(rows, [("requests", "requests", "d"), ("replicates", "replicates", "d"),
                              ("models", "models", "d"), ("seeds", "seeds", "d"), ("p50 s/model", "p50_s_per_model", ".2f"),
                              ("p99 s/model", "p99_s_per_model", ".2f"), ("report s", "report_total_s", ".1f"),
                              ("slow loop s/model", "reference_s_per_model", ".0f"), ("speedup", "speedup", ".0f"),
                              ("load 1/5/15 min", "load", "<")]))
    write_results(args.out, rows)


if __name__ == "__main__":
    main()
