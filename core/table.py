"""The one feature table type: row metadata plus one numpy array per feature column.

``rows`` has one row per candidate and at least ``sample_id`` (the recommendation instance the
row belongs to, for Top@K / MRR / NDCG), ``label`` (0/1) and ``split`` (``train`` / ``valid`` /
``test``); a materialised corpus adds ``row_id, session_id, user_id, turn, item_id, position``.
``arrays`` maps column names to arrays of ``len(rows)`` rows; the ``FeatureSpace`` a ranker is
built on names the columns it consumes (``X(space)``).

On disk (``save``/``load``): ``feature_space.json`` (+ ``pretrained_*.npy``) and ``features.npz``
with one array per field plus ``label``, ``split`` (unicode, never object) and ``sample_id``
(factorised to int64), read with ``allow_pickle=False``. ``benchmarks/bench_rankers.py --npz DIR``
and ``benchmarks/deepctr_peer.py`` read this format.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.space import FeatureSpace

REQUIRED_ROWS = ("sample_id", "label", "split")


@dataclass
class FeatureTable:
    rows: pd.DataFrame  # one row per candidate: sample_id, label, split (+ corpus ids when materialised)
    arrays: dict[str, np.ndarray]  # column name -> (n, ...) array
    space: FeatureSpace | None = None  # the fields rankers consume; None = not chosen yet

    def __post_init__(self) -> None:
        missing = [c for c in REQUIRED_ROWS if c not in self.rows.columns]
        if missing:
            raise ValueError(f"FeatureTable.rows lacks the columns {missing}")
        bad = {k: len(v) for k, v in self.arrays.items() if len(v) != len(self.rows)}
        if bad:
            raise ValueError(f"FeatureTable arrays of the wrong length (rows: {len(self.rows)}): {bad}")

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def labels(self) -> np.ndarray:
        return self.rows["label"].to_numpy(np.float32)

    @property
    def groups(self) -> np.ndarray:
        return self.rows["sample_id"].to_numpy()

    @property
    def split(self) -> np.ndarray:
        return self.rows["split"].to_numpy().astype(str)  # unicode, never object

    def mask(self, split: str | None) -> np.ndarray:
        if split is None:
            return np.ones(len(self.rows), bool)
        return (self.rows["split"] == split).to_numpy()

    def _space(self, space: FeatureSpace | None) -> FeatureSpace:
        space = space or self.space
        if space is None:
            raise ValueError("no feature space: pass one, or build the table with FeatureTable(..., space=...)")
        return space

    def X(self, space: FeatureSpace | None = None, split: str | None = None) -> dict[str, np.ndarray]:
        """The arrays of ``space``'s fields (default: the table's own space), optionally of one split
        (copies); without a split, the table's own arrays (not copied: a request's few rows are
        scored straight from them)."""
        fields = self._space(space).fields
        if split is None:
            return {f.name: self.arrays[f.name] for f in fields}
        m = self.mask(split)
        return {f.name: self.arrays[f.name][m] for f in fields}

    def part(self, split: str, space: FeatureSpace | None = None) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """``(X, labels, groups)`` of one split: the arguments of ``Ranker.fit``/``evaluate``."""
        m = self.mask(split)
        return self.X(space, split), self.labels[m], self.groups[m]

    def select(self, space: FeatureSpace) -> "FeatureTable":
        """The same rows restricted to ``space``'s fields."""
        return FeatureTable(self.rows, self.X(space), space)

    def save(self, directory: str | Path) -> Path:
        space = self._space(None)
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        space.save(d)
        arrays = {**self.X(space), "label": self.rows["label"].to_numpy(np.int8), "split": self.split,
                  "sample_id": pd.factorize(self.rows["sample_id"])[0].astype(np.int64)}
        np.savez(d / "features.npz", **arrays)
        return d

    @classmethod
    def load(cls, directory: str | Path) -> "FeatureTable":
        d = Path(directory)
        space = FeatureSpace.load(d)
        with np.load(d / "features.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        missing = [k for k in REQUIRED_ROWS if k not in arrays]
        if missing:
            raise KeyError(f"{d / 'features.npz'} lacks {missing}")
        X = {f.name: arrays[f.name] for f in space.fields if f.name in arrays}
        space.validate(X)
        rows = pd.DataFrame({"sample_id": arrays["sample_id"], "label": arrays["label"],
                             "split": arrays["split"].astype(str)})
        return cls(rows, X, space)
