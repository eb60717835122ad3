"""DeepFM on BF+IF+CF with and without the reaction features (``item_reaction``), on the default corpus.

    python -m benchmarks.feedback_ablation [--scale default] [--seeds 0,1,2] [--epochs N]

Same corpus, same fitted features (the pipeline is fitted once with the shipped spec; the "without"
space drops the ``item_reaction__*`` fields), one DeepFM per (set, seed). Prints test AUC and Top@1
per set as the mean over seeds with its standard error, the paired difference, permutation
importance per group of the best seed's model with the reaction features, and the simulator's
learnable ceiling on the same test split. Writes ``benchmarks/results/feedback_ablation.json``.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from benchmarks.common import format_table, write_results

RESULTS = Path(__file__).parent / "results" / "feedback_ablation.json"


def _se(x) -> float:
    x = np.asarray(x, float)
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="default")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=None)
    a = ap.parse_args(argv)
    from core.corpus import load_corpus
    from core.env import cache_root, shared_cache
    from core.metrics import evaluate
    from features.materialize import FeaturePipeline
    from pipelines.diagnostics import learnable_ceiling, permutation_importance
    from rankers.registry import build
    from synth import default_corpus_dir

    t0 = time.perf_counter()
    corpus_dir = default_corpus_dir(scale=a.scale, seed=0, cache_root=cache_root())
    corpus = load_corpus(corpus_dir, seed=0)
    import yaml

    from features.spec import parse_spec

    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs/features/econvrec.yaml").read_text())
    raw["features"] = [f for f in raw["features"] if f["group"] in ("BF", "IF", "CF")]  # no KG pretraining
    raw["feature_sets"] = {"BF+IF+CF": ["BF", "IF", "CF"]}
    spec = parse_spec(raw)
    pipe = FeaturePipeline(spec, cache_root() / "features" / corpus.fingerprint(), cache=shared_cache(),
                           show_progress=False)
    table = pipe.fit_transform(corpus)
    t_feat = time.perf_counter() - t0
    full = pipe.feature_space("BF+IF+CF")
    without = full.subset([f.name for f in full.fields if not f.name.startswith("item_reaction")])
    seeds = [int(s) for s in a.seeds.split(",")]
    extra = {"epochs": a.epochs} if a.epochs else {}
    runs, models = [], {}
    test = table.mask("test")
    for name, space in (("BF+IF+CF", full), ("BF+IF+CF without item_reaction", without)):
        for seed in seeds:
            r = build("deepfm", space, seed=seed, **extra)
            r.fit(table.X(space, "train"), table.labels[table.mask("train")], table.X(space, "valid"),
                  table.labels[table.mask("valid")], table.groups[table.mask("valid")])
            m = evaluate(table.labels[test], r.predict(table.X(space, "test")), table.groups[test])
            runs.append({"set": name, "seed": seed, "auc": m["auc"], "top1": m["top@1"]})
            models[(name, seed)] = r
            print(f"{name} seed {seed}: AUC {m['auc']:.4f} Top@1 {m['top@1']:.4f}", flush=True)
    summary = []
    for name in ("BF+IF+CF", "BF+IF+CF without item_reaction"):
        rs = [r for r in runs if r["set"] == name]
        summary.append({"set": name, "auc": np.mean([r["auc"] for r in rs]), "auc_se": _se([r["auc"] for r in rs]),
                        "top1": np.mean([r["top1"] for r in rs]), "top1_se": _se([r["top1"] for r in rs])})
    d_auc = [a_["auc"] - b["auc"] for a_, b in zip(runs[: len(seeds)], runs[len(seeds):])]
    d_top1 = [a_["top1"] - b["top1"] for a_, b in zip(runs[: len(seeds)], runs[len(seeds):])]
    best_seed = max((r for r in runs if r["set"] == "BF+IF+CF"), key=lambda r: r["auc"])["seed"]
    groups = {g: [f.name for f in full.fields if f.group == g and not f.name.startswith("item_reaction")]
              for g in ("BF", "IF", "CF")}
    groups["IF reaction"] = [f.name for f in full.fields if f.name.startswith("item_reaction")]
    imp = permutation_importance(models[("BF+IF+CF", best_seed)], table, full, groups=groups, repeats=3, seed=0)
    ceiling = learnable_ceiling(corpus_dir, corpus=corpus)
    print(format_table(summary, [("set", "set", "<s"), ("AUC", "auc", ".4f"), ("±se", "auc_se", ".4f"),
                                 ("Top@1", "top1", ".4f"), ("±se", "top1_se", ".4f")]))
    print(f"paired difference (with - without): AUC {np.mean(d_auc):+.4f} ± {_se(d_auc):.4f}, "
          f"Top@1 {np.mean(d_top1):+.4f} ± {_se(d_top1):.4f} (mean ± s.e. over {len(seeds)} seeds)")
    print(imp.round(4).to_string(index=False))
    print(f"simulator ceiling on the test split: {ceiling}")
    write_results(RESULTS, {"scale": a.scale, "seeds": seeds, "runs": runs, "summary": summary,
                            "paired_auc": d_auc, "paired_top1": d_top1,
                            "importance": imp.to_dict(orient="records"), "ceiling": ceiling,
                            "features_s": t_feat, "wall_s": time.perf_counter() - t0,
                            "loadavg": os.getloadavg()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
