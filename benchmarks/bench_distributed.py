"""BF+IF feature materialisation: in-process vs Dask, and a corpus k times larger on Dask with bounded workers.

    python benchmarks/bench_distributed.py [--scale full] [--workers 2] [--replicas 4] \
        [--memory-limit 3GiB] [--out benchmarks/results/distributed.json]

Each measurement runs in its own process (peak RSS = that process's ru_maxrss): fit + transform
of the BF and IF features of configs/features/econvrec.yaml from an empty feature store:

* ``local``: the in-process engine (``FeaturePipeline.fit_transform``);
* ``dask``: ``features.distributed.materialize`` on a LocalCluster of ``--workers`` single-threaded
  processes, peak RSS of the client and of each worker (``client.run``);
* ``dask xK``: the corpus replicated ``--replicas`` times (samples, dialogues, users and logs under
  new ids; the item knowledge base shared), workers bounded by ``--memory-limit`` (Dask pauses a
  worker at 80% of it and restarts it at 95%). What the in-process path would need for it is
  projected from its measured peak (memory grows with rows: the raw and encoded tables are held
  whole), not measured.

Training throughput (``--training-only`` runs only this part, written to ``--train-out``): DeepFM
on the BF+IF features of the tiny corpus, the training rows tiled ``--train-repeat`` times (throughput
does not depend on the values), ``jit_compile`` off in both, trained with 1 process (``fit``) and with
``--train-workers`` localhost processes under ``MultiWorkerMirroredStrategy`` (``fit(...,
train_workers=N)``). rows/s are over the epochs after the first (tracing and, for N workers, process
start excluded); the wall time of the whole fit, start-up included, is reported beside. A projection
of where more workers pay off is printed from the measured per-step times.

The machine is shared: the load average before and after each measurement is in the JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import format_table, write_results  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_peak_mb() -> float:
    """VmHWM: the peak of this address space. ru_maxrss would not do for a worker: Linux carries it
    over fork + exec, so a worker would report at least the client's peak at spawn time."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bf_if_spec():
    from features.spec import load_spec, parse_spec

    raw = load_spec("configs/features/econvrec.yaml").to_dict()
    raw["features"] = [f for f in raw["features"] if f["group"] in ("BF", "IF")]
    raw["feature_sets"] = {"BF+IF": ["BF", "IF"]}
    return parse_spec(raw, "BF+IF")


def replicate(corpus, k: int):
    """``corpus`` with its samples, dialogues, users and logs k times under new ids (items shared)."""
    import pandas as pd

    from core.corpus import Corpus

    if k == 1:
        return corpus
    keyed = {"samples": ("sample_id", "session_id", "user_id"), "candidates": ("sample_id",),
             "sessions": ("session_id", "user_id"), "turns": ("session_id",), "turn_items": ("session_id",),
             "pref_words": ("session_id",), "users": ("user_id",), "behaviors": ("user_id",)}
    tables = {}
    for name, cols in keyed.items():
        df = getattr(corpus, name)
        copies = []
        for r in range(k):
            c = df.copy()
            for col in cols:
                c[col] = c[col] + (f"#r{r}" if r else "")
            copies.append(c)
        tables[name] = pd.concat(copies, ignore_index=True)
    # candidates follow samples' order: sort both by the replicated sample order
    order = {s: i for i, s in enumerate(tables["samples"]["sample_id"])}
    cand = tables["candidates"]
    tables["candidates"] = cand.iloc[cand["sample_id"].map(order).argsort(kind="stable")].reset_index(drop=True)
    return Corpus(items=corpus.items, item_attrs=corpus.item_attrs, **tables)


def measure_one(engine: str, scale: str, workers: int, replicas: int, memory_limit: str) -> dict:
    from core.corpus import load_corpus
    from features.materialize import FeaturePipeline
    from synth.generate import default_corpus_dir

    corpus = replicate(load_corpus(default_corpus_dir(scale=scale, seed=0)), replicas)
    n = len(corpus.candidates)
    spec = bf_if_spec()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as store:
        pipe = FeaturePipeline(spec, Path(store) / "store", cache=Path(store) / "cache", show_progress=False)
        if engine == "local":
            t0 = time.perf_counter()
            table = pipe.fit_transform(corpus)
            secs = time.perf_counter() - t0
            workers_mb: list[float] = []
        else:
            from features.distributed import DaskEngine, materialize

            with DaskEngine(workers=workers, memory_limit=memory_limit) as client:
                t0 = time.perf_counter()
                parted = materialize(pipe, corpus, client)
                secs = time.perf_counter() - t0
                workers_mb = sorted(client.run(worker_peak_mb).values())
            table = parted
    return {"engine": engine if replicas == 1 else f"{engine} x{replicas}", "scale": scale, "replicas": replicas,
            "rows": n, "workers": workers if engine == "dask" else 0,
            "memory_limit": memory_limit if engine == "dask" else "", "seconds": secs, "rows_per_s": n / secs,
            "client_peak_mb": peak_rss_mb(), "worker_peak_mb": workers_mb,
            "n_rows_out": int(table.n_rows), "load_before": load, "load_after": os.getloadavg()}


def measure_training(workers: int, repeat: int, epochs: int) -> list[dict]:
    """DeepFM training throughput with 1 and ``workers`` processes (see the module docstring)."""
    import numpy as np

    from core.corpus import load_corpus
    from features.materialize import FeaturePipeline
    from rankers.registry import build
    from synth.generate import default_corpus_dir

    corpus = load_corpus(default_corpus_dir(scale="tiny", seed=0))
    with tempfile.TemporaryDirectory() as store:
        pipe = FeaturePipeline(bf_if_spec(), Path(store) / "store", cache=Path(store) / "cache", show_progress=False)
        table = pipe.fit_transform(corpus)
    space = pipe.feature_space("BF+IF")
    X, y, _ = table.part("train", space)
    X = {k: np.concatenate([v] * repeat) for k, v in X.items()}
    y = np.concatenate([y] * repeat)
    X_va, y_va, g_va = table.part("valid", space)
    hp = {"epochs": epochs, "patience": epochs, "seed": 0, "jit_compile": False}
    rows = []
    for n in (1, workers):
        ranker = build("deepfm", space, **hp)
        load = os.getloadavg()
        t0 = time.perf_counter()
        ranker.fit(X, y, X_va, y_va, g_va, train_workers=n)
        wall = time.perf_counter() - t0
        h = ranker.history_
        steps = len(y) // int(ranker.hparams["batch_size"])
        steady = sum(h["train_seconds"][1:])
        rows.append({"engine": f"train x{n}", "train_workers": n, "rows": int(len(y)),
                     "batch_size": int(ranker.hparams["batch_size"]), "epochs": len(h["epoch"]),
                     "steady_seconds": steady, "rows_per_s": steps * int(ranker.hparams["batch_size"]) * (len(h["epoch"]) - 1) / steady,
                     "step_ms": 1000 * steady / (steps * (len(h["epoch"]) - 1)), "fit_wall_s": wall,
                     "n_params": int(ranker.model.count_params()), "best_epoch": h["best_epoch"][0],
                     "load_before": load, "load_after": os.getloadavg()})
        print(f"train x{n}: {rows[-1]['rows_per_s']:,.0f} rows/s, fit {wall:.1f}s", flush=True)
    return rows


def training_report(rows: list[dict]) -> dict:
    """Print the training table and the projection; returns the projection figures."""
    one, many = rows[0], rows[-1]
    n = many["train_workers"]
    for r in rows:
        r["vs_one"] = r["rows_per_s"] / one["rows_per_s"]
    print("\n" + format_table(rows, [("training", "engine", "<9"), ("rows", "rows", ",d"), ("batch", "batch_size", "d"),
                                      ("step ms", "step_ms", ".1f"), ("rows/s", "rows_per_s", ",.0f"),
                                      ("vs 1", "vs_one", ".2f"), ("fit wall s", "fit_wall_s", ".1f"),
                                      ("params", "n_params", ",d")]))
    # On N hosts with their own cores a step would take t1/N (compute split) + c (the collectives and
    # the per-step coordination). c is bounded above by what the shared cores show: t_N - t1/N.
    t1, tn = one["step_ms"], many["step_ms"]
    overhead = max(tn - t1 / n, 0.0)
    per_row = t1 / one["batch_size"]
    breakeven = overhead * n / (n - 1) / per_row if per_row > 0 else float("nan")
    proj = {"step_ms_1": t1, f"step_ms_{n}": tn, "overhead_ms_upper_bound": overhead, "ms_per_row_1": per_row,
            "breakeven_global_batch_rows": breakeven,
            "projected_speedup_at_batch": {str(b): (per_row * b) / (per_row * b / n + overhead)
                                           for b in (1024, 8192, 65536)}}
    print(f"projection for {n} workers on separate hosts: step = {per_row:.4f} ms/row x batch / {n} + "
          f"<= {overhead:.1f} ms collectives; pays off above a global batch of ~{breakeven:,.0f} rows "
          f"(speed-up at 1k/8k/64k rows: " + "/".join(f"{v:.2f}" for v in proj["projected_speedup_at_batch"].values()) + ")")
    return proj


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="full", choices=["tiny", "default", "full"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--replicas", type=int, default=4, help="the large corpus: this many times --scale (0: skip)")
    ap.add_argument("--memory-limit", default="3GiB", help="per-worker bound of the large run")
    ap.add_argument("--only", default="local,dask,large", help="which measurements")
    ap.add_argument("--out", default="benchmarks/results/distributed.json")
    ap.add_argument("--rows-from", action="append", default=[], metavar="FILE[:ENGINE]",
                    help="reuse the measured rows of an earlier result file (only ENGINE's, e.g. "
                         "distributed.json:local for the in-process reference of a --only large run)")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one measurement, print JSON
    ap.add_argument("--training-only", action="store_true", help="only the training throughput part")
    ap.add_argument("--train-workers", type=int, default=2)
    ap.add_argument("--train-repeat", type=int, default=10, help="tile the tiny corpus' training rows this many times")
    ap.add_argument("--train-epochs", type=int, default=3)
    ap.add_argument("--train-out", default="benchmarks/results/distributed_training.json")
    args = ap.parse_args()
    if args.training_only:
        rows = measure_training(args.train_workers, args.train_repeat, args.train_epochs)
        proj = training_report(rows)
        print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
        write_results(args.train_out, {"rows": rows, "projection": proj, "load_end": os.getloadavg(),
                                       "corpus": f"tiny BF+IF, training rows x{args.train_repeat}"})
        return
    if args.one:
        engine, replicas, limit = json.loads(args.one)
        print("RESULT " + json.dumps(measure_one(engine, args.scale, args.workers, replicas, limit)), flush=True)
        return
    plan = {"local": ("local", 1, "auto"), "dask": ("dask", 1, "auto"),
            "large": ("dask", args.replicas, args.memory_limit)}
    rows = []
    for ref in args.rows_from:
        path, _, engine = ref.partition(":")
        rows += [r for r in json.loads(Path(path).read_text())["rows"] if not engine or r["engine"] == engine]
    for name in filter(None, args.only.split(",")):
        if name == "large" and args.replicas < 1:
            continue
        cmd = [sys.executable, __file__, "--scale", args.scale, "--workers", str(args.workers),
               "--one", json.dumps(plan[name])]
        out = subprocess.run(cmd, capture_output=True, text=True)
        line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
        if not line:
            print(out.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"measurement {name} failed (exit {out.returncode})")
        rows.append(json.loads(line[0][len("RESULT "):]))
        print(f"{name}: {rows[-1]['seconds']:.1f}s", flush=True)
    local = next((r for r in rows if r["engine"] == "local"), None)
    for r in rows:
        r["vs_local_rows_per_s"] = r["rows_per_s"] / local["rows_per_s"] if local else float("nan")
        r["workers_mb"] = " ".join(f"{m:.0f}" for m in r["worker_peak_mb"]) or "-"
        r["local_projection_mb"] = local["client_peak_mb"] * r["replicas"] if local else float("nan")
    print("\n" + format_table(rows, [("engine", "engine", "<9"), ("rows", "rows", ",d"), ("s", "seconds", ".1f"),
                                      ("rows/s", "rows_per_s", ",.0f"), ("vs local", "vs_local_rows_per_s", ".2f"),
                                      ("client MB", "client_peak_mb", ".0f"), ("worker MB", "workers_mb", ">10"),
                                      ("limit", "memory_limit", ">6"),
                                      ("in-process MB (proj.)", "local_projection_mb", ".0f")]))
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    write_results(args.out, {"rows": rows, "load_end": os.getloadavg(), "scale": args.scale})


if __name__ == "__main__":
    main()
