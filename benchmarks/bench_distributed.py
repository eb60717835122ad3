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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="full", choices=["tiny", "default", "full"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--replicas", type=int, default=4, help="the large corpus: this many times --scale (0: skip)")
    ap.add_argument("--memory-limit", default="3GiB", help="per-worker bound of the large run")
    ap.add_argument("--only", default="local,dask,large", help="which measurements")
    ap.add_argument("--out", default="benchmarks/results/distributed.json")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one measurement, print JSON
    args = ap.parse_args()
    if args.one:
        engine, replicas, limit = json.loads(args.one)
        print("RESULT " + json.dumps(measure_one(engine, args.scale, args.workers, replicas, limit)), flush=True)
        return
    plan = {"local": ("local", 1, "auto"), "dask": ("dask", 1, "auto"),
            "large": ("dask", args.replicas, args.memory_limit)}
    rows = []
    for name in args.only.split(","):
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
