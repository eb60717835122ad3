"""Synthetic corpus generation and loading time, per scale.

    python benchmarks/bench_generate.py [--scales default,full] [--out benchmarks/results/generate.json]

Each scale: generate (seed 0) into a temporary directory, then ``load_corpus`` it (strict
validation + DataFrames), ``fingerprint()`` it and ``save()`` it again. Peak memory is the
process's max RSS after each scale (ru_maxrss, monotone). The purchase-model diagnostics of
``truth_diagnostics`` are recorded too (``--no-diagnostics`` skips them).
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import write_results  # noqa: E402

from core.corpus import load_corpus  # noqa: E402
from synth import GENERATOR_VERSION, generate_corpus, truth_diagnostics  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dir_mb(p: Path) -> float:
    return sum(f.stat().st_size for f in p.iterdir() if f.is_file()) / 2 ** 20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="default,full")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/generate.json")
    ap.add_argument("--no-diagnostics", action="store_true")
    args = ap.parse_args()
    rows = []
    load_before = os.getloadavg()
    for scale in args.scales.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            path = generate_corpus(Path(tmp) / scale, scale=scale, seed=args.seed)
            gen_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            corpus = load_corpus(path)
            load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            corpus.fingerprint()
            fp_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            corpus.save(Path(tmp) / "saved")
            save_s = time.perf_counter() - t0
            row = {"scale": scale, "sessions": len(corpus.sessions), "samples": len(corpus.samples),
                   "users": len(corpus.users), "items": len(corpus.items), "utterances": len(corpus.turns),
                   "candidate_rows": len(corpus.candidates), "size_mb": round(dir_mb(path), 1),
                   "generate_s": gen_s, "load_s": load_s, "fingerprint_s": fp_s, "save_s": save_s,
                   "peak_rss_mb": rss_mb()}
            if not args.no_diagnostics:
                d = truth_diagnostics(path, corpus=corpus, learnable=True)
                row["diagnostics"] = {k: v for k, v in d.items() if k.startswith(("top1_", "auc_", "lr_", "label_"))
                                      or k.startswith("mean_")}
            rows.append(row)
            print(f"{scale}: generated in {gen_s:.1f}s, loaded in {load_s:.1f}s", flush=True)
            del corpus
    print(f"\n{'scale':<8} {'sessions':>8} {'samples':>8} {'items':>8} {'cand rows':>10} {'MB':>6} {'gen s':>7} "
          f"{'load s':>7} {'fp s':>5} {'save s':>7} {'peak MB':>8}")
    for r in rows:
        print(f"{r['scale']:<8} {r['sessions']:>8,} {r['samples']:>8,} {r['items']:>8,} {r['candidate_rows']:>10,} "
              f"{r['size_mb']:>6.0f} {r['generate_s']:>7.1f} {r['load_s']:>7.1f} {r['fingerprint_s']:>5.1f} "
              f"{r['save_s']:>7.1f} {r['peak_rss_mb']:>8.0f}")
    for r in rows:
        if "diagnostics" in r:
            d = r["diagnostics"]
            print(f"{r['scale']}: true-utility Top@1 {d['top1_utility']:.3f}; blocks Top@1 BF {d['top1_bf']:.3f} "
                  f"CF {d['top1_cf']:.3f} IF {d['top1_if_']:.3f}; label linked {d['label_mentioned_rate']:.1%}; "
                  f"LR AUC BF {d['lr_auc_BF']:.3f} BF+CF {d['lr_auc_BF+CF']:.3f} BF+IF {d['lr_auc_BF+IF']:.3f} "
                  f"BF+IF+CF {d['lr_auc_BF+IF+CF']:.3f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"generator_version": GENERATOR_VERSION, "seed": args.seed, "python": platform.python_version(),
            "machine": platform.machine(), "cpus": os.cpu_count(),
            # other processes compete for the CPUs on shared machines: timings scale with this
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    write_results(out, {"meta": meta, "results": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
