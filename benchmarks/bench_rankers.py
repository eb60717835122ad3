#!/usr/bin/env python
"""Benchmark our DeepFM / DCN / FGCNN against DeepCTR's on the same data and hyperparameters.

    python benchmarks/bench_rankers.py                       # (a) synthetic FM-teacher CTR table
    python benchmarks/bench_rankers.py --npz DIR             # (b) a saved table (rankers/data.py format:
                                                             #     DIR/feature_space.json + DIR/features.npz)
    python benchmarks/bench_rankers.py --features BF+IF      # (b) the default corpus's BF+IF features
                                                             #     (built through the main job's feature
                                                             #     cache, handed to DeepCTR as an npz table)
    python benchmarks/bench_rankers.py --no-peer             # ours only

(a) is ``synth.planted.planted_table``: ``--rows`` (200k) rows, ``--n-cat`` (24) categorical
fields with vocabularies from 10 to ``--max-vocab`` (1000) ids, 4 dense fields, 1 sequence field
(length 8, vocabulary 1000), labels drawn from a known FM teacher whose pairwise term is scaled by
``--interaction-weight`` (0.5); the teacher's own test AUC is reported as the ceiling.

DeepCTR (PyPI ``deepctr``) is never a project dependency: it lives in its own virtual environment
(``--peer-venv``, default ``.cache/deepctr-peer-venv``), created on first use. By default that venv
reuses the project's TensorFlow / tf-keras (a ``.pth`` file pointing at this interpreter's
site-packages) and gets ``pip install --no-deps deepctr``, so both sides run the very same
TensorFlow build; ``--peer-full-install`` instead runs ``pip install deepctr tensorflow~=2.21.0
tf-keras~=2.21.0 h5py requests`` in it. DeepCTR runs in a subprocess (``benchmarks/deepctr_peer.py``)
that reads the table from disk and the hyperparameters from JSON and writes its results as JSON.

Protocol, identical on both sides: Adam, binary cross-entropy, the same embedding size, hidden
units, cross layers (4, full-rank matrices), FGCNN convolution settings, batch size, learning rate,
epochs and seed, no L2, no dropout (ours: the class defaults plus these, never the YAML files); after every epoch the validation rows are scored and the best epoch's weights are kept;
then the test rows are scored. Reported per model and side: test AUC and logloss, training
throughput (train rows / fastest training-only epoch seconds, epochs 2.. to skip graph
tracing; ``fit_sps`` = rows x epochs / whole fit wall time incl. tracing and validation), scoring
throughput (test rows / seconds for one warm ``predict``), and our/DeepCTR ratios.

Roofline: the forward FLOPs of one row are counted by TensorFlow's graph profiler on our model
(the same math as DeepCTR's), training FLOP/s = rows/s x 3 x that, and the ceiling is the float32
forward+backward GFLOP/s of a 1024x512x512 Dense layer measured in the same run. ``% peak`` says how
much of the machine a side uses, and so whether a 2x speed-up over DeepCTR is possible at all
with the same arithmetic. The table is printed and written to ``benchmarks/results/rankers.json``
(``--out``).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import write_results  # noqa: E402

import core  # noqa: E402,F401  (Keras 2, quiet TensorFlow)
from core.table import FeatureTable  # noqa: E402
from core.metrics import evaluate  # noqa: E402
from rankers.registry import build  # noqa: E402
from synth.planted import planted_table  # noqa: E402

PEER_SCRIPT = ROOT / "benchmarks" / "deepctr_peer.py"
DEEPCTR_VERSION = "0.9.4"


def ensure_peer_venv(venv: Path, full_install: bool) -> Path:
    py = venv / "bin" / "python"
    if py.exists() and subprocess.run([str(py), "-c", "import deepctr"], capture_output=True,
                                      env={**os.environ, "TF_USE_LEGACY_KERAS": "1"}).returncode == 0:
        return py
    print(f"creating DeepCTR peer venv at {venv} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if full_install:
        pkgs = [f"deepctr=={DEEPCTR_VERSION}", "tensorflow~=2.21.0", "tf-keras~=2.21.0", "h5py", "requests"]
        subprocess.run([str(py), "-m", "pip", "install", "-q", *pkgs], check=True)
    else:
        import site

        peer_site = subprocess.run([str(py), "-c", "import site; print(site.getsitepackages()[0])"],
                                   capture_output=True, text=True, check=True).stdout.strip()
        Path(peer_site, "_project_tensorflow.pth").write_text(site.getsitepackages()[0] + "\n")
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", f"deepctr=={DEEPCTR_VERSION}"], check=True)
    return py


def synthetic(rows: int, n_cat: int, seed: int, max_vocab: int = 1000, interaction_weight: float = 0.5):
    sizes = np.geomspace(10, max_vocab, n_cat).astype(int).tolist()
    return planted_table(n_rows=rows, n_cat=n_cat, n_dense=4, n_seq=1, vocab_sizes=sizes, seq_len=8,
                         seq_vocab=1000, teacher_dim=4, group_size=30, interaction_weight=interaction_weight,
                         seed=seed)


def econvrec_table(feature_set: str, config: str = "econvrec_rank") -> FeatureTable:
    """The embedded default corpus's features of ``feature_set``, built exactly as the main job does
    (same spec, same cache: a second call is a cache hit)."""
    from pipelines.experiment import find_config, load_experiment
    from pipelines.rundir import RunDir
    from pipelines.run import build_features, load_data

    cfg = load_experiment(find_config(config))
    corpus = load_data(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        pipe, table = build_features(cfg, corpus, RunDir(Path(tmp)))
    return table.select(pipe.feature_space(feature_set))


def model_hparams(name: str, args) -> dict:
    hp = {"embedding_dim": args.embedding_dim, "batch_size": args.batch_size, "epochs": args.epochs,
          "learning_rate": args.learning_rate, "seed": args.seed, "dnn_dropout": 0.0, "l2_dnn": 0.0,
          "l2_embedding": 0.0, "patience": args.epochs, "dnn_precision": "float32"}
    if name == "dcn":  # full-rank cross matrices = DeepCTR's cross_parameterization='matrix'
        hp.update(n_cross=4, dnn_hidden_units=[512, 512], cross_projection_dim=None)
    else:
        hp.update(dnn_hidden_units=[256, 128])
    if name == "fgcnn":
        hp.update(conv_filters=[14, 16, 18, 20], conv_kernel_width=[7, 7, 7, 7], new_maps=[3, 3, 3, 3],
                  pooling_width=[2, 2, 2, 2])
    return hp


def steady_sps(n: int, epoch_seconds: list[float], how=np.min) -> float:
    """Rows per second of the fastest (``how``) training epoch, skipping the first (graph tracing)."""
    s = epoch_seconds[1:] if len(epoch_seconds) > 1 else epoch_seconds
    return n / float(how(s))


def add_rates(out: dict) -> dict:
    n = out["n_train"]
    out["train_sps"] = steady_sps(n, out["train_seconds"])
    out["train_cpu_sps"] = steady_sps(n, out["train_cpu_seconds"], np.median)
    out["fit_sps"] = n * len(out["train_seconds"]) / out["fit_seconds"]
    out["score_sps"] = out["n_test"] / out["score_seconds"]
    return out


def forward_flops_per_row(ranker) -> float:
    """Floating-point operations of one row's forward pass, counted by TensorFlow's graph profiler
    (MatMul, Conv2D, BatchMatMul, elementwise...; batch of 1, static shapes)."""
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    from rankers import inputs as rin

    model = ranker.model
    spec = {k: tf.TensorSpec((1,) + tuple(t.shape[1:]), t.dtype) for k, t in rin.keras_inputs(ranker.space).items()}
    graph = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec).graph
    opts = option_builder.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    return float(model_analyzer.profile(graph, options=opts).total_float_ops)


def matmul_peak_gflops(batch: int = 1024, width: int = 512, reps: int = 50) -> float:
    """The machine's practical float32 ceiling for these models: GFLOP/s of a Dense layer's
    forward + backward (three ``batch x width x width`` matmuls) in this TensorFlow build."""
    import tensorflow as tf

    x = tf.random.normal([batch, width])
    w = tf.Variable(tf.random.normal([width, width]))

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.matmul(x, w)
        return tape.gradient(y, [x, w])

    step()
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(reps):
            step()
        best = min(best, (time.perf_counter() - t) / reps)
    return 3 * 2 * batch * width * width / best / 1e9


def run_ours(name: str, table: FeatureTable, hp: dict, extra: dict) -> dict:
    Xtr, ytr, _ = table.part("train")
    Xva, yva, gva = table.part("valid")
    Xte, yte, gte = table.part("test")
    # configs/models/*.yaml + the pinned hparams (model_hparams pins everything the peer has too, so
    # edits of the YAML files cannot make the two sides differ)
    r = build(name, table.space, config=False, **{**hp, **extra})
    t = time.perf_counter()
    r.fit(Xtr, ytr, Xva, yva, gva)
    fit_s = time.perf_counter() - t
    r.predict({k: v[:1000] for k, v in Xte.items()})  # warm-up (shapes already compiled by validation)
    t = time.perf_counter()
    p = r.predict(Xte)
    score_s = time.perf_counter() - t
    m = evaluate(yte, p, gte)
    h = r.history_
    label = "ours" + "".join(f"+{k}={v}" for k, v in sorted(extra.items()))
    return add_rates({"impl": label, "model": name, "n_train": len(ytr), "n_test": len(yte),
                      "train_seconds": h["train_seconds"], "train_cpu_seconds": h["train_cpu_seconds"],
                      "val_auc": h["val_auc"], "fit_seconds": fit_s, "test_auc": m["auc"], "test_logloss": m["logloss"],
                      "test_top@1": m.get("top@1"), "score_seconds": score_s, "n_params": int(r.model.count_params()),
                      "forward_flops_per_row": forward_flops_per_row(r),
                      "hparams": {k: r.hparams[k] for k in sorted(r.hparams)}})


def run_peer(py: Path, name: str, data_dir: Path, hp: dict, timeout: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        hp_path, out_path = Path(tmp, "hp.json"), Path(tmp, "out.json")
        hp_path.write_text(json.dumps({**hp, "model": name}))
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "PYTHONPATH": ""}
        proc = subprocess.run([str(py), str(PEER_SCRIPT), str(data_dir), str(hp_path), str(out_path)],
                              capture_output=True, text=True, env=env, timeout=timeout)
        if proc.returncode != 0:
            return {"impl": "deepctr", "model": name, "error": proc.stderr[-3000:]}
        out = json.loads(out_path.read_text())
    return add_rates(out)


def train_gflops(row: dict) -> float:
    """Achieved training GFLOP/s: rows/s x 3 x forward FLOPs per row (backward ~ 2 x forward)."""
    return row["train_sps"] * 3 * row.get("forward_flops_per_row", np.nan) / 1e9


def table_text(rows: list[dict], peak_gflops: float = np.nan) -> str:
    w = max([8] + [len(r["impl"]) for r in rows])
    head = (f"{'model':8} {'impl':{w}} {'test AUC':>9} {'logloss':>8} {'train sps':>10} {'train/cpu':>10} "
            f"{'fit sps':>9} {'score sps':>10} {'params':>9} {'GFLOP/s':>8} {'% peak':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['model']:8} {r['impl']:{w}} ERROR")
            continue
        lines.append(f"{r['model']:8} {r['impl']:{w}} {r['test_auc']:9.4f} {r['test_logloss']:8.4f} "
                     f"{r['train_sps']:10.0f} {r['train_cpu_sps']:10.0f} {r['fit_sps']:9.0f} {r['score_sps']:10.0f} "
                     f"{r['n_params']:9d} {train_gflops(r):8.0f} {100 * train_gflops(r) / peak_gflops:6.0f}%")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--npz", type=Path, help="directory with feature_space.json + features.npz (else synthetic)")
    ap.add_argument("--features", metavar="SET", help="a feature set of the default corpus (e.g. BF+IF) instead of synthetic")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--n-cat", type=int, default=24)
    ap.add_argument("--max-vocab", type=int, default=1000)
    ap.add_argument("--interaction-weight", type=float, default=0.5)
    ap.add_argument("--models", default="deepfm,dcn,fgcnn")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--embedding-dim", type=int, default=16)
    ap.add_argument("--learning-rate", type=float, default=0.001)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--ours", default="[{}]",
                    help="JSON list of extra-hparam dicts for our rankers only, one row each "
                         "(e.g. '[{}, {\"dnn_precision\": \"bfloat16\"}]'); the first is compared with DeepCTR")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--peer-venv", type=Path, default=ROOT / ".cache" / "deepctr-peer-venv")
    ap.add_argument("--peer-full-install", action="store_true")
    ap.add_argument("--peer-timeout", type=int, default=3600)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rankers.json")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        if args.npz:
            data_dir = args.npz
            table = FeatureTable.load(data_dir)
            dataset = {"kind": "npz", "path": str(data_dir)}
        elif args.features:
            table = econvrec_table(args.features)
            data_dir = table.save(Path(tmp) / "table")
            dataset = {"kind": "econvrec default corpus", "feature_set": args.features,
                       "n_fields": len(table.space.fields), "n_cat": len(table.space.categorical),
                       "dense_width": table.space.dense_width, "n_seq": len(table.space.sequence)}
        else:
            table = synthetic(args.rows, args.n_cat, args.seed, args.max_vocab, args.interaction_weight)
            data_dir = table.save(Path(tmp) / "table")
            te = table.split == "test"
            dataset = {"kind": "synthetic", "rows": table.n_rows, "n_cat": args.n_cat, "n_dense": 4, "n_seq": 1,
                       "max_vocab": args.max_vocab, "interaction_weight": args.interaction_weight,
                       "teacher_test_auc": evaluate(table.labels[te], 1 / (1 + np.exp(-table.rows["teacher_logit"].to_numpy()[te])))["auc"]}
        dataset.update(n_train=int((table.split == "train").sum()), n_valid=int((table.split == "valid").sum()),
                       n_test=int((table.split == "test").sum()), positive_rate=float(np.mean(table.labels)))
        print("dataset:", json.dumps(dataset), flush=True)
        py = None if args.no_peer else ensure_peer_venv(args.peer_venv, args.peer_full_install)
        peak = matmul_peak_gflops()
        print(f"float32 Dense forward+backward ceiling on this machine: {peak:.0f} GFLOP/s", flush=True)
        variants = json.loads(args.ours)
        variants = [variants] if isinstance(variants, dict) else variants
        rows, summary = [], {}
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            hp = model_hparams(name, args)
            ours_rows = []
            for extra in variants:
                ours_rows.append(run_ours(name, table, hp, extra))
                rows.append(ours_rows[-1])
                print(table_text([ours_rows[-1]], peak).splitlines()[-1], flush=True)
            if py is not None:
                peer = run_peer(py, name, data_dir, {**hp, "predict_batch_size": 16384, "n_cross": 4}, args.peer_timeout)
                # same model math on both sides, so the same FLOPs per row (DeepCTR's FGCNN differs
                # slightly: see its parameter count)
                peer["forward_flops_per_row"] = ours_rows[0]["forward_flops_per_row"]
                rows.append(peer)
                print(table_text([peer], peak).splitlines()[-1] if "error" not in peer else peer["error"], flush=True)
                if "error" not in peer:
                    for ours in ours_rows:
                        summary[f"{name} {ours['impl']}"] = {
                            "auc_diff": ours["test_auc"] - peer["test_auc"],
                            "train_speedup": ours["train_sps"] / peer["train_sps"],
                            "train_cpu_speedup": ours["train_cpu_sps"] / peer["train_cpu_sps"],
                            "fit_speedup": ours["fit_sps"] / peer["fit_sps"],
                            "score_speedup": ours["score_sps"] / peer["score_sps"],
                            "peer_percent_of_peak": 100 * train_gflops(peer) / peak,
                            "percent_of_peak_needed_for_2x": 200 * train_gflops(peer) / peak}
    text = table_text(rows, peak)
    print("\n" + text)
    for name, s in summary.items():
        print(f"{name} vs deepctr: AUC {s['auc_diff']:+.4f}  train x{s['train_speedup']:.2f}  "
              f"train/cpu x{s['train_cpu_speedup']:.2f}  fit x{s['fit_speedup']:.2f}  score x{s['score_speedup']:.2f}  "
              f"(DeepCTR runs at {s['peer_percent_of_peak']:.0f}% of the float32 ceiling; 2x it would need "
              f"{s['percent_of_peak_needed_for_2x']:.0f}%)")
    import tensorflow as tf

    result = {"dataset": dataset, "float32_peak_gflops": peak, "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
              "summary": summary, "table": text,
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "tensorflow": tf.__version__,
                          "loadavg_at_end": os.getloadavg()}}
    write_results(args.out, result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
