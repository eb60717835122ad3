"""Bootstrap over recommendation requests: 95% intervals for every metric of :mod:`core.metrics`.

The unit that is resampled is the *request* (one ``sample_id`` group, ~30 candidates): the
candidates of one request are not independent, so resampling rows would understate the
uncertainty. A replicate draws ``G`` requests with replacement; it is represented by how many
times each request was drawn, so all ``B`` replicates are one ``(B, G)`` count matrix ``W`` and
every metric of every replicate is a few matrix products:

* **Top@K, MRR, NDCG@10** (per-request values ``v``): ``W @ v / W @ 1`` over requests with a
  positive, the same per-request values :func:`core.metrics.group_metrics` averages.
* **logloss**: per-request sums of row losses and row counts, ``(W @ loss) / (W @ rows)``.
* **AUC** (rows pooled over requests, ties count one half): with ``M[h, g]`` = correctly ordered
  (positive of request ``h``, negative of request ``g``) pairs, a replicate's AUC is
  ``sum_hg W_h W_g M[h, g] / ((W @ pos) (W @ neg))``. ``M`` comes from one sort of the positive
  scores and a ``searchsorted`` of the negatives; no loop per request or per replicate.

**Paired** comparisons use the same ``W`` for both models (the same resampled requests), so
the interval of a difference reflects how consistently one model beats the other request by
request, not the two intervals side by side. Point values are :func:`core.metrics.evaluate`'s;
intervals are percentile intervals of the replicates. Memory is ``O(G^2 + B G)``
(``G`` = 2,000 test requests: 32 MB).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from core.metrics import NDCG_K, TOP_KS, _as_1d, group_values

METRICS = ("auc", "logloss", *(f"top@{k}" for k in TOP_KS), "mrr", f"ndcg@{NDCG_K}")
N_BOOT = 1000
CI_LEVEL = 0.95


def request_weights(n_requests: int, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """``(n_boot, n_requests)`` counts: row ``b`` says how often replicate ``b`` drew each request."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_requests, np.full(n_requests, 1.0 / n_requests), size=n_boot).astype(np.float64)


class RequestBootstrap:
    """Replicates of every metric for scores on one fixed set of rows (labels + request ids).

    ``weights`` (``(B, G)``, requests in ``np.unique(groups)`` order) is drawn from ``seed`` when
    not given; models compared on the same rows must share one instance (paired bootstrap).
    """

    def __init__(self, y, groups, n_boot: int = N_BOOT, seed: int = 0, weights: np.ndarray | None = None):
        self.y = _as_1d("y", y, np.int64)
        g = _as_1d("groups", groups)
        if len(g) != len(self.y):
            raise ValueError(f"y and groups must have the same length, got {len(self.y)}, {len(g)}")
        self.request_ids, self.gcode = np.unique(g, return_inverse=True)
        n_req = len(self.request_ids)
        self.weights = (request_weights(n_req, n_boot, seed) if weights is None
                        else np.asarray(weights, dtype=np.float64))
        if self.weights.ndim != 2 or self.weights.shape[1] != n_req:
            raise ValueError(f"weights must have shape (B, {n_req}), got {self.weights.shape}")
        pos = self.y > 0
        self.n_pos = np.bincount(self.gcode, weights=pos, minlength=n_req)
        self.n_neg = np.bincount(self.gcode, weights=~pos, minlength=n_req)
        self.n_rows = np.bincount(self.gcode, minlength=n_req).astype(np.float64)

    def replicates(self, scores) -> dict[str, np.ndarray]:
        """``metric -> (B,)`` values of every metric in :data:`METRICS` on each replicate.

        ``scores``: one score per row, or ``(n_seeds, rows)``: then each replicate's value is the
        mean over the seeds of the metric (every metric is linear in its per-request parts given
        the weights, so the parts are averaged first and the weights applied once)."""
        S = np.asarray(scores, dtype=np.float64)
        S = S[None, :] if S.ndim == 1 else S
        if S.ndim != 2 or S.shape[1] != len(self.y):
            raise ValueError(f"scores must have {len(self.y)} rows (or shape (seeds, {len(self.y)})), got {S.shape}")
        parts = [self._parts(s) for s in S]
        mean = {k: np.mean([p[k] for p in parts], axis=0) for k in parts[0]}
        W = self.weights
        has = self.n_pos > 0
        Wp = W[:, has]
        pairs = np.sum([p["pairs"] for p in parts], axis=0)  # summed: half-integers, exact in float32
        del mean["pairs"]
        out = {"auc": self._auc(pairs) / len(parts),
               "logloss": (W @ mean.pop("loss")) / (W @ self.n_rows)}
        for name, v in mean.items():
            out[name] = (Wp @ v[has]) / Wp.sum(axis=1)
        return {m: out[m] for m in METRICS}

    def _parts(self, s: np.ndarray) -> dict[str, np.ndarray]:
        """Per-request parts of every metric: ``pairs`` (the ``M`` matrix), ``loss`` (summed row
        losses) and the group metrics' per-request values."""
        p = np.clip(s, 1e-7, 1 - 1e-7)
        row_loss = -np.where(self.y > 0, np.log(p), np.log1p(-p))
        per_request, _ = group_values(self.y, s, self.gcode)
        return {"pairs": self._pair_matrix(s), "loss": np.bincount(self.gcode, weights=row_loss,
                                                                   minlength=len(self.request_ids)),
                **per_request}

    def _pair_matrix(self, s: np.ndarray) -> np.ndarray:
        """``M[h, g]``: (positive of request h, negative of request g) pairs in the right order, ties 1/2."""
        G = len(self.request_ids)
        pos = self.y > 0
        ps, pg = s[pos], self.gcode[pos]
        order = np.argsort(ps, kind="stable")
        ps, pg = ps[order], pg[order]
        ns, ng = s[~pos], self.gcode[~pos]
        # a negative at score x sits below the sorted positives from index searchsorted(x, 'right')
        # (strictly) and ties with those in [searchsorted(x, 'left'), that index): half a pair each.
        hi = np.searchsorted(ps, ns, side="right")
        lo = np.searchsorted(ps, ns, side="left")
        P = len(ps)
        # below[g, j]: negatives of request g strictly below sorted positive j (cumulated start marks)
        flat = np.concatenate([ng * (P + 1) + hi, ng * (P + 1) + lo])
        below = np.bincount(flat, minlength=G * (P + 1)).reshape(G, P + 1) * 0.5
        below = np.cumsum(below, axis=1)[:, :P]
        # M[h, g] = sum over positives j of request h of below[g, j] (columns grouped by request)
        by_req = np.argsort(pg, kind="stable")
        req, first = np.unique(pg[by_req], return_index=True)
        M = np.zeros((G, G))
        M[req] = np.add.reduceat(below[:, by_req], first, axis=1).T if P else 0.0
        return M

    def _auc(self, M: np.ndarray) -> np.ndarray:
        G = len(self.request_ids)
        W = self.weights
        # M holds half-integers and W small counts: float32 sums them exactly while the row sums stay
        # below 2**22, and runs twice as fast
        exact32 = G * (M.max(initial=0) + 1) * W.max(initial=0) < 2**22
        dt = np.float32 if exact32 else np.float64
        num = ((W.astype(dt) @ M.astype(dt)) * W).sum(axis=1, dtype=np.float64)
        den = (W @ self.n_pos) * (W @ self.n_neg)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def ci95(replicates: np.ndarray) -> list[float]:
    """Percentile interval ``[low, high]`` at :data:`CI_LEVEL` (NaN replicates ignored)."""
    a = np.asarray(replicates, dtype=np.float64)
    a = a[np.isfinite(a)]
    if not len(a):
        return [float("nan"), float("nan")]
    tail = 100 * (1 - CI_LEVEL) / 2
    lo, hi = np.percentile(a, [tail, 100 - tail])
    return [float(lo), float(hi)]


def intervals(replicates: Mapping[str, np.ndarray]) -> dict[str, list[float]]:
    """``<metric>_ci95: [low, high]`` for every metric of ``replicates``."""
    return {f"{m}_ci95": ci95(r) for m, r in replicates.items()}


def paired_difference(point_a: float, point_b: float, reps_a: np.ndarray, reps_b: np.ndarray) -> dict[str, float]:
    """``a - b`` with its paired 95% interval and the share of replicates where ``a`` is not better.

    ``reps_a`` and ``reps_b`` must come from one :class:`RequestBootstrap` (the same weights).
    """
    d = np.asarray(reps_a) - np.asarray(reps_b)
    lo, hi = ci95(d)
    finite = d[np.isfinite(d)]
    return {"diff": float(point_a - point_b), "low": lo, "high": hi,
            "p_not_better": float(np.mean(finite <= 0)) if len(finite) else float("nan")}
