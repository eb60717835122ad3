"""features.frames: the integer-position joins and lookups the extractors share, against pandas."""
import numpy as np
import pandas as pd
import pytest

import features.frames as frames
from features.frames import isin, join_positions, positions


@pytest.mark.parametrize("cut", [0, 2048])  # Arrow's / pandas' hashing, Python's (both sides up to the cut)
def test_join_positions_and_positions_match_pandas(monkeypatch, cut):
    monkeypatch.setattr(frames, "_OBJECT_HASHING_MAX", cut)
    rng = np.random.default_rng(0)
    vals = np.array(["a", "b", "c", "d", np.nan], dtype=object)
    for _ in range(100):
        n, m = rng.integers(0, 25, 2)
        left, right = pd.Series(rng.choice(vals, n), dtype="str"), pd.Series(rng.choice(vals, m), dtype="str")
        want = (pd.DataFrame({"k": left, "l": np.arange(n)})
                .merge(pd.DataFrame({"k": right, "r": np.arange(m)}), on="k", how="inner"))
        for lft, rgt in ((left, right), (left.to_numpy(object), list(right)), (left, right.astype(object))):
            lp, rp = join_positions(lft, rgt)
            assert lp.tolist() == want["l"].tolist() and rp.tolist() == want["r"].tolist()
        index = pd.Index(pd.unique(right.dropna()))
        assert positions(index, left).tolist() == index.get_indexer(left).tolist()
        assert isin(left, right.dropna()).tolist() == left.isin(right.dropna()).tolist()
    ints = join_positions(np.array([3, 1, 3]), np.array([1, 3, 3, 7]))
    assert [x.tolist() for x in ints] == [[0, 0, 1, 2, 2], [1, 2, 0, 1, 2]]


def test_lookup_is_a_map_of_the_keyed_values():
    from features.frames import lookup

    ids = pd.Series(["u1", "u2", "u3"], dtype="str")
    wanted = pd.Series(["u3", "x", "u1", "u3"], dtype="str", index=[5, 6, 7, 8])
    for values in (pd.Series([1.5, np.nan, 3.0]), pd.Series(["a", None, 7], dtype=object)):
        got, want = lookup(ids, values, wanted), wanted.map(values.set_axis(ids))
        pd.testing.assert_series_equal(got, want, check_names=False, check_dtype=values.dtype != object)
    assert lookup(ids, pd.Series([1.0, 2.0, 3.0]), pd.Series(["u2"], dtype="str")).tolist() == [2.0]
    assert lookup(ids.iloc[:0], pd.Series([], dtype=float), wanted).isna().all()
