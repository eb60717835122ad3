"""Batch-scoring throughput and single-request latency of a trained run.

    python benchmarks/bench_score.py --run runs/econvrec_rank-default-seed0 [--models deepfm,kdcn]

Requests are the run's test samples (user id, dialogue before the recommendation turn,
candidate ids). Batch: all test requests in batches of 256, candidates per second. Latency: one
request at a time (with the model loaded and warmed up), p50 and p99 over --n requests.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import format_table, write_results  # noqa: E402

from core.corpus import load_corpus  # noqa: E402
from pipelines.score import Scorer  # noqa: E402


def test_requests(corpus_dir: Path) -> list[dict]:
    corpus = load_corpus(corpus_dir)
    sessions = {json.loads(line)["session_id"]: json.loads(line) for line in (corpus_dir / "sessions.jsonl").open()}
    test = corpus.samples[corpus.samples["split"] == "test"]
    cands = corpus.candidates.groupby("sample_id", sort=False)["item_id"].apply(list)
    return [{"request_id": r.sample_id, "user_id": r.user_id, "shop_id": sessions[r.session_id]["shop_id"],
             "turns": sessions[r.session_id]["turns"][: r.turn], "candidates": cands[r.sample_id]}
            for r in test.itertuples()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--models", default="deepfm,kdcn")
    ap.add_argument("--n", type=int, default=200, help="single requests timed for the latency percentiles")
    ap.add_argument("--out", default="benchmarks/results/score.json")
    args = ap.parse_args()
    import yaml

    cfg = yaml.safe_load((Path(args.run) / "config.yaml").read_text())
    if cfg.get("data"):
        corpus_dir = Path(cfg["data"])
    else:
        from synth import default_corpus_dir

        corpus_dir = default_corpus_dir(scale=cfg["scale"], seed=cfg["seed"])
    reqs = test_requests(Path(corpus_dir))
    rows = []
    for model in args.models.split(","):
        ranker = Scorer.load(args.run, model)
        ranker.score(reqs[:2])  # warm-up: graph tracing, encoder and resource loading
        n_cand = sum(len(r["candidates"]) for r in reqs)
        t0 = time.perf_counter()
        for s in range(0, len(reqs), 256):
            ranker.score(reqs[s : s + 256])
        batch_s = time.perf_counter() - t0
        lat = []
        for r in (reqs * (args.n // max(len(reqs), 1) + 1))[: args.n]:
            t1 = time.perf_counter()
            ranker.score([r])
            lat.append(time.perf_counter() - t1)
        lat_ms = np.array(lat) * 1000
        rows.append({"model": model, "requests": len(reqs), "candidates": n_cand,
                     "batch_candidates_per_s": n_cand / batch_s,
                     "mean_candidates_per_request": n_cand / len(reqs),
                     "p50_ms": float(np.percentile(lat_ms, 50)), "p99_ms": float(np.percentile(lat_ms, 99))})
    print("\n" + format_table(rows, [("model", "model", "<8"), ("requests", "requests", "d"), ("cands", "candidates", "d"),
                                      ("batch cand/s", "batch_candidates_per_s", ",.0f"), ("p50 ms", "p50_ms", ".1f"),
                                      ("p99 ms", "p99_ms", ".1f")]))
    write_results(args.out, rows)


if __name__ == "__main__":
    main()
