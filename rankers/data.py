"""A materialised feature table on disk: ``feature_space.json`` (+ ``pretrained_*.npy``) and ``features.npz``.

``features.npz`` holds one array per field of the space (named like the field, dtypes and shapes
as ``FeatureSpace.validate`` wants them) plus ``label`` (0/1), ``split`` (strings ``train`` /
``valid`` / ``test``; unicode dtype, never object) and optionally ``sample_id`` (the recommendation
instance of each row, for Top@K / MRR / NDCG). Everything is read with ``allow_pickle=False``.
This is the format ``benchmarks/bench_rankers.py --npz DIR`` and ``benchmarks/deepctr_peer.py`` read.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from features.space import FeatureSpace

RESERVED = ("label", "split", "sample_id")


@dataclass
class FeatureTable:
    space: FeatureSpace
    X: dict[str, np.ndarray]
    y: np.ndarray  # (n,) 0/1
    groups: np.ndarray | None  # (n,) sample ids, or None
    split: np.ndarray  # (n,) 'train' | 'valid' | 'test'

    def part(self, which: str) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
        """``(X, y, groups)`` of one split."""
        m = self.split == which
        return {k: v[m] for k, v in self.X.items()}, self.y[m], None if self.groups is None else self.groups[m]

    @property
    def n_rows(self) -> int:
        return len(self.y)

    def save(self, directory: str | Path) -> Path:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.space.save(d)
        arrays = {**self.X, "label": np.asarray(self.y), "split": np.asarray(self.split).astype(str)}
        if self.groups is not None:
            arrays["sample_id"] = np.asarray(self.groups)
        np.savez(d / "features.npz", **arrays)
        return d

    @classmethod
    def load(cls, directory: str | Path) -> "FeatureTable":
        d = Path(directory)
        space = FeatureSpace.load(d)
        with np.load(d / "features.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        missing = [k for k in ("label", "split") if k not in arrays]
        if missing:
            raise KeyError(f"{d / 'features.npz'} lacks {missing}")
        X = {f.name: arrays[f.name] for f in space.fields if f.name in arrays}
        space.validate(X)
        return cls(space, X, arrays["label"], arrays.get("sample_id"), arrays["split"].astype(str))
