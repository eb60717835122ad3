"""BF+IF materialisation throughput and peak memory, default and full-scale corpora.

    python benchmarks/bench_features.py [--scales default,full] [--out benchmarks/results/features.json]

Each scale: load the generated corpus, fit + transform the BF and IF features of
configs/features/econvrec.yaml from an empty cache (cold), then again with the parquet cache
(warm). Peak memory is the process's max RSS after each scale (ru_maxrss, monotone).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.materialize import FeaturePipeline  # noqa: E402
from features.spec import load_spec, parse_spec  # noqa: E402
from pipelines.corpus import load_corpus  # noqa: E402
from pipelines.generate import default_corpus_dir  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="default,full")
    ap.add_argument("--out", default="benchmarks/results/features.json")
    args = ap.parse_args()
    full_spec = load_spec("configs/features/econvrec.yaml")
    raw = full_spec.to_dict()
    raw["features"] = [f for f in raw["features"] if f["group"] in ("BF", "IF")]
    raw["feature_sets"] = {"BF+IF": ["BF", "IF"]}
    spec = parse_spec(raw, "BF+IF")
    rows = []
    for scale in args.scales.split(","):
        t0 = time.perf_counter()
        corpus = load_corpus(default_corpus_dir(scale=scale, seed=0))
        load_s = time.perf_counter() - t0
        n = len(corpus.candidates)
        with tempfile.TemporaryDirectory() as store:
            t0 = time.perf_counter()
            pipe = FeaturePipeline(spec, store, show_progress=False)
            table = pipe.fit_transform(corpus)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            FeaturePipeline(spec, store, show_progress=False).fit_transform(corpus)
            warm = time.perf_counter() - t0
        rows.append({"scale": scale, "rows": n, "columns": len(table.arrays), "load_s": load_s, "cold_s": cold,
                     "cold_rows_per_s": n / cold, "cached_s": warm, "peak_rss_mb": rss_mb()})
        print(f"{scale}: done", flush=True)
    print(f"\n{'scale':<8} {'rows':>9} {'cols':>5} {'load s':>7} {'BF+IF s':>8} {'rows/s':>10} {'cached s':>9} {'peak MB':>8}")
    for r in rows:
        print(f"{r['scale']:<8} {r['rows']:>9,} {r['columns']:>5} {r['load_s']:>7.1f} {r['cold_s']:>8.1f} "
              f"{r['cold_rows_per_s']:>10,.0f} {r['cached_s']:>9.1f} {r['peak_rss_mb']:>8.0f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
