"""The scikit-learn LR: its design matrix by hand, and a fit solved to convergence (score equations)."""
import numpy as np

from core.space import FeatureSpace, Field
from rankers import inputs as rin
from rankers.lr import design_matrix
from rankers.registry import build


def test_design_matrix_by_hand():
    space = FeatureSpace([Field("c", "categorical", vocab_size=3), Field("d", "categorical", vocab_size=2),
                          Field("x", "dense", dim=2), Field("s", "sequence", vocab_size=4, dim=3)])
    X = {"c": np.array([2, 0], np.int32), "d": np.array([1, 1], np.int32),
         "x": np.array([[0.5, -1.0], [2.0, 0.0]], np.float32), "s": np.array([[1, 3, 0], [2, 2, 0]], np.int32)}
    m = design_matrix(space, rin.pack(space, X)).toarray()
    # columns: c (3 ids) | d (2 ids) | x (2) | s's vocabulary (4 ids, mean one-hot over non-padding ids)
    np.testing.assert_allclose(m, [[0, 0, 1, 0, 1, 0.5, -1, 0, 0.5, 0, 0.5],
                                   [1, 0, 0, 0, 1, 2.0, 0, 0, 0, 1.0, 0]])


def test_fit_is_solved_to_convergence_on_a_rare_cell():
    """A rare indicator whose rows are never clicked: at convergence the unpenalised intercept's score
    equation holds (mean prediction = click rate) and the cell is predicted far below the base rate; an
    early-stopped Adam fit (the former Keras LR) left such cells ten times too high."""
    rng = np.random.default_rng(0)
    n = 20_000
    fit = rng.normal(size=n)
    rejected = (rng.random(n) < 0.03).astype(np.float32)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-3.0 + 1.0 * fit - 6.0 * rejected)))).astype(np.int64)
    assert y[rejected == 1].sum() <= 2
    space = FeatureSpace([Field("fit", "dense"), Field("rejected", "dense")])
    X = {"fit": fit.astype(np.float32), "rejected": rejected}
    r = build("lr", space).fit(X, y)
    p = r.predict(X)
    assert abs(p.mean() - y.mean()) < 1e-4
    assert p[rejected == 1].mean() < 0.2 * y.mean()
    assert r.coef_[1] < -2.0 and abs(r.coef_[0] - 1.0) < 0.15
