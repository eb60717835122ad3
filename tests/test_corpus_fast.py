"""The corpus tables built from column arrays (``core.corpus.validate.frame_of``): the dtypes of the
contract, the frames ``pd.DataFrame`` gives on the same columns, candidate rows that are those of
the merge they stand for and that own their arrays."""
import numpy as np
import pandas as pd
import pytest

from core.corpus import TABLE_NAMES, Corpus, KnownItems, PROFILE_FIELDS
from tests.fixtures import tiny_records

DTYPES = {
    "items": ["str", "str", "str", "str", "float64"],
    "item_attrs": ["str", "str", "str"],
    "sessions": ["str", "str", "str"],
    "turns": ["str", "int64", "str", "str", "str", "boolean", "bool"],
    "turn_items": ["str", "int64", "str"],
    "pref_words": ["str", "int64", "str", "str"],
    "behaviors": ["str", "str", "str", "int64"],
    "samples": ["str", "str", "str", "int64", "str", "str"],
    "candidates": ["str", "int32", "str", "int8"],
}


def _users_dtypes(users: pd.DataFrame) -> list[str]:
    known = ["str"] + ["float64" if f in ("avg_pay_monthly", "membership_years") else
                       "object" if f == "top3_categories_recent" else "str" for f in PROFILE_FIELDS]
    return known + ["object"] * (len(users.columns) - len(known))  # unknown profile fields: raw values


def _is_constructed(df: pd.DataFrame) -> None:
    """``df`` is the frame the DataFrame constructor makes of its columns (blocks included)."""
    again = pd.DataFrame({c: df[c] for c in df.columns})
    pd.testing.assert_frame_equal(df, again, check_exact=True)
    assert df._mgr.nblocks == again._mgr.nblocks and df._mgr.is_consolidated()
    assert isinstance(df.index, pd.RangeIndex) and df.columns.dtype == again.columns.dtype


def test_tables_have_the_contract_dtypes_and_are_plain_frames():
    recs = tiny_records()
    recs["users"][0]["profile"]["vip"] = True  # an unknown profile field
    for corpus in (Corpus.from_records(**recs), Corpus.from_records()):  # and all tables empty
        for name in TABLE_NAMES:
            df = getattr(corpus, name)
            want = _users_dtypes(df) if name == "users" else DTYPES[name]
            assert [str(t) for t in df.dtypes] == want, name
            _is_constructed(df)
    users = Corpus.from_records(**recs).users.set_index("user_id")
    assert users.loc["U1", "top3_categories_recent"] == ["手机", "耳机"] and users.loc["U1", "vip"] is True


def _merged(corpus: Corpus) -> pd.DataFrame:
    """The candidate rows as the merge of candidates and samples gives them."""
    merged = corpus.candidates.merge(corpus.samples[["sample_id", "session_id", "user_id", "turn", "split"]],
                                     on="sample_id", how="left", sort=False)
    merged.insert(0, "row_id", np.arange(len(merged), dtype=np.int64))
    return merged


def test_candidate_rows_are_the_merge_and_own_their_arrays():
    corpus = Corpus.from_records(**tiny_records())
    rows = corpus.candidate_rows()
    pd.testing.assert_frame_equal(rows, _merged(corpus), check_exact=True)
    _is_constructed(rows)
    before = corpus.candidates.copy()
    rows.loc[0, "item_id"] = "changed"
    rows.loc[0, "position"] = 99
    pd.testing.assert_frame_equal(corpus.candidates, before, check_exact=True)


def test_known_items_take_is_frame_take():
    recs = tiny_records()
    known = KnownItems(recs["items"])
    rows = np.array([2, 0, 2])
    items, attrs, n = known.take(rows)
    pd.testing.assert_frame_equal(items, known.items.take(rows).reset_index(drop=True), check_exact=True)
    _is_constructed(items)
    _is_constructed(attrs)
    assert attrs["item_id"].tolist() == sum(([known.items["item_id"][r]] * k for r, k in zip(rows, n)), [])
    # the known tables are the tables of validation (their str columns slices of one Arrow array)
    plain = Corpus.from_records(**recs)
    pd.testing.assert_frame_equal(known.items, plain.items, check_exact=True)
    pd.testing.assert_frame_equal(known.item_attrs, plain.item_attrs, check_exact=True)
    want = pd.concat([plain.item_attrs[plain.item_attrs["item_id"] == plain.items["item_id"][r]] for r in rows],
                     ignore_index=True)
    assert len(want) and n.sum() == len(want)
    pd.testing.assert_frame_equal(attrs, want, check_exact=True)


def _blocks(df: pd.DataFrame) -> list:
    return [(type(b).__name__, str(b.dtype), b.mgr_locs.as_array.tolist()) for b in df._mgr.blocks]


def test_frame_of_makes_the_constructors_blocks():
    """Blocks built directly: the same blocks, in the same order, as the DataFrame constructor's;
    what the direct path does not take (dates) goes through pandas."""
    from core.corpus.validate import frame_of

    s = pd.StringDtype(na_value=np.nan)
    cols = {"row_id": np.arange(3), "a": pd.array(["x", None, "z"], dtype=s), "pos": np.arange(3, dtype=np.int32),
            "b": pd.array(["u", "v", "w"], dtype=s), "lab": np.array([1, 0, 1], np.int8),
            "rec": pd.array([True, None, False], dtype="boolean"), "turn": np.array([4, 5, 6], np.int64),
            "ok": np.array([True, False, True]), "x": np.array([0.5, np.nan, 1.0]),
            "lists": pd.Series([["a"], None, ["b"]], dtype=object), "y": np.array([1.0, 2.0, 3.0]),
            "other": pd.array(["p", "q", "r"], dtype=pd.StringDtype(na_value=np.nan))}  # another dtype object
    for columns in (cols, {"d": pd.to_datetime(["2020-01-01"] * 3).values, **cols}):
        got, want = frame_of(columns), pd.DataFrame(columns)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert _blocks(got) == _blocks(want) and got._mgr.is_consolidated()
        assert isinstance(got.index, pd.RangeIndex) and got.columns.dtype == want.columns.dtype
    for columns in ({"a": np.arange(2), "b": pd.array(["x", "y", "z"], dtype=s)},
                    {"b": pd.array(["x", "y", "z"], dtype=s), "c": pd.array(["x"], dtype=s)}):
        with pytest.raises(ValueError):
            frame_of(columns)
    empty = {"a": pd.array([], dtype=s), "n": np.array([], np.int64)}  # no rows: RangeIndex(0) as there
    pd.testing.assert_frame_equal(frame_of(empty), pd.DataFrame(empty), check_exact=True, check_index_type=True)
    # object values: an ndarray is inferred (by the constructor), a Series or NumpyExtensionArray kept
    objects = {"s": pd.Series(["a", None], dtype=object), "n": pd.arrays.NumpyExtensionArray(np.array(["b", None], object)),
               "x": np.array([1.0, 2.0])}
    for columns in (objects, {**objects, "o": np.array(["c", None], object)}):
        got = frame_of(columns)
        assert [str(t) for t in got.dtypes] == ["object", "object", "float64", "str"][:len(columns)]
        assert got["n"].tolist() == ["b", None] and got["s"].tolist() == ["a", None]


def test_positions_in_is_the_index_lookup():
    from core.corpus.validate import positions_in

    def index_lookup(ids, among):
        index = pd.Index(among)
        at = index.get_indexer(ids) if index.is_unique else None
        return None if at is None or (at < 0).any() else at.tolist()

    s = pd.StringDtype(na_value=np.nan)
    cases = [(["b", "a", "b", "c"], ["a", "b", "c"], [1, 0, 1, 2]), (["a"] * 3, ["a"], [0, 0, 0]), ([], ["a"], []),
             (["a", "x"], ["a", "b"], None), (["a"], ["a", "b", "a"], None),  # x missing; a repeated
             (["a", None], [None, "a"], [1, 0]), (["a", None], ["a"], None)]  # nulls: NaN matches NaN
    for ids, among, want in cases:
        for a, b in ((pd.array(ids, dtype=s), pd.array(among, dtype=s)), (np.array(ids, object), np.array(among, object))):
            got = positions_in(a, b)
            assert (None if got is None else got.tolist()) == want == index_lookup(a, b)


def test_candidate_rows_of_any_candidates_columns():
    """Candidates whose columns are not the contract's (reordered, one more) keep their columns;
    a repeated sample gives the merge's rows."""
    corpus = Corpus.from_records(**tiny_records())
    cands = corpus.candidates
    corpus.candidates = cands[["item_id", "sample_id", "label", "position"]].assign(extra=np.arange(len(cands)) * 2.5)
    rows = corpus.candidate_rows()
    pd.testing.assert_frame_equal(rows, _merged(corpus), check_exact=True)
    _is_constructed(rows)
    corpus.samples = pd.concat([corpus.samples, corpus.samples.iloc[:1]], ignore_index=True)
    rows = corpus.candidate_rows()
    assert len(rows) == len(cands) + (cands["sample_id"] == corpus.samples["sample_id"][0]).sum()


def test_boolean_column_is_pandas_conversion():
    from core.corpus.validate import _boolean_col

    for values in ([True, None, False], [], [None], [False, False]):
        got = _boolean_col(values)
        pd.testing.assert_extension_array_equal(got, pd.array(values, dtype="boolean"))
        assert np.array_equal(got._data, pd.array(values, dtype="boolean")._data)  # False under the mask, as there


def test_string_columns_sliced_from_one_array_are_each_columns_conversion():
    from core.corpus.validate import _str_col, _str_cols

    for columns in ((["a", None], [], ["中文", "b", None]), ([None],), (["a"], ["b", 1]), ()):  # 1: column by column
        got = _str_cols(*columns)
        assert len(got) == len(columns)
        for g, values in zip(got, columns):
            pd.testing.assert_extension_array_equal(g, _str_col(values))
            pd.testing.assert_extension_array_equal(g, pd.array(values, dtype="str"))


def test_str_array_is_what_pandas_makes_of_arrow_strings():
    """``_str_array`` sets what pandas' ``_from_pyarrow_array`` sets (the same attributes, values and
    dtype), so a pandas release that adds one fails here, not in a feature."""
    import pyarrow as pa

    from core.corpus.validate import _STR, _str_array

    like = pd.array(["x"], dtype="str")
    for values in (["a", None, "中文"], [], [None]):
        chunked = pa.chunked_array([pa.array(values, pa.large_string())])
        got, ref = _str_array(chunked), like._from_pyarrow_array(chunked)
        assert type(got) is type(ref) and set(vars(got)) == set(vars(ref))
        assert got._pa_array is chunked and got.dtype == ref.dtype == _STR
        pd.testing.assert_extension_array_equal(got, pd.array(values, dtype="str"))


def test_few_and_many_rows_are_looked_up_and_taken_alike():
    """positions_in and take_columns find a request's few rows with Python values, more with pyarrow:
    both give the index lookup's positions and ``take``'s values and dtypes."""
    from core.corpus.validate import _FEW, _FEW_ROWS, positions_in, take_columns

    s = pd.StringDtype(na_value=np.nan)
    rng = np.random.default_rng(0)
    for n_among, n_ids in ((3, 31), (_FEW, _FEW_ROWS), (_FEW + 1, 40), (5, _FEW_ROWS + 1), (300, 2000)):
        among = [f"s{k}" for k in rng.permutation(n_among)]
        ids = [among[k] for k in rng.integers(0, n_among, n_ids)]
        a, b = pd.array(ids, dtype=s), pd.array(among, dtype=s)
        at = positions_in(a, b)
        assert at.dtype == np.int32 and at.tolist() == pd.Index(among).get_indexer(ids).tolist()
        assert positions_in(pd.array(ids + ["nope"], dtype=s), b) is None
        assert positions_in(a, pd.array(among + among[:1], dtype=s)) is None
        columns = {"id": b, "text": pd.array([None if k % 3 == 0 else f"文{k}" for k in range(n_among)], dtype=s),
                   "na": pd.array([f"x{k}" for k in range(n_among)], dtype="string[pyarrow]"),  # another str dtype
                   "turn": np.arange(n_among) * 2}
        taken = take_columns(columns, at)
        for c, v in columns.items():
            want = v.take(at)
            assert type(taken[c]) is type(want) and taken[c].dtype == want.dtype
            if isinstance(want, np.ndarray):
                assert np.array_equal(taken[c], want)
            else:
                pd.testing.assert_extension_array_equal(taken[c], want)
