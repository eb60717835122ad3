"""BF+IF materialisation throughput and peak memory, default and full-scale corpora.

    python benchmarks/bench_features.py [--scales default,full] [--out benchmarks/results/features.json]

Each scale: load the generated corpus, fit + transform the BF and IF features of
configs/features/econvrec.yaml from an empty cache (cold), then again with the parquet cache
(warm). Peak memory is the process's max RSS after each scale (ru_maxrss, monotone).
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import format_table, write_results  # noqa: E402

from features.materialize import FeaturePipeline  # noqa: E402
from features.spec import load_spec, parse_spec  # noqa: E402
from core.corpus import load_corpus  # noqa: E402
from synth import default_corpus_dir  # noqa: E402


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
    print("\n" + format_table(rows, [("scale", "scale", "<8"), ("rows", "rows", ",d"), ("cols", "columns", "d"),
                                      ("load s", "load_s", ".1f"), ("BF+IF s", "cold_s", ".1f"),
                                      ("rows/s", "cold_rows_per_s", ",.0f"), ("cached s", "cached_s", ".1f"),
                                      ("peak MB", "peak_rss_mb", ".0f")]))
    write_results(args.out, rows)


if __name__ == "__main__":
    main()
