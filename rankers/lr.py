"""Logistic regression (K-DCN baseline LR): scikit-learn's ``LogisticRegression`` behind the Ranker API.

``logit = w0 + sum_i w[cat_i] + <w, dense> + sum_s mean_{t in seq_s} w_vocab(s)[t]`` over one sparse
design matrix (:func:`design_matrix`): a one-hot column per categorical id (PAD and OOV ids
included, as every field's vocabulary has them), the dense columns as they are, and per shared
sequence vocabulary one column per id holding that id's share of the row's non-padding ids.

Why scikit-learn and not a Keras model: the problem is convex and L-BFGS solves it to convergence,
so every indicator's weight satisfies its score equation (the mean predicted probability over the
rows where it is 1 equals the observed rate). A Keras LR trained with Adam and stopped early on
validation AUC had not converged on rare cells: explicitly turned-down items (2,810 rows of the
default corpus, bought 0.18%) were predicted at 1.7%, ten times too high, and a turned-down item
still ranked first in 21% of the rewritten test requests of ``benchmarks/turned_down.py``.

Persistence without pickle: the weights are written with ``np.savez`` (the layout follows from the
saved feature space) and read with ``allow_pickle=False``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Mapping

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from pydantic import Field

from core.space import FeatureSpace
from rankers import inputs as rin
from rankers.base import Ranker, _as_labels
from rankers.hparams import Hyperparameters, PositiveInt
from rankers.registry import register


class LRHyperparameters(Hyperparameters):
    """``LogisticRegression``'s (``configs/models/lr.yaml``)."""

    C: Annotated[float, Field(gt=0)]  # inverse L2 strength (sklearn's)
    max_iter: PositiveInt
    tol: Annotated[float, Field(gt=0)]


def design_matrix(space: FeatureSpace, packed: Mapping[str, np.ndarray]) -> sp.csr_matrix:
    """Rows of ``packed`` (``rankers.inputs.pack``) as a CSR matrix: categorical one-hots (fused offsets,
    ``space.offsets``), dense columns, then one block per shared sequence vocabulary (mean one-hot)."""
    n = rin.n_rows(packed)
    rows, cols, vals = [], [], []
    width = 0
    if rin.CAT in packed:
        cat = packed[rin.CAT].astype(np.int64) + space.offsets  # (n, n_cat)
        rows.append(np.repeat(np.arange(n), cat.shape[1]))
        cols.append(cat.reshape(-1))
        vals.append(np.ones(cat.size))
        width = space.total_vocab
    if rin.DENSE in packed:
        dense = packed[rin.DENSE].astype(np.float64)  # (n, D)
        rows.append(np.repeat(np.arange(n), dense.shape[1]))
        cols.append(width + np.tile(np.arange(dense.shape[1]), n))
        vals.append(dense.reshape(-1))
        width += dense.shape[1]
    starts = {}
    for vocab, size in sorted(space.shared_vocab_sizes().items()):
        starts[vocab] = width
        width += size
    for f in space.sequence:
        ids = packed[rin.seq_key(f.name)].astype(np.int64)  # (n, L), 0 = padding
        mask = ids > 0
        share = 1.0 / np.maximum(mask.sum(1, keepdims=True), 1)
        r, c = np.nonzero(mask)
        rows.append(r)
        cols.append(starts[f.vocab or f.name] + ids[r, c])
        vals.append(np.broadcast_to(share, ids.shape)[r, c])
    if not rows:
        return sp.csr_matrix((n, width))
    # duplicates (an id twice in a sequence) are summed by the conversion
    return sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, width)).tocsr()


@register("lr")
class LRRanker(Ranker):
    """L2-regularised logistic regression over every feature, fitted by L-BFGS to convergence."""

    Hyperparameters = LRHyperparameters

    def __init__(self, space, **hparams):
        super().__init__(space, **hparams)
        self.coef_: np.ndarray | None = None  # (width,) float64
        self.intercept_ = 0.0

    def fit(self, X_train, y_train, X_valid=None, y_valid=None, groups_valid=None, *, verbose: int = 0,
            tensorboard_dir: str | None = None, groups_train=None) -> "LRRanker":
        from sklearn.linear_model import LogisticRegression

        hp = self.hparams
        train = rin.pack(self.space, X_train)
        y = _as_labels(y_train, rin.n_rows(train), "y_train").astype(np.int64)
        if len(np.unique(y)) < 2:
            raise ValueError("y_train holds one class only; logistic regression needs clicks and non-clicks")
        clf = LogisticRegression(C=float(hp["C"]), max_iter=int(hp["max_iter"]), tol=float(hp["tol"]),
                                 solver="lbfgs", verbose=int(verbose))
        clf.fit(design_matrix(self.space, train), y)
        self.coef_, self.intercept_ = clf.coef_[0].astype(np.float64), float(clf.intercept_[0])
        self.fitted_ = True
        self.history_ = {"n_iter": [int(clf.n_iter_[0])]}
        if X_valid is not None:
            self._record_validation(rin.pack(self.space, X_valid), y_valid, groups_valid)
        return self

    def _predict_packed(self, packed):
        return expit(design_matrix(self.space, packed) @ self.coef_ + self.intercept_)

    def _save_payload(self, directory: Path) -> None:
        np.savez(directory / "lr_weights.npz", coef=self.coef_, intercept=np.array([self.intercept_]))

    def _load_payload(self, directory: Path) -> None:
        with np.load(directory / "lr_weights.npz", allow_pickle=False) as z:
            self.coef_, self.intercept_ = z["coef"], float(z["intercept"][0])
