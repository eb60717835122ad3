"""Synthetic feature tables with a planted signal (tests and ``benchmarks/bench_rankers.py``).

The label comes from a known factorisation-machine *teacher*: every categorical value ``v`` of
field ``i`` has a weight ``w_i[v]`` and a vector ``V_i[v]``; sequence tokens have vectors ``S[t]``;

    logit = sum_i w_i[x_i] + sum_{i<j} <V_i[x_i], V_j[x_j]> + <a, dense> + 0.5*sin(3 dense_0)
            + sum_s <mean_t S[t], V_0[x_0]>

(the pairwise term scaled by ``interaction_weight``), standardised to ``logit_std`` and shifted to ``base_rate``. Rows come in groups of ``group_size``
candidates (one recommendation instance each). ``labels="ctr"`` draws every label independently
(``y ~ Bernoulli(sigmoid(logit))``); ``labels="ranking"`` marks exactly one positive per group,
drawn with probability ``softmax(logit)`` inside the group (the E-ConvRec setting).
Splits are by group, so no group straddles train/valid/test.
"""
from __future__ import annotations

import numpy as np

import pandas as pd

from core.space import FeatureSpace, Field
from core.table import FeatureTable


def planted_table(
    n_rows: int = 20_000,
    n_cat: int = 8,
    n_dense: int = 3,
    n_seq: int = 1,
    vocab_sizes: int | list[int] = 60,
    seq_len: int = 6,
    seq_vocab: int = 200,
    teacher_dim: int = 4,
    logit_std: float = 2.0,
    base_rate: float = 0.2,
    group_size: int = 30,
    labels: str = "ctr",
    split: tuple[float, float, float] = (0.8, 0.1, 0.1),
    pretrained_dim: int | None = None,
    missing_rate: float = 0.02,
    interaction_weight: float = 1.0,
    seed: int = 0,
) -> FeatureTable:
    """Generate a table; see the module docstring. ``pretrained_dim`` adds a (noisy) pretrained
    matrix for the shared sequence vocabulary ``tokens`` to the space."""
    rng = np.random.default_rng(seed)
    n_groups = -(-n_rows // group_size)
    n = n_groups * group_size
    sizes = [vocab_sizes] * n_cat if isinstance(vocab_sizes, int) else list(vocab_sizes)
    if len(sizes) != n_cat:
        raise ValueError("vocab_sizes must be an int or one size per categorical field")
    fields: list[Field] = []
    X: dict[str, np.ndarray] = {}
    logit = np.zeros(n)
    vecs = []
    for i, size in enumerate(sizes):
        # Zipf-like popularity over known ids 2..size-1, a few missing (0)
        p = 1.0 / np.arange(1, size - 1) ** 0.8
        ids = rng.choice(np.arange(2, size), size=n, p=p / p.sum()).astype(np.int32)
        ids[rng.random(n) < missing_rate] = 0
        name = f"c{i}"
        fields.append(Field(name, "categorical", vocab_size=size, group="BF"))
        X[name] = ids
        w = rng.normal(0, 0.5, size)
        V = rng.normal(0, 1.0 / np.sqrt(teacher_dim), (size, teacher_dim))
        logit += w[ids]
        vecs.append(V[ids])
    if vecs:
        v = np.stack(vecs, 1)  # (n, F, d)
        logit += interaction_weight * 0.5 * ((v.sum(1) ** 2).sum(1) - (v ** 2).sum((1, 2)))
    if n_dense:
        a = rng.normal(0, 0.5, n_dense)
        for j in range(n_dense):
            x = rng.normal(0, 1, n).astype(np.float32)
            X[f"d{j}"] = x
            fields.append(Field(f"d{j}", "dense", dim=1, group="IF"))
            logit += a[j] * x
        logit += 0.5 * np.sin(3 * X["d0"])
    pretrained = {}
    if n_seq:
        S = rng.normal(0, 1.0 / np.sqrt(teacher_dim), (seq_vocab, teacher_dim))
        anchor = vecs[0] if vecs else rng.normal(0, 1, (n, teacher_dim))
        for s in range(n_seq):
            lens = rng.integers(0, seq_len + 1, n)
            ids = rng.integers(2, seq_vocab, (n, seq_len)).astype(np.int32)
            ids[np.arange(seq_len)[None, :] >= lens[:, None]] = 0
            mask = (ids > 0)[..., None]
            mean = (S[ids] * mask).sum(1) / np.maximum(mask.sum(1), 1)
            logit += 2.0 * (mean * anchor).sum(1)
            name = f"s{s}"
            X[name] = ids
            fields.append(Field(name, "sequence", vocab_size=seq_vocab, dim=seq_len, vocab="tokens", group="CF"))
        if pretrained_dim:
            proj = rng.normal(0, 1, (teacher_dim, pretrained_dim))
            pretrained["tokens"] = (S @ proj + rng.normal(0, 0.1, (seq_vocab, pretrained_dim))).astype(np.float32)
    logit = (logit - logit.mean()) / (logit.std() + 1e-12) * logit_std
    groups = np.repeat(np.arange(n_groups, dtype=np.int64), group_size)
    if labels == "ctr":
        shift = np.log(base_rate / (1 - base_rate))
        y = (rng.random(n) < 1 / (1 + np.exp(-(logit + shift)))).astype(np.int8)
    elif labels == "ranking":
        g = logit.reshape(n_groups, group_size)
        p = np.exp(g - g.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        u = rng.random((n_groups, 1))
        pos = np.minimum((p.cumsum(1) < u).sum(1), group_size - 1)
        y = np.zeros((n_groups, group_size), np.int8)
        y[np.arange(n_groups), pos] = 1
        y = y.ravel()
    else:
        raise ValueError("labels must be 'ctr' or 'ranking'")
    r = rng.random(n_groups)
    cut = np.cumsum(split) / np.sum(split)
    gsplit = np.where(r < cut[0], "train", np.where(r < cut[1], "valid", "test"))
    rows = pd.DataFrame({"sample_id": groups, "label": y, "split": np.repeat(gsplit, group_size),
                         "teacher_logit": logit})  # teacher_logit: float64, the planted truth
    return FeatureTable(rows, X, FeatureSpace(fields, pretrained))
