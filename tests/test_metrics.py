import time

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from core.metrics import evaluate, group_metrics, group_ranks


def test_hand_made_groups():
    # group a: positive ranked 1st; group b: positive 3rd of 4; group c: positive 2nd (tie-free)
    y = np.array([1, 0, 0, 0, 0, 1, 0, 0, 1, 0])
    s = np.array([0.9, 0.1, 0.2, 0.8, 0.7, 0.5, 0.1, 0.9, 0.5, 0.1])
    g = np.array(["a", "a", "a", "b", "b", "b", "b", "c", "c", "c"])
    m = group_metrics(y, s, g)
    assert m["n_groups"] == 3
    assert m["top@1"] == pytest.approx(1 / 3)
    assert m["top@5"] == 1.0
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 2) / 3)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / np.log2(4) + 1 / np.log2(3)) / 3)


def test_ties_are_pessimistic():
    # constant scores: the positive goes behind every tied negative
    y = np.array([0, 1, 0, 0, 0, 0, 1, 0])
    g = np.array([1, 1, 1, 1, 2, 2, 2, 2])
    m = group_metrics(y, np.zeros(8), g)
    assert m["top@1"] == 0.0
    assert m["mrr"] == pytest.approx(1 / 4)
    # positive tied with one negative at the top: rank 2
    s = np.array([0.9, 0.9, 0.1, 0.2, 0.3, 0.3, 0.3, 0.1])
    m = group_metrics(y, s, g)
    assert m["top@1"] == 0.0
    assert m["mrr"] == pytest.approx((1 / 2 + 1 / 3) / 2)


def test_multiple_positives_and_groups_without_positive():
    y = np.array([1, 1, 0, 0, 0, 0])
    s = np.array([0.2, 0.1, 0.3, 0.0, 0.5, 0.4])
    g = np.array([7, 7, 7, 7, 8, 8])
    m = group_metrics(y, s, g)
    assert m["n_groups"] == 1 and m["n_groups_without_positive"] == 1
    assert m["top@1"] == 0.0 and m["top@5"] == 1.0
    assert m["mrr"] == pytest.approx(1 / 2)
    idcg = 1 + 1 / np.log2(3)
    assert m["ndcg@10"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(4)) / idcg)


def test_unsorted_rows_and_ranks():
    y = np.array([0, 1, 0, 1])
    s = np.array([0.3, 0.1, 0.2, 0.4])
    g = np.array([5, 4, 4, 5])  # interleaved groups
    order, rank, starts = group_ranks(y, s, g)
    assert list(g[order]) == [4, 4, 5, 5]
    assert list(rank) == [1, 2, 1, 2]
    assert group_metrics(y, s, g)["top@1"] == 0.5


def test_ndcg_matches_sklearn_without_ties():
    rng = np.random.default_rng(0)
    n_groups, per = 200, 30
    s = rng.random((n_groups, per))
    y = np.zeros((n_groups, per), int)
    y[np.arange(n_groups), rng.integers(0, per, n_groups)] = 1
    g = np.repeat(np.arange(n_groups), per)
    m = group_metrics(y.ravel(), s.ravel(), g)
    assert m["ndcg@10"] == pytest.approx(ndcg_score(y, s, k=10, ignore_ties=True))


def test_evaluate_fast_on_28k_groups():
    rng = np.random.default_rng(1)
    n_groups, per = 28_000, 30
    y = np.zeros((n_groups, per), np.int64)
    y[:, 0] = 1
    s = rng.random((n_groups, per)).astype(np.float32)
    s[:, 0] += 0.3
    g = np.repeat(np.arange(n_groups), per)
    t = time.perf_counter()
    m = evaluate(y.ravel(), np.clip(s.ravel(), 0, 1), g)
    assert time.perf_counter() - t < 5.0
    assert 0.5 < m["auc"] < 1 and 0 < m["top@1"] < m["top@5"] < m["top@10"] <= 1
    assert set(m) >= {"auc", "logloss", "top@1", "top@5", "top@10", "mrr", "ndcg@10"}


def test_input_checks():
    with pytest.raises(ValueError):
        group_metrics([1, 0], [0.1, np.nan], [1, 1])
    with pytest.raises(ValueError):
        group_metrics([1, 0], [0.1], [1, 1])
