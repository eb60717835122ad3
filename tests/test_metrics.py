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


def test_evaluate_on_28k_groups():
    # (speed is measured in benchmarks/, not asserted here: the machine is shared)
    rng = np.random.default_rng(1)
    n_groups, per = 28_000, 30
    y = np.zeros((n_groups, per), np.int64)
    y[:, 0] = 1
    s = rng.random((n_groups, per)).astype(np.float32)
    s[:, 0] += 0.3
    g = np.repeat(np.arange(n_groups), per)
    m = evaluate(y.ravel(), np.clip(s.ravel(), 0, 1), g)
    assert 0.5 < m["auc"] < 1 and 0 < m["top@1"] < m["top@5"] < m["top@10"] <= 1
    assert set(m) >= {"auc", "logloss", "top@1", "top@5", "top@10", "mrr", "ndcg@10"}


def test_input_checks():
    with pytest.raises(ValueError):
        group_metrics([1, 0], [0.1, np.nan], [1, 1])
    with pytest.raises(ValueError):
        group_metrics([1, 0], [0.1], [1, 1])


# -- bootstrap over requests (core.bootstrap) -------------------------------------------------------------
from core.bootstrap import METRICS, RequestBootstrap, ci95, paired_difference  # noqa: E402


def test_bootstrap_hand_computed_replicates():
    # request a: positive first; request b: positive between its two negatives
    y = np.array([1, 0, 0, 0, 1, 0])
    s = np.array([0.9, 0.5, 0.1, 0.8, 0.3, 0.2])
    g = np.array(["a", "a", "a", "b", "b", "b"])
    w = np.array([[2, 0], [0, 2], [1, 1]])  # a twice, b twice, both once
    r = RequestBootstrap(y, g, weights=w).replicates(s)
    # a alone: every pair right; b alone: 0.3 beats 0.2 but not 0.8; both: (4 + 2) of 8 pairs
    assert r["auc"] == pytest.approx([1.0, 0.5, 0.75])
    assert r["top@1"] == pytest.approx([1.0, 0.0, 0.5])
    assert r["mrr"] == pytest.approx([1.0, 0.5, 0.75])
    assert r["ndcg@10"] == pytest.approx([1.0, 1 / np.log2(3), (1 + 1 / np.log2(3)) / 2])
    loss_a = -(np.log(0.9) + np.log(0.5) + np.log(0.9)) / 3
    loss_b = -(np.log(0.2) + np.log(0.3) + np.log(0.8)) / 3
    assert r["logloss"] == pytest.approx([loss_a, loss_b, (loss_a + loss_b) / 2])


def _resampled(y, s, g, counts):
    """The replicate spelled out: each request copied count times, copies as distinct requests."""
    ids = np.unique(g)
    parts = [(y[g == r], s[g == r], np.full((g == r).sum(), f"{r}#{c}"))
             for r, n in zip(ids, counts) for c in range(int(n))]
    return [np.concatenate(p) for p in zip(*parts)]


def test_bootstrap_matches_slow_reference_loop():
    rng = np.random.default_rng(3)
    n_req, per = 40, 6
    y = np.zeros((n_req, per), int)
    y[np.arange(n_req), rng.integers(0, per, n_req)] = 1
    y[::7, 0] = 1        # some requests with two positives
    y[5] = 0             # and one without any
    s = np.round(rng.random((n_req, per)), 1)  # coarse scores: many ties
    g = np.repeat(np.arange(n_req), per)
    y, s = y.ravel(), s.ravel()
    boot = RequestBootstrap(y, g, n_boot=30, seed=1)
    fast = boot.replicates(s)
    assert set(fast) == set(METRICS)
    for b, counts in enumerate(boot.weights):
        ref = evaluate(*_resampled(y, s, g, counts))
        for m in METRICS:
            assert fast[m][b] == pytest.approx(ref[m], rel=1e-12, abs=1e-12), (b, m)


def test_paired_difference():
    rng = np.random.default_rng(0)
    n_req, per = 300, 10
    y = np.zeros((n_req, per), int)
    y[:, 0] = 1
    noise = rng.random((n_req, per))
    better, worse = noise.copy(), noise.copy()
    better[:, 0] += 0.5   # the positive pushed up in every request
    worse[:, 0] += 0.2
    g = np.repeat(np.arange(n_req), per)
    boot = RequestBootstrap(y.ravel(), g, n_boot=400, seed=0)
    ra, rb = boot.replicates(better.ravel()), boot.replicates(worse.ravel())
    a, b = evaluate(y.ravel(), better.ravel(), g), evaluate(y.ravel(), worse.ravel(), g)
    d = paired_difference(a["auc"], b["auc"], ra["auc"], rb["auc"])
    assert d["diff"] == pytest.approx(a["auc"] - b["auc"]) and 0 < d["low"] < d["diff"] < d["high"]
    assert d["p_not_better"] == 0.0
    same = paired_difference(a["auc"], a["auc"], ra["auc"], ra["auc"])
    assert (same["diff"], same["low"], same["high"]) == (0.0, 0.0, 0.0)
    # the paired interval is narrower than either model's own interval
    lo, hi = ci95(ra["auc"])
    assert lo < a["auc"] < hi and d["high"] - d["low"] < hi - lo


def test_ci95_percentiles():
    assert ci95(np.arange(1001.0)) == pytest.approx([25.0, 975.0])
    assert ci95(np.array([np.nan, 1.0, 1.0])) == [1.0, 1.0]


def test_bootstrap_over_seeds_is_the_mean_of_each_seeds_replicates():
    rng = np.random.default_rng(5)
    n_req, per = 60, 8
    y = np.zeros((n_req, per), int)
    y[:, 0] = 1
    g = np.repeat(np.arange(n_req), per)
    seeds = np.round(rng.random((3, n_req * per)), 2)  # three "training seeds", with ties
    boot = RequestBootstrap(y.ravel(), g, n_boot=50, seed=2)
    together = boot.replicates(seeds)
    apart = [boot.replicates(s) for s in seeds]
    for m in METRICS:
        assert together[m] == pytest.approx(np.mean([a[m] for a in apart], axis=0), rel=1e-12, abs=1e-12), m
