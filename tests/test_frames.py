"""features.frames: the integer-position joins and lookups the extractors share, against pandas."""
import numpy as np
import pandas as pd
import pytest

import features.frames as frames
from features.frames import isin, join_positions, positions


@pytest.mark.parametrize("cut, small", [(0, 0), (2048, 0), (2048, 256)])  # Arrow's / pandas' hashing, Python's
def test_join_positions_and_positions_match_pandas(monkeypatch, cut, small):  # (both sides up to the cut); dicts
    monkeypatch.setattr(frames, "_OBJECT_HASHING_MAX", cut)
    monkeypatch.setattr(frames, "_DICT_MAX", small)
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


def test_join_codes_of_a_few_codes_is_the_sorted_join():
    rng = np.random.default_rng(1)
    for _ in range(200):
        left, right = rng.integers(-1, 5, rng.integers(0, 12)), rng.integers(-1, 5, rng.integers(0, 12))
        got = frames._join_small(left, right)
        by_key = np.argsort(right, kind="stable")  # every right row of each left code, in right order
        want = [(i, j) for i, c in enumerate(left.tolist()) if c >= 0 for j in by_key if right[j] == c]
        assert list(zip(*[g.tolist() for g in got])) == want and all(g.dtype == np.intp for g in got)
    assert [g.tolist() for g in frames._join_small(np.array([2, 0, 2]), np.array([2, 1, 2]))] == [[0, 0, 2, 2],
                                                                                                   [0, 2, 0, 2]]


def test_column_values_are_the_series_to_numpy():
    df = pd.DataFrame({"s": pd.Series(["a", "b", "a"], dtype="str"), "m": pd.Series(["a", None, "c"], dtype="str"),
                       "i": np.array([3, 1, 2]), "f": np.array([0.5, np.nan, 2.0]), "o": np.array(["x", 1, None], object),
                       "b": pd.array([True, None, False], dtype="boolean")})
    for name in df.columns:
        for dtype in (None, object, float):
            if name in ("s", "m", "o") and dtype is float:
                continue
            got, want = frames.column_values(df, name, dtype), df[name].to_numpy(dtype)
            assert got.dtype == want.dtype and pd.isna(got).tolist() == pd.isna(want).tolist()
            assert [v for v in got.tolist() if not pd.isna(v)] == [v for v in want.tolist() if not pd.isna(v)]
    assert frames.column_values(df, "s").tolist() == ["a", "b", "a"]
    assert not frames.column_values(df, "i").flags.writeable  # the frame's own data, read-only as pandas gives it
    assert frames.column_values(df, "i", float).tolist() == [3.0, 1.0, 2.0]
    assert np.isnan(frames.column_values(df, "m")[1])  # a missing string: NaN, as to_numpy gives it
    assert frames.column_values(df.iloc[:0], "s").dtype == object


@pytest.mark.parametrize("small", [256, 0])  # a dict over a request's strings; pandas past the cut
def test_distinct_keys_are_the_factorized_ids_as_strings_with_their_keys(monkeypatch, small):
    from features.frames import distinct_keys

    monkeypatch.setattr(frames, "_DICT_MAX", small)
    key_of = {"I1": "ref:I1", "I2": "item:x"}
    rng = np.random.default_rng(1)
    vals = np.array(["I1", "I2", "I3", "I9", "i1"], dtype=object)
    cases = [pd.Series(rng.choice(vals, n), dtype="str") for n in (0, 1, 31, 200)]
    cases += [pd.Series(["I1", 7, "I1", 7.0, None], dtype=object), pd.Series([3, 1, 3], dtype=np.int64)]
    for ids in cases:
        codes, uniq = pd.factorize(ids.astype(str), use_na_sentinel=False)
        for given in (ids, ids.to_numpy(object)):  # a Series, or its values (``key_values``)
            got_codes, got_keys = distinct_keys(given, key_of)
            assert got_codes.dtype == codes.dtype and got_codes.tolist() == codes.tolist()
            assert got_keys.dtype == object and got_keys.tolist() == [key_of.get(i, i) for i in uniq.tolist()]
    assert distinct_keys(pd.Series(["I2", "I1", "I2"], dtype="str"), key_of)[1].tolist() == ["item:x", "ref:I1"]
