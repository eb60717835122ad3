"""Keras rankers trained under ``tf.distribute.MultiWorkerMirroredStrategy`` (data parallel, synchronous).

``ranker.fit(..., train_workers=N)`` (``--train-workers N`` on ``pipelines.run``) writes the packed
training and validation arrays once to a temporary directory and starts N worker processes on this
host (``python -m rankers.distribute worker DIR``), each with a ``TF_CONFIG`` naming all N
``localhost`` ports (free ones, picked here) and its own index. Every worker:

* creates the strategy before any other TensorFlow op (TensorFlow requires it), builds the model in
  its scope and runs the one training loop, ``rankers.training.train_keras``, unchanged;
* reads the same in-memory table; the dataset of global batches (same seeded permutation per epoch
  as in one process) is sharded by data: each global batch of ``batch_size`` rows is split between
  the workers, gradients are all-reduced, so a step is the single-process step on N processes;
* scores the same validation rows after each epoch; all workers hold identical weights, so they
  reach the same early-stopping decision and best epoch (no worker leaves a collective the others
  wait in), and restore the same best weights.

Worker 0 (the chief) writes the best weights and the history; the calling process loads them into
its own, undistributed model, so predicting and saving are as after ``fit``. XLA (``jit_compile``)
is off under the strategy: the CPU collectives do not compile.

On real hosts, run ``python -m rankers.distribute worker DIR`` on each host yourself with
its own ``TF_CONFIG`` (see the README, "Scaling out"); DIR must be on a shared filesystem.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from core.io import write_json  # also prepares the environment before TensorFlow loads (core.env)

WORKER_TIMEOUT_S = 3600.0


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on localhost now (bound to port 0, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("localhost", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tf_config(ports: list[int], index: int, host: str = "localhost") -> str:
    """The ``TF_CONFIG`` of worker ``index`` in a cluster of ``host:port`` workers."""
    return json.dumps({"cluster": {"worker": [f"{host}:{p}" for p in ports]},
                       "task": {"type": "worker", "index": int(index)}})


def _save_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})


def _load_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def fit_multiworker(ranker, train: Mapping[str, np.ndarray], y: np.ndarray, valid=None, *, workers: int,
                    verbose: int = 0, workdir: str | os.PathLike | None = None) -> dict[str, list[float]]:
    """Train ``ranker`` (a ``KerasRanker`` whose model is built) on packed arrays with ``workers``
    localhost processes; loads the chief's best weights into ``ranker.model``; returns the history."""
    if workers < 2:
        raise ValueError(f"fit_multiworker: workers must be at least 2, got {workers}")
    with tempfile.TemporaryDirectory(prefix="econvrec-mw-", dir=workdir) as tmp:
        d = Path(tmp)
        ranker.space.save(d / "space")
        (d / "job.json").write_text(json.dumps({"name": ranker.name, "hparams": ranker.hparams,
                                                "verbose": int(verbose), "has_valid": valid is not None}))
        _save_arrays(d / "train.npz", {**train, "__y__": y})
        if valid is not None:
            packed, y_va, groups = valid
            extra = {} if groups is None else {"__groups__": np.unique(np.asarray(groups), return_inverse=True)[1]}
            _save_arrays(d / "valid.npz", {**packed, "__y__": y_va, **extra})
        ports = free_ports(workers)
        procs, logs = [], []
        for i in range(workers):
            env = {**os.environ, "TF_CONFIG": tf_config(ports, i)}
            log = open(d / f"worker{i}.log", "w")
            logs.append(log)
            procs.append(subprocess.Popen([sys.executable, "-m", "rankers.distribute", "worker", str(d)],
                                          env=env, stdout=log, stderr=subprocess.STDOUT))
        try:
            _wait_all(procs, d)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            for log in logs:
                log.close()
        if verbose:
            print((d / "worker0.log").read_text(), end="", flush=True)
        weights = _load_arrays(d / "weights.npz")
        ranker.model.set_weights([weights[k] for k in sorted(weights)])
        return json.loads((d / "history.json").read_text())


def _wait_all(procs: list[subprocess.Popen], d: Path) -> None:
    """Wait for every worker; when one fails, stop the rest (they would wait for it forever)."""
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    while any(p.poll() is None for p in procs):
        failed = [i for i, p in enumerate(procs) if p.returncode not in (None, 0)]
        if failed or time.monotonic() > deadline:
            i = failed[0] if failed else 0
            tail = (d / f"worker{i}.log").read_text()[-3000:]
            why = f"exit {procs[i].returncode}" if failed else f"no result after {WORKER_TIMEOUT_S:.0f}s"
            raise RuntimeError(f"multi-worker training: worker {i} failed ({why}); its log ends:\n{tail}")
        time.sleep(0.2)
    for i, p in enumerate(procs):
        if p.returncode != 0:
            tail = (d / f"worker{i}.log").read_text()[-3000:]
            raise RuntimeError(f"multi-worker training: worker {i} failed (exit {p.returncode}); its log ends:\n{tail}")


def run_worker(directory: str | os.PathLike) -> None:
    """One worker of :func:`fit_multiworker`; its ``TF_CONFIG`` names the cluster and its index."""
    import tensorflow as tf

    # First TF op of the process: the strategy reads TF_CONFIG and starts this worker's server.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    from rankers.base import KerasRanker
    from rankers.registry import get
    from rankers.training import make_train_dataset, train_keras
    from core.space import FeatureSpace

    d = Path(directory)
    job = json.loads((d / "job.json").read_text())
    hparams: dict[str, Any] = {**job["hparams"], "jit_compile": False}
    ranker: KerasRanker = get(job["name"])(FeatureSpace.load(d / "space"), **hparams)
    train = _load_arrays(d / "train.npz")
    y = train.pop("__y__")
    valid = None
    if job["has_valid"]:
        packed = _load_arrays(d / "valid.npz")
        y_va, groups = packed.pop("__y__"), packed.pop("__groups__", None)
        valid = (packed, y_va, groups)
    with strategy.scope():
        ranker.build_model()
    ds, steps = make_train_dataset(train, y, int(hparams["batch_size"]), int(hparams["seed"]))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    history = train_keras(ranker.model, hparams, {}, np.empty(0), valid, predict_fn=ranker._predict_packed,
                          verbose=job["verbose"], train_dataset=(ds.with_options(options), steps))
    weights = ranker.model.get_weights()  # every worker reads (a synced read may be collective)
    if strategy.cluster_resolver.task_id == 0:
        _save_arrays(d / "weights.npz.tmp.npz", {f"w{i:05d}": w for i, w in enumerate(weights)})
        os.replace(d / "weights.npz.tmp.npz", d / "weights.npz")
        write_json(d / "history.json", history)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "worker":
        print("usage: python -m rankers.distribute worker DIR  (with TF_CONFIG set)", file=sys.stderr)
        return 2
    if "TF_CONFIG" not in os.environ:
        print("error: TF_CONFIG is not set (see README, 'Scaling out')", file=sys.stderr)
        return 2
    run_worker(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
