"""Training batches streamed from a parquet-parts feature table (``core.parts``), so the training
table need not fit in memory: at most one part plus one partial batch is held at a time.

Per epoch (seeded, reproducible): the order of the parts is a permutation drawn from
``(seed, epoch)``, the training rows inside each part a permutation from ``(seed, epoch, part)``;
consecutive parts fill full batches and the last partial batch of the epoch is dropped, so an
epoch has ``n_train // batch_size`` steps, as in the in-memory path (``rankers.training``). The
order is not the in-memory path's global permutation (a shuffle across parts would need every
part at once), so metrics agree within run-to-run noise, not bit for bit; the in-memory path
stays the default for tables that fit.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd
import tensorflow as tf

from core.parts import ROW_PREFIX, PartedTable
from core.space import FeatureSpace
from core.tfdata import without_autotuning
from rankers import inputs as rin


def split_rows(table: PartedTable, split: str) -> list[int]:
    """Rows of ``split`` in each part (reads only the split column)."""
    col = f"{ROW_PREFIX}split"
    return [int((pd.read_parquet(table.directory / p, columns=[col])[col] == split).sum())
            for p in table.manifest["parts"]]


def epoch_batches(table: PartedTable, space: FeatureSpace, batch_size: int, seed: int, epoch: int,
                  split: str = "train") -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
    """The full batches ``(packed, labels (bs, 1))`` of one epoch, in its seeded order."""
    names = [f.name for f in space.fields]
    carry: list[tuple[dict[str, np.ndarray], np.ndarray]] = []
    held = 0
    for part in np.random.default_rng([seed, epoch]).permutation(table.n_parts):
        rows, X = table.read(int(part), names, rows=["split", "label"])
        m = (rows["split"] == split).to_numpy()
        if not m.any():
            continue
        order = np.random.default_rng([seed, epoch, int(part)]).permutation(int(m.sum()))
        packed = rin.pack(space, {k: v[m][order] for k, v in X.items()})
        carry.append((packed, rows["label"].to_numpy(np.float32)[m][order].reshape(-1, 1)))
        held += len(order)
        if held < batch_size:
            continue
        packed = {k: np.concatenate([c[0][k] for c in carry]) for k in carry[0][0]}
        labels = np.concatenate([c[1] for c in carry])
        full = (held // batch_size) * batch_size
        for start in range(0, full, batch_size):
            yield {k: v[start: start + batch_size] for k, v in packed.items()}, labels[start: start + batch_size]
        carry = [({k: v[full:] for k, v in packed.items()}, labels[full:])] if held > full else []
        held -= full


def parts_train_dataset(table: PartedTable, space: FeatureSpace, batch_size: int, seed: int,
                        split: str = "train") -> tuple[tf.data.Dataset, int]:
    """Infinite dataset of full batches streamed from the parts; returns ``(dataset, steps_per_epoch)``
    (the same contract as ``rankers.training.make_train_dataset``)."""
    n = sum(split_rows(table, split))
    if n == 0:
        raise ValueError(f"{table.directory}: no '{split}' rows to train on")
    bs = min(int(batch_size), n)
    specs = {k: tf.TensorSpec((bs,) + tuple(t.shape[1:]), t.dtype) for k, t in rin.keras_inputs(space).items()}

    def forever():
        epoch = 0
        while True:
            yield from epoch_batches(table, space, bs, seed, epoch, split)
            epoch += 1

    ds = tf.data.Dataset.from_generator(forever, output_signature=(specs, tf.TensorSpec((bs, 1), tf.float32)))
    return without_autotuning(ds.prefetch(2)), n // bs
