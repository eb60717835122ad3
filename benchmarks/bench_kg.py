"""Conversation knowledge graph: construction time and size, and GCN + TransE pretraining
throughput, per corpus scale (how both grow with the graph).

    python benchmarks/bench_kg.py [--scales default,full] [--steps 200] [--cache /tmp/kgbench]
                                  [--out benchmarks/results/kg.json]

Per scale: the synthetic corpus (``synth.generate``, seed 0) is generated once into
``--cache`` and loaded; then

* ``build_cold_s``: ``build_ckg`` with a fresh tokenizer (jieba segmentation of every distinct
  utterance and title included); ``build_warm_s``: again with the tokenizer's memo filled (the
  construction itself; in the feature pipeline the tokenizer is shared with other features);
* sizes: entities / triples, by type, parquet + vocabulary bytes on disk;
* pretraining with the default parameters (dim 64, 2 GCN layers, 10 sampled neighbours, batch
  1000, Adam 1e-3) for ``--steps`` steps: steady-state triples per second (first steps excluded:
  tracing), sampled entities per step, CSR adjacency build time, the exact full-graph GCN export
  time and the projected time of one epoch; peak RSS of the process (monotone across scales).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import write_results  # noqa: E402

import core  # noqa: E402,F401  (Keras 2, quiet TensorFlow)
from features.kg.graph import CKG, GraphParams, build_ckg  # noqa: E402
from features.kg.pretrain import PretrainParams, pretrain  # noqa: E402
from features.text import Tokenizer, lexicon_from_items  # noqa: E402
from core.corpus import load_corpus  # noqa: E402
from synth import generate_corpus  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def corpus_dir(cache: Path, scale: str, seed: int = 0) -> Path:
    from synth import GENERATOR_VERSION

    path = cache / f"corpus-{scale}-seed{seed}-v{GENERATOR_VERSION}"
    if not (path / "samples.jsonl").exists():
        generate_corpus(path, scale=scale, seed=seed)
    return path


def bench_scale(scale: str, cache: Path, steps: int) -> dict:
    t0 = time.perf_counter()
    corpus = load_corpus(corpus_dir(cache, scale))
    load_s = time.perf_counter() - t0
    lexicon = lexicon_from_items(corpus.items, corpus.item_attrs)

    tok = Tokenizer(lexicon)
    t0 = time.perf_counter()
    g = build_ckg(corpus, GraphParams(), tok)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    g = build_ckg(corpus, GraphParams(), tok)
    warm = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        g.save(tmp)
        disk = sum(f.stat().st_size for f in Path(tmp).iterdir())
        t0 = time.perf_counter()
        CKG.load(tmp)
        load_graph_s = time.perf_counter() - t0
    st = g.stats()

    p = PretrainParams(max_steps=steps, epochs=10**6)
    res = pretrain(g, p)
    ps = res.stats
    steps_per_epoch = -(-st["triples"] // p.batch_size)
    return {
        "scale": scale, "users": len(corpus.users), "items": len(corpus.items), "sessions": len(corpus.sessions),
        "utterances": len(corpus.turns), "corpus_load_s": round(load_s, 2),
        "build_cold_s": round(cold, 2), "build_warm_s": round(warm, 2), "ckg_load_s": round(load_graph_s, 2),
        "entities": st["entities"], "triples": st["triples"], "disk_mb": round(disk / 2**20, 1),
        "entities_by_type": st["entities_by_type"], "triples_by_relation": st["triples_by_relation"],
        "pretrain": {
            "params": p.model_dump(mode="json"), "steps": ps["steps"],
            "steady_triples_per_s": ps["steady_triples_per_second"], "triples_per_s_incl_warmup": ps["triples_per_second"],
            "sampled_entities_per_step": ps["mean_sampled_nodes_per_step"],
            "adjacency_s": ps["adjacency_seconds"], "undirected_edges": ps["undirected_edges"],
            "export_s": ps["export_seconds"], "loss_first_last_20_steps": [ps["loss_first_20_steps"], ps["loss_last_20_steps"]],
            "projected_epoch_s": round(steps_per_epoch * p.batch_size / max(ps["steady_triples_per_second"], 1e-9), 1),
        },
        "peak_rss_mb": round(rss_mb()),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="default,full")
    ap.add_argument("--steps", type=int, default=200, help="pretraining steps measured per scale")
    ap.add_argument("--cache", default=os.environ.get("KG_BENCH_CACHE", "/tmp/kgbench"))
    ap.add_argument("--out", default="benchmarks/results/kg.json")
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    rows = []
    for scale in args.scales.split(","):
        row = bench_scale(scale, cache, args.steps)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if not isinstance(v, dict)}), flush=True)

    hdr = (f"{'scale':<8} {'entities':>9} {'triples':>10} {'build cold':>10} {'warm':>6} {'MB':>6} "
           f"{'triples/s':>10} {'ent/step':>9} {'adj s':>6} {'export s':>8} {'epoch s':>8} {'RSS MB':>7}")
    print("\n" + hdr + "\n" + "-" * len(hdr))
    for r in rows:
        p = r["pretrain"]
        print(f"{r['scale']:<8} {r['entities']:>9,} {r['triples']:>10,} {r['build_cold_s']:>10.1f} {r['build_warm_s']:>6.1f} "
              f"{r['disk_mb']:>6.1f} {p['steady_triples_per_s']:>10,.0f} {p['sampled_entities_per_step']:>9,.0f} "
              f"{p['adjacency_s']:>6.1f} {p['export_s']:>8.1f} {p['projected_epoch_s']:>8.0f} {r['peak_rss_mb']:>7,}")
    out = {
        "benchmark": "kg", "command": "python benchmarks/bench_kg.py " + " ".join(sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_avg_at_end": os.getloadavg()},
        "results": rows,
    }
    write_results(args.out, out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
