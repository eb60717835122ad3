"""Feature materialisation on Dask (``dask.distributed``): the same specs and extractors, partition-wise.

``DaskEngine(workers=N)`` starts a ``LocalCluster`` of N single-threaded worker processes;
``DaskEngine(scheduler="tcp://host:8786")`` connects to a running cluster (``dask scheduler`` /
``dask worker``, dask-kubernetes, dask-yarn). ``materialize(pipe, corpus, client)`` then:

1. fits each kind's state on the client, exactly as the in-process engine does (the training
   split; vocabularies of keywords, GloVe, the knowledge graph), so fitted resources are identical;
2. computes the raw columns partition-wise on the workers: a partition is a run of whole samples
   with a sub-corpus holding their dialogues, users and behaviour logs (the item knowledge base is
   scattered to every worker once), so features that read a candidate list or a dialogue stay
   exact; each partition is one parquet part under ``<store>/parts/raw-<key>/``;
3. fits vocabularies and numeric statistics on the training rows as Dask reductions: value counts
   are summed over partitions; a numeric column's training values are read back one column at a
   time, in row order, so the statistics are the in-process ones bit for bit;
4. encodes each raw part on the workers into ``<store>/parts/table-<key>/`` (``core.parts``).

The result equals the in-process table value for value (``tests/test_distributed.py``). A worker
that dies mid-run loses nothing: its tasks are rerun elsewhere (the scheduler's
``allowed-failures``) and parts are written atomically, so a half-written part never exists.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.corpus import Corpus
from core.parts import ROW_PREFIX, PartedTable, part_name, write_manifest, write_part
from features.context import stable_hash
from features.materialize import FeaturePipeline, _partitions

SHARED_TABLES = ("items", "item_attrs")  # the knowledge base: every partition reads all of it
IN_FLIGHT_PER_WORKER = 2  # sub-corpora shipped ahead of the workers: bounds the client's memory


@dataclass
class DaskEngine:
    """A Dask client for the run: a local cluster of ``workers`` processes, or ``scheduler``'s.

    ``memory_limit`` is per worker (Dask's nanny pauses a worker at 80% and restarts it at 95%).
    """

    workers: int = 2
    scheduler: str | None = None
    memory_limit: str | int = "auto"
    cluster: object = field(default=None, init=False, repr=False)
    client: object = field(default=None, init=False, repr=False)

    def __enter__(self):
        from distributed import Client, LocalCluster

        if self.scheduler:
            self.client = Client(self.scheduler)
        else:
            if self.workers < 1:
                raise ValueError(f"--workers must be at least 1, not {self.workers}")
            self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                        memory_limit=self.memory_limit, dashboard_address=":0")
            self.client = Client(self.cluster)
        return self.client

    def __exit__(self, *exc) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def sub_corpus(corpus: Corpus, sample_ids: np.ndarray) -> dict[str, pd.DataFrame]:
    """The tables of ``corpus`` a run of whole samples needs, except the shared knowledge base:
    the samples, their candidates, their sessions' dialogues, their users and users' logs."""
    samples = corpus.samples[corpus.samples["sample_id"].isin(sample_ids)]
    sessions = samples["session_id"].unique()
    users = samples["user_id"].unique()

    def by(df: pd.DataFrame, col: str, keys) -> pd.DataFrame:
        return df[df[col].isin(keys)]

    return {"samples": samples, "candidates": by(corpus.candidates, "sample_id", sample_ids),
            "sessions": by(corpus.sessions, "session_id", sessions), "turns": by(corpus.turns, "session_id", sessions),
            "turn_items": by(corpus.turn_items, "session_id", sessions),
            "pref_words": by(corpus.pref_words, "session_id", sessions),
            "users": by(corpus.users, "user_id", users), "behaviors": by(corpus.behaviors, "user_id", users)}


def _raw_task(pipe: FeaturePipeline, rows: pd.DataFrame, tables: dict, shared: dict, path: str,
              categorical: list[str]) -> dict:
    """Worker: raw columns of one partition -> parquet part; returns the training value counts."""
    if os.path.exists(path):
        raw = pd.read_parquet(path)
    else:
        ctx = pipe.context(Corpus(**tables, **shared))
        cols = pd.concat([pipe.raw_part(ctx, rows, e) for e in pipe.spec.features], axis=1)
        write_part(path, rows, {c: cols[c].to_numpy() for c in cols.columns})
        raw = cols.assign(**{f"{ROW_PREFIX}split": rows["split"].to_numpy()})
    train = (raw[f"{ROW_PREFIX}split"] == "train").to_numpy()
    return {"n": len(raw), "n_train": int(train.sum()),
            "counts": {c: raw.loc[train, c].dropna().value_counts() for c in categorical}}


def _encode_task(pipe: FeaturePipeline, raw_path: str, path: str) -> int:
    """Worker: one raw part through the fitted encoders -> parquet part of the table."""
    raw = pd.read_parquet(raw_path)
    meta = raw[[c for c in raw.columns if c.startswith(ROW_PREFIX)]]
    if not os.path.exists(path):
        rows = meta.rename(columns=lambda c: c[len(ROW_PREFIX):])
        write_part(path, rows, pipe.encode(raw))
    return len(raw)


def _run_windowed(client, submit, n: int, window: int) -> list:
    """``submit(i)`` for i in 0..n-1 with at most ``window`` tasks in flight; results in order."""
    from distributed import as_completed

    results: list = [None] * n
    futures = {}
    nxt = 0
    pending = as_completed()
    while nxt < n and nxt < window:
        f = submit(nxt)
        futures[f.key] = nxt
        pending.add(f)
        nxt += 1
    for f in pending:
        results[futures.pop(f.key)] = f.result()
        f.release()
        if nxt < n:
            g = submit(nxt)
            futures[g.key] = nxt
            pending.add(g)
            nxt += 1
    return results


def materialize(pipe: FeaturePipeline, corpus: Corpus, client, partition_rows: int = 50_000,
                fit: bool = True) -> PartedTable:
    """Fit (unless ``fit=False``: a loaded pipeline) and transform ``corpus`` on ``client``'s
    workers; the table is a ``core.parts`` directory under ``pipe.store / "parts"``."""
    pipe.show_progress = False  # workers print nothing; the client reports parts
    if fit:
        pipe.fit_kinds(corpus)
    rows = corpus.candidate_rows()
    parts = _partitions(rows, partition_rows)
    fp = corpus.fingerprint()
    raw_key = stable_hash([[pipe._raw_key(e, fp) for e in pipe.spec.features], partition_rows], n=16)
    raw_dir = pipe.store / "parts" / f"raw-{raw_key}"
    raw_dir.mkdir(parents=True, exist_ok=True)
    outs = {o.column(e.name): o for e in pipe.spec.features for o in pipe.outputs(e)}
    categorical = [c for c, o in outs.items() if o.kind == "categorical"]
    shared = {name: client.scatter(getattr(corpus, name), broadcast=True, hash=False) for name in SHARED_TABLES}
    [pipe_f] = client.scatter([pipe], broadcast=True, hash=False)
    window = IN_FLIGHT_PER_WORKER * max(1, len(client.scheduler_info()["workers"]))

    def submit_raw(i: int):
        part = parts[i]
        tables = sub_corpus(corpus, part["sample_id"].unique())
        return client.submit(_raw_task, pipe_f, part, tables, shared, str(raw_dir / part_name(i)), categorical,
                             key=f"features-raw-{raw_key}-{i}")

    stats = _run_windowed(client, submit_raw, len(parts), window)
    if fit:
        if not sum(s["n_train"] for s in stats):
            raise ValueError("the corpus has no training rows (split == 'train'); cannot fit vocabularies")

        def value_counts(col: str) -> pd.Series:
            counts = [s["counts"][col] for s in stats if len(s["counts"][col])]
            return pd.concat(counts).groupby(level=0, sort=False).sum() if counts else pd.Series(dtype=np.int64)

        def train_numeric(col: str) -> np.ndarray:
            split = f"{ROW_PREFIX}split"
            frames = [pd.read_parquet(raw_dir / part_name(i), columns=[split, col]) for i in range(len(parts))]
            return np.concatenate([f.loc[f[split] == "train", col].to_numpy() for f in frames])

        pipe.fit_encoders(value_counts, train_numeric)
        [pipe_f] = client.scatter([pipe], broadcast=True, hash=False)
    table_key = stable_hash([raw_key, pipe.state], n=16)
    table_dir = pipe.store / "parts" / f"table-{table_key}"
    table_dir.mkdir(parents=True, exist_ok=True)

    def submit_encode(i: int):
        return client.submit(_encode_task, pipe_f, str(raw_dir / part_name(i)), str(table_dir / part_name(i)),
                             key=f"features-encode-{table_key}-{i}")

    n_rows = _run_windowed(client, submit_encode, len(parts), window)
    write_manifest(table_dir, n_rows, {c: (o.maxlen if o.kind == "ids" else 0) for c, o in outs.items()})
    return PartedTable.open(table_dir)


@dataclass(frozen=True)
class EngineOptions:
    """Where features are materialised: ``local`` (in-process, the default) or ``dask``."""

    engine: str = "local"
    workers: int = 2
    scheduler: str | None = None


def fit_transform(pipe: FeaturePipeline, corpus: Corpus, options: EngineOptions | None = None):
    """``pipe.fit_transform(corpus)`` on the chosen engine; the same ``FeatureTable`` either way."""
    options = options or EngineOptions()
    if options.engine == "local":
        return pipe.fit_transform(corpus)
    if options.engine != "dask":
        raise ValueError(f"--engine must be 'local' or 'dask', not {options.engine!r}")
    with DaskEngine(workers=options.workers, scheduler=options.scheduler) as client:
        parted = materialize(pipe, corpus, client)
    return parted.to_table()
