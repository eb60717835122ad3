"""Ranking metrics for conversational recommendation (E-ConvRec Table 8: AUC, Top@K).

Two families, both computed by :func:`evaluate`:

* **Row-level** over every candidate row: ``auc`` (``sklearn.metrics.roc_auc_score``) and
  ``logloss`` (``sklearn.metrics.log_loss``).
* **Per recommendation instance** (a *group* = one sample id, ~30 candidate products each):
  ``top@1``, ``top@5``, ``top@10``, ``mrr`` and ``ndcg@10``.

Ties are ranked **pessimistically**: inside a group, candidates are ordered by score
descending and, among equal scores, negatives are placed *before* positives. For the usual
single-positive group this gives::

    rank = 1 + #(negatives with score >= score of the positive)

so a ranker that outputs a constant gets rank = group size (Top@1 = 0 for groups with more than
one candidate), never a lucky Top@1 = 1. With several positives in a group, the group's rank is
the rank of its best-placed positive (Top@K = "some positive in the top K", MRR = 1 / that rank)
and NDCG@10 uses binary relevance over all positives with the same pessimistic order, divided by
the ideal DCG for that many positives. (``sklearn.metrics.ndcg_score`` averages over ties instead,
which is why it is not used here; without ties the two agree, see ``tests/test_metrics.py``.)

Groups without any positive are skipped by the group metrics and counted in
``n_groups_without_positive``. Everything is vectorised: one ``np.lexsort`` over all rows plus
``np.*.reduceat``, no Python loop per group.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

TOP_KS = (1, 5, 10)
NDCG_K = 10


def _as_1d(name: str, a, dtype=None) -> np.ndarray:
    a = np.asarray(a) if dtype is None else np.asarray(a, dtype=dtype)
    if a.ndim == 2 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    return a


def auc(y, scores) -> float:
    """ROC AUC over all rows; NaN when only one class is present."""
    y = _as_1d("y", y, np.int64)
    s = _as_1d("scores", scores, np.float64)
    if y.min(initial=0) == y.max(initial=0):
        return float("nan")
    return float(roc_auc_score(y, s))


def logloss(y, probs) -> float:
    """Binary cross-entropy of probabilities (clipped by sklearn to the float eps)."""
    y = _as_1d("y", y, np.int64)
    p = _as_1d("probs", probs, np.float64)
    return float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]))


def group_ranks(y, scores, groups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pessimistic 1-based rank of every row inside its group.

    Returns ``(order, rank_sorted, group_start_sorted)`` where ``order`` sorts rows by
    (group, score desc, label asc), ``rank_sorted[i]`` is the rank of row ``order[i]`` and
    ``group_start_sorted`` marks the first row of each group in that order.
    """
    y = _as_1d("y", y, np.int64)
    s = _as_1d("scores", scores, np.float64)
    g = _as_1d("groups", groups)
    if not (len(y) == len(s) == len(g)):
        raise ValueError(f"y, scores and groups must have the same length, got {len(y)}, {len(s)}, {len(g)}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    _, gcode = np.unique(g, return_inverse=True)
    # lexsort: last key is primary -> group, then score descending, then negatives first on ties.
    order = np.lexsort((y, -s, gcode))
    gs = gcode[order]
    is_start = np.ones(len(gs), dtype=bool)
    is_start[1:] = gs[1:] != gs[:-1]
    starts = np.flatnonzero(is_start)
    group_len = np.diff(np.append(starts, len(gs)))
    first_of_row = np.repeat(starts, group_len)
    rank_sorted = np.arange(len(gs)) - first_of_row + 1
    return order, rank_sorted, starts


def group_values(y, scores, groups, ks=TOP_KS, ndcg_k: int = NDCG_K) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Top@K, MRR and NDCG@k of every group (groups in ``np.unique(groups)`` order) and the mask of
    groups with at least one positive (the others' values are 0 and not meant to be averaged)."""
    y = _as_1d("y", y, np.int64)
    order, rank, starts = group_ranks(y, scores, groups)
    pos = (y[order] > 0).astype(np.int64)
    if not len(starts):
        return {**{f"top@{k}": np.zeros(0) for k in ks}, "mrr": np.zeros(0), f"ndcg@{ndcg_k}": np.zeros(0)}, \
            np.zeros(0, bool)
    n_pos = np.add.reduceat(pos, starts)
    has = n_pos > 0
    big = np.iinfo(np.int64).max
    best = np.minimum.reduceat(np.where(pos > 0, rank, big), starts).astype(np.float64)
    out = {f"top@{k}": (best <= k).astype(np.float64) for k in ks}
    out["mrr"] = np.where(has, 1.0 / np.where(has, best, 1.0), 0.0)
    gain = np.where((pos > 0) & (rank <= ndcg_k), 1.0 / np.log2(rank + 1.0), 0.0)
    ideal_cum = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, ndcg_k + 2)))])
    idcg = ideal_cum[np.minimum(n_pos, ndcg_k)]
    out[f"ndcg@{ndcg_k}"] = np.where(has, np.add.reduceat(gain, starts) / np.where(has, idcg, 1.0), 0.0)
    return out, has


def group_metrics(y, scores, groups, ks=TOP_KS, ndcg_k: int = NDCG_K) -> dict[str, float]:
    """Top@K, MRR and NDCG@k averaged over groups that contain at least one positive."""
    values, has = group_values(y, scores, groups, ks, ndcg_k)
    n_valid = int(has.sum())
    out: dict[str, float] = {"n_groups": n_valid, "n_groups_without_positive": int((~has).sum())}
    for name, v in values.items():
        out[name] = float(np.mean(v[has])) if n_valid else float("nan")
    return out


def evaluate(y, scores, groups=None) -> dict[str, float]:
    """All metrics: ``auc``, ``logloss``, ``n_rows`` and, with ``groups``, the group metrics.

    ``scores`` must be probabilities for ``logloss`` to be meaningful (rankers' ``predict``
    returns probabilities).
    """
    y = _as_1d("y", y, np.int64)
    s = _as_1d("scores", scores, np.float64)
    out: dict[str, float] = {"n_rows": int(len(y)), "auc": auc(y, s), "logloss": logloss(y, s)}
    if groups is not None:
        out.update(group_metrics(y, s, groups))
    return out


def format_metrics(m: Mapping[str, float]) -> str:
    """One line, e.g. ``auc=0.7312 logloss=0.4121 top@1=0.2010 ...``."""
    return " ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in m.items())
