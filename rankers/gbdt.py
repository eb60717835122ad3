"""GBDT (K-DCN baseline): scikit-learn ``HistGradientBoostingClassifier`` behind the Ranker API.

Features given to the trees (one float64 matrix):

* categorical fields as *categorical* features. HistGradientBoosting accepts at most
  ``max_bins`` categories per feature, so each field's ids are re-coded by training frequency:
  the most frequent ``max_bins - 1`` ids get codes ``0..``, all rarer seen ids share one
  "rare" code, PAD (0) and ids never seen in training are *missing* (NaN);
* dense fields as numeric columns;
* sequence fields: the number of non-padding ids and, when the space has a pretrained matrix for
  the field's vocabulary, the mean pretrained vector (numeric columns). Without a pretrained
  matrix only the length is used (a ``UserWarning`` says so at fit time).

Early stopping uses ``X_valid, y_valid`` when given (sklearn's ``X_val``), else sklearn's internal
validation split (``early_stopping: true``).

Persistence without pickle: the fitted trees (sklearn's predictor node records, a numpy
structured array without object fields, plus the categorical bitsets) and the re-coding tables
are written with ``np.savez`` and read with ``allow_pickle=False``. A loaded GBDT evaluates the
trees with scikit-learn's tree predictor when available (bit-identical to
``predict_proba``), else with the pure-numpy evaluator :func:`predict_raw_numpy`.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping

from typing import Annotated, Optional

import numpy as np
from scipy.special import expit
from pydantic import Field

from rankers import inputs as rin
from rankers.base import Ranker, _as_labels
from rankers.hparams import Hyperparameters, PositiveInt
from rankers.registry import register

NODE_DTYPE = np.dtype([
    ("value", np.float64), ("count", np.uint32), ("feature_idx", np.intp), ("num_threshold", np.float64),
    ("missing_go_to_left", np.uint8), ("left", np.uint32), ("right", np.uint32), ("gain", np.float64),
    ("depth", np.uint32), ("is_leaf", np.uint8), ("bin_threshold", np.uint8), ("is_categorical", np.uint8),
    ("bitset_idx", np.uint32),
])  # == sklearn.ensemble._hist_gradient_boosting.common.PREDICTOR_RECORD_DTYPE


def _in_bitset(bitsets: np.ndarray, row: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Bit ``value`` (0..255) of bitset ``row`` (``bitsets`` is ``(n, 8)`` uint32)."""
    v = value.astype(np.int64)
    words = bitsets[row, v >> 5]
    return ((words >> (v & 31).astype(np.uint32)) & 1).astype(bool)


def predict_raw_numpy(trees: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Raw scores (log-odds) of the exported trees for ``X`` (float64 ``(n, n_features)``).

    Mirrors sklearn's ``_predict_one_from_raw_data``; trees are added one by one in fitting order
    after the baseline, like sklearn does.
    """
    nodes, offs = trees["nodes"], trees["tree_offsets"]
    bits, boffs = trees["raw_bitsets"], trees["bitset_offsets"]
    known, fmap = trees["known_cat_bitsets"], trees["f_idx_map"]
    n = X.shape[0]
    rows = np.arange(n)
    out = np.full(n, float(trees["baseline"][0]))
    for t in range(len(offs) - 1):
        tn = nodes[offs[t]: offs[t + 1]]
        tb = bits[boffs[t]: boffs[t + 1]]
        idx = np.zeros(n, np.int64)
        active = ~tn["is_leaf"][idx].astype(bool)
        while active.any():
            r, i = rows[active], idx[active]
            node = tn[i]
            val = X[r, node["feature_idx"]]
            miss_left = node["missing_go_to_left"].astype(bool)
            nan = np.isnan(val)
            cat = node["is_categorical"].astype(bool)
            left = np.where(nan, miss_left, val <= node["num_threshold"])
            c = cat & ~nan
            if c.any():
                cv = val[c]
                neg = cv < 0
                code = np.where(neg, 0, cv).astype(np.uint8)
                in_left = _in_bitset(tb, node["bitset_idx"][c].astype(np.int64), code) if len(tb) else np.zeros(len(cv), bool)
                in_known = _in_bitset(known, fmap[node["feature_idx"][c]].astype(np.int64), code)
                ml = miss_left[c]
                left[c] = np.where(neg, ml, np.where(in_left, True, np.where(in_known, False, ml)))
            idx[active] = np.where(left, node["left"], node["right"])
            active = ~tn["is_leaf"][idx].astype(bool)
        out += tn["value"][idx]
    return out


class GBDTHyperparameters(Hyperparameters):
    """``HistGradientBoostingClassifier``'s (``configs/models/gbdt.yaml``)."""

    learning_rate: Annotated[float, Field(gt=0)]
    max_iter: PositiveInt
    max_leaf_nodes: Optional[Annotated[int, Field(ge=2)]]
    max_depth: Optional[PositiveInt]
    min_samples_leaf: PositiveInt
    l2_regularization: Annotated[float, Field(ge=0)]
    max_bins: Annotated[int, Field(ge=2, le=255)]
    early_stopping: bool
    n_iter_no_change: PositiveInt
    n_threads: Optional[PositiveInt]  # OpenMP threads for fit/predict (None = sklearn's default: all cores)
    seed: Annotated[int, Field(ge=0, lt=2**32)]


@register("gbdt")
class GBDTRanker(Ranker):
    """Histogram GBDT; hyperparameters follow ``HistGradientBoostingClassifier``."""

    Hyperparameters = GBDTHyperparameters

    def __init__(self, space, **hparams):
        super().__init__(space, **hparams)
        self.cat_maps_: list[np.ndarray] = []
        self.trees_: dict[str, np.ndarray] | None = None
        self.model_ = None  # the fitted sklearn estimator (not persisted)

    # -- features ----------------------------------------------------------------------------------
    def _matrix(self, packed: Mapping[str, np.ndarray]) -> np.ndarray:
        n = rin.n_rows(packed)
        cols: list[np.ndarray] = []
        if rin.CAT in packed:
            cat = packed[rin.CAT]
            for j, m in enumerate(self.cat_maps_):
                code = m[cat[:, j]].astype(np.float64)
                code[code < 0] = np.nan
                cols.append(code[:, None])
        if rin.DENSE in packed:
            cols.append(packed[rin.DENSE].astype(np.float64))
        for f in self.space.sequence:
            ids = packed[rin.seq_key(f.name)]
            mask = ids > 0
            length = mask.sum(1, keepdims=True).astype(np.float64)
            cols.append(length)
            pre = self.space.pretrained.get(f.vocab or f.name)
            if pre is not None:
                pre = np.asarray(pre, np.float64)
                cols.append((pre[ids] * mask[..., None]).sum(1) / np.maximum(length, 1.0))
        return np.ascontiguousarray(np.concatenate(cols, axis=1)) if cols else np.zeros((n, 0))

    def _fit_cat_maps(self, cat: np.ndarray) -> None:
        limit = int(self.hparams["max_bins"]) - 1
        self.cat_maps_ = []
        for j, f in enumerate(self.space.categorical):
            counts = np.bincount(cat[:, j], minlength=f.vocab_size)
            counts[0] = 0  # PAD = missing
            seen = np.flatnonzero(counts)
            order = seen[np.lexsort((seen, -counts[seen]))]  # by frequency, ties by id
            m = np.full(f.vocab_size, -1, np.int16)
            m[order[:limit]] = np.arange(min(limit, len(order)))
            if len(order) > limit:
                m[order[limit:]] = limit
            self.cat_maps_.append(m)

    # -- Ranker API --------------------------------------------------------------------------------
    def fit(self, X_train, y_train, X_valid=None, y_valid=None, groups_valid=None, *, verbose: int = 0,
            tensorboard_dir: str | None = None, groups_train=None) -> "GBDTRanker":
        from sklearn.ensemble import HistGradientBoostingClassifier

        hp = self.hparams
        train = rin.pack(self.space, X_train)
        y = _as_labels(y_train, rin.n_rows(train), "y_train").astype(np.int64)
        missing = [f.name for f in self.space.sequence if (f.vocab or f.name) not in self.space.pretrained]
        if missing:
            warnings.warn(f"GBDT uses only the length of sequence field(s) {missing} (no pretrained vectors)",
                          UserWarning, stacklevel=2)
        if rin.CAT in train:
            self._fit_cat_maps(train[rin.CAT])
        Xm = self._matrix(train)
        n_cat = len(self.space.categorical)
        mask = np.zeros(Xm.shape[1], bool)
        mask[:n_cat] = True
        kwargs = {}
        valid = None
        if X_valid is not None:
            valid = rin.pack(self.space, X_valid)
            y_va = _as_labels(y_valid, rin.n_rows(valid), "y_valid").astype(np.int64)
            if hp["early_stopping"]:
                kwargs = {"X_val": self._matrix(valid), "y_val": y_va}
        clf = HistGradientBoostingClassifier(
            learning_rate=float(hp["learning_rate"]), max_iter=int(hp["max_iter"]),
            max_leaf_nodes=hp["max_leaf_nodes"], max_depth=hp["max_depth"],
            min_samples_leaf=int(hp["min_samples_leaf"]), l2_regularization=float(hp["l2_regularization"]),
            max_bins=int(hp["max_bins"]), categorical_features=mask if mask.any() else None,
            early_stopping=bool(hp["early_stopping"]), n_iter_no_change=int(hp["n_iter_no_change"]),
            random_state=int(hp["seed"]), verbose=int(verbose),
        )
        with self._threads():
            clf.fit(Xm, y, **kwargs)
        self.model_ = clf
        self.trees_ = self._export(clf)
        self.fitted_ = True
        self.history_ = {"n_iter": [int(clf.n_iter_)]}
        if valid is not None:
            self._record_validation(valid, y_va, groups_valid)
        return self

    @staticmethod
    def _export(clf) -> dict[str, np.ndarray]:
        preds = [p for it in clf._predictors for p in it]
        nodes = [np.asarray(p.nodes).astype(NODE_DTYPE) for p in preds]
        bits = [np.asarray(p.raw_left_cat_bitsets, np.uint32).reshape(-1, 8) for p in preds]
        known, fmap = clf._bin_mapper.make_known_categories_bitsets()
        return {
            "nodes": np.concatenate(nodes),
            "tree_offsets": np.concatenate([[0], np.cumsum([len(x) for x in nodes])]).astype(np.int64),
            "raw_bitsets": np.concatenate(bits) if bits else np.zeros((0, 8), np.uint32),
            "bitset_offsets": np.concatenate([[0], np.cumsum([len(b) for b in bits])]).astype(np.int64),
            "known_cat_bitsets": np.asarray(known, np.uint32).reshape(-1, 8),
            "f_idx_map": np.asarray(fmap, np.uint32),
            "baseline": np.asarray(clf._baseline_prediction, np.float64).reshape(-1),
        }

    def _predict_raw(self, Xm: np.ndarray) -> np.ndarray:
        t = self.trees_
        try:
            from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
            from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor
            from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
        except ImportError:  # pragma: no cover - private sklearn API moved
            return predict_raw_numpy(t, Xm)
        if PREDICTOR_RECORD_DTYPE != NODE_DTYPE:  # pragma: no cover
            return predict_raw_numpy(t, Xm)
        n_threads = _openmp_effective_n_threads()
        out = np.zeros(Xm.shape[0]) + t["baseline"][0]
        offs, boffs = t["tree_offsets"], t["bitset_offsets"]
        for i in range(len(offs) - 1):
            bits = np.ascontiguousarray(t["raw_bitsets"][boffs[i]: boffs[i + 1]])
            pred = TreePredictor(np.ascontiguousarray(t["nodes"][offs[i]: offs[i + 1]]), bits, bits)
            out += pred.predict(Xm, t["known_cat_bitsets"], t["f_idx_map"], n_threads)
        return out

    def _threads(self):
        """Cap sklearn's OpenMP threads (``n_threads``); small fits on a busy machine are much faster
        with 1 thread than with OpenMP barriers across contended cores."""
        from contextlib import nullcontext

        n = self.hparams["n_threads"]
        if n is None:
            return nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=int(n), user_api="openmp")

    def _predict_packed(self, packed):
        with self._threads():
            return expit(self._predict_raw(self._matrix(packed))).astype(np.float32)

    # -- persistence -------------------------------------------------------------------------------
    def _save_payload(self, directory: Path) -> None:
        np.savez(directory / "gbdt_trees.npz", **self.trees_)
        np.savez(directory / "gbdt_categories.npz", **{f"field_{j}": m for j, m in enumerate(self.cat_maps_)})

    def _load_payload(self, directory: Path) -> None:
        with np.load(directory / "gbdt_trees.npz", allow_pickle=False) as z:
            self.trees_ = {k: z[k] for k in z.files}
        self.trees_["nodes"] = self.trees_["nodes"].astype(NODE_DTYPE)
        with np.load(directory / "gbdt_categories.npz", allow_pickle=False) as z:
            self.cat_maps_ = [z[f"field_{j}"] for j in range(len(self.space.categorical))]
