"""``python -m pipelines.run econvrec_rank``: the whole experiment, end to end.

corpus (embedded default or ``--data``) -> feature pipeline (fitted on the training split,
cached) -> every (ranker, feature set) of the config trained with early stopping on validation
AUC -> test metrics -> ``report.md``, ``metrics.json``/``.csv``, plots, saved models.

Each (ranker, feature set) result is written to a temporary directory and renamed when complete,
so an interrupted run, rerun, skips what is finished and never reads a half-written result.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from core.env import cache_root, shared_cache
from core.io import atomic_dir, write_json
from features.context import stable_hash
from pipelines.experiment import ConfigError, ExperimentConfig, find_config, load_experiment
from pipelines.rundir import RunDir



def log(msg: str) -> None:
    print(f"[econvrec] {msg}", flush=True)


# -- steps ------------------------------------------------------------------------------------------------
def load_data(cfg: ExperimentConfig):
    from core.corpus import load_corpus

    if cfg.data:
        path = cfg.resolve(cfg.data)
        log(f"loading corpus {path}")
        return load_corpus(path, policy="strict", seed=cfg.seed, split_ratios=tuple(cfg.split))
    from synth import default_corpus_dir

    path = default_corpus_dir(scale=cfg.scale, seed=cfg.seed, cache_root=cache_root())
    log(f"embedded default corpus ({cfg.scale}, seed {cfg.seed}) at {path}")
    return load_corpus(path, policy="strict", seed=cfg.seed, split_ratios=tuple(cfg.split))


def build_features(cfg: ExperimentConfig, corpus, run: RunDir, engine=None):
    from features.distributed import fit_transform
    from features.materialize import FeaturePipeline
    from features.spec import load_spec

    spec = load_spec(cfg.resolve(cfg.feature_spec))
    store = cache_root() / "features" / corpus.fingerprint()
    pipe = FeaturePipeline(spec, store, cache=shared_cache())
    t0 = time.perf_counter()
    table = fit_transform(pipe, corpus, engine)
    log(f"features: {len(table.rows):,} candidate rows, {len(table.arrays)} columns in {time.perf_counter() - t0:.1f}s")
    pipe.save(run.features)
    save_reference(corpus, run.reference)
    return pipe, table


def save_reference(corpus, directory: Path) -> None:
    """Users, items and behaviour logs the scorer looks up known ids in (parquet)."""
    if (directory / "COMPLETE").exists():
        return
    with atomic_dir(directory) as tmp:
        for name in ("users", "items", "item_attrs", "behaviors"):
            getattr(corpus, name).to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / "COMPLETE").write_text(corpus.fingerprint())


def train_one(model: str, feature_set: str, hparams: dict, cfg: ExperimentConfig, pipe, table, run: RunDir,
              seed: int, dir_seed: int | None = None, train_workers: int = 1) -> dict:
    """Train, evaluate on the test split and write the pair's result directory. ``dir_seed`` None:
    the run's first seed (model saved for scoring); else a further seed (predictions and metrics only)."""
    from core.metrics import evaluate
    from rankers.registry import build

    space = pipe.feature_space(feature_set)
    params = {**hparams}
    ranker = build(model, space, config=cfg.resolve(cfg.models_dir), **params)
    if "seed" in ranker.hparams:
        ranker.hparams["seed"] = seed
    from rankers.base import KerasRanker

    multi = {"train_workers": train_workers} if train_workers > 1 and isinstance(ranker, KerasRanker) else {}
    t0 = time.perf_counter()
    ranker.fit(table.X(space, "train"), table.labels[table.mask("train")],
               table.X(space, "valid"), table.labels[table.mask("valid")], table.groups[table.mask("valid")],
               groups_train=table.groups[table.mask("train")], **multi)
    train_s = time.perf_counter() - t0
    test = table.mask("test")
    t1 = time.perf_counter()
    scores = ranker.predict(table.X(space, "test"))
    score_s = time.perf_counter() - t1
    metrics = evaluate(table.labels[test], scores, table.groups[test])
    result = {"model": model, "feature_set": feature_set, "seed": seed, **metrics, "train_s": train_s,
              "score_rows_per_s": float(test.sum() / max(score_s, 1e-9)), "n_fields": len(space.fields),
              "history": ranker.history_}
    out = run.result_dir(model, feature_set, dir_seed)
    with atomic_dir(out) as tmp:
        if dir_seed is None:
            ranker.save(tmp / run.model_dir(model, feature_set).name)
        rows = table.rows.loc[test, ["sample_id", "item_id", "label"]].reset_index(drop=True)
        rows["score"] = scores
        rows.to_parquet(tmp / run.predictions(model, feature_set).name, index=False)
        write_json(tmp / run.result_json(model, feature_set).name, result)
    return result


def run(cfg: ExperimentConfig, out: Path | None = None, show_report: bool = True, engine=None,
        train_workers: int = 1) -> Path:
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    t_start = time.perf_counter()
    corpus = load_data(cfg)
    tag = Path(cfg.data).name if cfg.data else cfg.scale
    run = RunDir(out) if out else RunDir.default(cfg.name, tag, cfg.seed)
    run.root.mkdir(parents=True, exist_ok=True)
    run.config.write_text(yaml.safe_dump(cfg.model_dump(), allow_unicode=True, sort_keys=False))
    shutil.copyfile(cfg.resolve(cfg.feature_spec), run.feature_spec)
    log(f"run directory {run.root}")
    pipe, table = build_features(cfg, corpus, run, engine)
    for fs in {fs for _, fs, _ in cfg.pairs()}:
        pipe.spec.entries_for(fs)  # unknown set -> clear error before any training
    results = []
    pairs = cfg.pairs()
    seeds = cfg.training_seeds()
    jobs = [(seed, pair) for seed in seeds for pair in pairs]  # seed-major: the first seed's table completes first
    for i, (seed, (model, fs, hp)) in enumerate(jobs, 1):
        dir_seed = None if seed == seeds[0] else seed
        what = f"{model} on {fs}" + (f" (seed {seed})" if len(seeds) > 1 else "")
        key = stable_hash([model, fs, hp, seed, pipe.state, _models_config_text(cfg, model)])
        res_file = run.result_json(model, fs, dir_seed)
        if res_file.exists() and json.loads(res_file.read_text()).get("key") == key:
            log(f"[{i}/{len(jobs)}] {what}: finished earlier, reusing")
            results.append({**json.loads(res_file.read_text()), "seed": seed})
            continue
        log(f"[{i}/{len(jobs)}] training {what} ...")
        res = train_one(model, fs, hp, cfg, pipe, table, run, seed, dir_seed, train_workers)
        res["key"] = key
        write_json(res_file, res)
        log(f"    test AUC {res['auc']:.4f}  Top@1 {res['top@1']:.4f}  ({res['train_s']:.1f}s)")
        results.append(res)
    from pipelines.report import write_report

    insights = what_the_data_allows(cfg, corpus, pipe, table, run, [r for r in results if r.get("seed", seeds[0]) == seeds[0]])
    report = write_report(run, results, corpus, cfg, elapsed_s=time.perf_counter() - t_start, pipe=pipe,
                          insights=insights)
    if show_report:
        print(report)
    log(f"done in {time.perf_counter() - t_start:.0f}s; outputs in {run.root}")
    return run.root


def what_the_data_allows(cfg: ExperimentConfig, corpus, pipe, table, run: RunDir, results: list[dict]) -> dict:
    """Permutation importance per feature group of the best model (test AUC, first seed) and, on the
    embedded simulated corpus, the simulator's learnable ceiling on the same test split."""
    from pipelines.diagnostics import learnable_ceiling, permutation_importance
    from rankers.registry import load

    out: dict = {}
    if results:
        best = max(results, key=lambda r: r["auc"])
        ranker = load(run.model_dir(best["model"], best["feature_set"]))
        imp = permutation_importance(ranker, table, pipe.feature_space(best["feature_set"]), repeats=3, seed=cfg.seed)
        out["importance"] = {"model": best["model"], "feature_set": best["feature_set"],
                             "groups": imp.to_dict(orient="records")}
    if not cfg.data:
        from synth import default_corpus_dir

        out["ceiling"] = learnable_ceiling(default_corpus_dir(scale=cfg.scale, seed=cfg.seed, cache_root=cache_root()),
                                           corpus=corpus)
    return out


def _models_config_text(cfg: ExperimentConfig, model: str) -> str:
    p = cfg.resolve(cfg.models_dir) / f"{model}.yaml"
    return p.read_text() if p.exists() else ""


# -- command line ----------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> tuple[ExperimentConfig, Path | None, object, int]:
    ap = argparse.ArgumentParser(
        prog="python -m pipelines.run",
        description="Run a named experiment (configs/<name>.yaml): features, rankers, evaluation, report.",
    )
    ap.add_argument("experiment", nargs="?", default="econvrec_rank", help="experiment name (default econvrec_rank)")
    ap.add_argument("--config", help="experiment YAML file (overrides the name)")
    ap.add_argument("--data", help="corpus directory in the project's format (default: embedded synthetic corpus)")
    ap.add_argument("--models", help="comma-separated rankers to run (subset of the config, or any registered)")
    ap.add_argument("--feature-sets", help="comma-separated feature sets (replace the config's)")
    ap.add_argument("--scale", choices=["tiny", "default", "full"], help="size of the embedded corpus")
    ap.add_argument("--seed", type=int, help="seed for corpus generation, splits and training")
    ap.add_argument("--seeds", help="comma-separated training seeds, e.g. 0,1,2: each (model, feature set) is "
                                    "trained once per seed on the same corpus and split (default: --seed)")
    ap.add_argument("--out", help="run directory (default runs/<name>-<scale>-seed<seed>)")
    ap.add_argument("--engine", choices=["local", "dask"], default="local", help="feature engine (default local)")
    ap.add_argument("--workers", type=int, default=2, help="--engine dask: worker processes of a local cluster")
    ap.add_argument("--scheduler", help="--engine dask: address of a running Dask scheduler (tcp://host:8786)")
    ap.add_argument("--train-workers", type=int, default=1, help="Keras rankers: train with N localhost processes "
                                                                "under MultiWorkerMirroredStrategy (default 1)")
    args = ap.parse_args(argv)
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: must be at least 1")
    if args.train_workers < 1:
        raise ConfigError(f"--train-workers {args.train_workers}: must be at least 1")
    cfg = load_experiment(Path(args.config) if args.config else find_config(args.experiment))
    upd: dict = {}
    if args.data:
        if not Path(args.data).is_dir():
            raise ConfigError(f"--data {args.data}: not a directory")
        upd["data"] = str(Path(args.data).resolve())
    if args.scale:
        upd["scale"] = args.scale
    if args.seed is not None:
        upd["seed"] = args.seed
    if args.seeds:
        try:
            upd["seeds"] = [int(s) for s in args.seeds.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--seeds {args.seeds}: expected comma-separated integers, e.g. 0,1,2") from None
        if any(s < 0 for s in upd["seeds"]):
            raise ConfigError(f"--seeds {args.seeds}: seeds must be non-negative")
    cfg = cfg.model_copy(update=upd)
    runs = cfg.runs
    if args.models:
        from rankers.registry import available

        wanted = [m.strip() for m in args.models.split(",") if m.strip()]
        unknown = [m for m in wanted if m not in available()]
        if unknown:
            raise ConfigError(f"--models: unknown ranker(s) {unknown}; available: {', '.join(available())}")
        in_cfg = {r.model: r for r in runs}
        default_sets = sorted({fs for r in runs for fs in r.feature_sets})[-1:] or ["all"]
        runs = [in_cfg[m] if m in in_cfg else type(runs[0])(model=m, feature_sets=default_sets) for m in wanted]
    if args.feature_sets:
        sets = [s.strip() for s in args.feature_sets.split(",") if s.strip()]
        runs = [r.model_copy(update={"feature_sets": sets}) for r in runs]
    cfg = cfg.model_copy(update={"runs": runs})
    from features.distributed import EngineOptions

    engine = EngineOptions(args.engine, args.workers, args.scheduler)
    return cfg, Path(args.out) if args.out else None, engine, args.train_workers


def main(argv: list[str] | None = None) -> int:
    from features.spec import SpecError

    try:
        cfg, out, engine, train_workers = parse_args(argv)
        run(cfg, out, engine=engine, train_workers=train_workers)
    except (ConfigError, SpecError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # CorpusError and other input problems carry their own readable message
        if type(e).__name__ in ("CorpusError",):
            print(f"error: {e}", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
