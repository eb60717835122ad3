"""Where batch scoring through the serving path spends its time: milliseconds per pass for each stage.

    python benchmarks/bench_score_stages.py --run RUN_DIR [--model deepfm] [--passes 5] [--out FILE]

Requests are the run's test samples (as ``bench_score.py``), scored as one ``Scorer.score`` call
(``pipelines.score``'s batch path) after ``warm_up`` and one untimed pass (utterances encoded,
caches filled). Stages: the request records, the request corpus (validation and tables), each
feature kind computed per call (``FeaturePipeline.raw_arrays``), the fitted encoders, the model; the
total is the median pass, and "other" what the stages do not cover (row keys, caches, rankings).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_score import test_requests  # noqa: E402
from benchmarks.bench_serve import corpus_dir_of  # noqa: E402
from benchmarks.common import format_table, write_results  # noqa: E402


def timed(obj, name: str, label, times: dict) -> None:
    """Wrap ``obj.name`` so that each call's seconds go to ``times[label(args)]``."""
    orig = getattr(obj, name)

    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        out = orig(*args, **kwargs)
        times[label(args) if callable(label) else label].append(time.perf_counter() - t)
        return out

    setattr(obj, name, wrapper)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--model", default="deepfm")
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--out", default="benchmarks/results/score_stages.json")
    args = ap.parse_args()
    import features.materialize as materialize
    import features.serving as serving
    import pipelines.score as score

    run = Path(args.run)
    reqs = test_requests(corpus_dir_of(run))
    scorer = score.Scorer.load(run, args.model)
    scorer.warm_up()
    times: dict[str, list[float]] = defaultdict(list)
    timed(materialize.FeaturePipeline, "raw_arrays", lambda a: a[3].name, times)
    timed(score, "requests_to_records", "<request records>", times)
    timed(score, "request_corpus", "<request corpus>", times)
    timed(score.CompiledModel, "predict", "<model>", times)
    timed(serving.FeaturePipeline, "encode", "<fitted encoders>", times)
    scorer.score(reqs)
    times.clear()
    total = []
    for _ in range(args.passes):
        t = time.perf_counter()
        scorer.score(reqs)
        total.append(time.perf_counter() - t)
    n_cand = sum(len(r["candidates"]) for r in reqs)
    rows = [{"stage": k, "ms_per_pass": 1e3 * sum(v) / args.passes} for k, v in times.items()]
    rows.sort(key=lambda r: -r["ms_per_pass"])
    p50 = float(np.median(total))
    rows.append({"stage": "other", "ms_per_pass": 1e3 * p50 - sum(r["ms_per_pass"] for r in rows)})
    rows.append({"stage": "total (median pass)", "ms_per_pass": 1e3 * p50})
    print(f"{len(reqs)} requests, {n_cand} candidates: {n_cand / p50:,.0f} candidates/s (median of {args.passes})\n")
    print(format_table(rows, [("stage", "stage", "<24"), ("ms per pass", "ms_per_pass", ".1f")]))
    write_results(args.out, {"run": str(run), "model": args.model, "requests": len(reqs), "candidates": n_cand,
                             "passes": args.passes, "candidates_per_s": n_cand / p50, "stages": rows})


if __name__ == "__main__":
    main()
