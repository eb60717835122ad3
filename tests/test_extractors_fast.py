"""The array paths the extractors share: the dialogue context's rows as positions (context_rows,
context_column, mention_rows) against the tables built the pandas way, and the id helpers of
features.frames (factorize_values on both sides of its size cut, id_positions, row_codes)."""
import numpy as np
import pandas as pd
import pytest

import features.frames as frames
from core.corpus import Corpus
from features.context import FeatureContext
from features.frames import RowCodes, factorize_values, id_positions, row_codes
from tests.fixtures import make_corpus, tiny_records
from tests.test_context_features import ITEMS

# Sample ids out of session order: the context table is sorted by sample id ("A1" first), then turn.
SESSIONS = {
    "C": [("user", "想买华为手机", None), ("staff", "您看看这款", None), ("user", "不要金色的", None),
          ("staff", "推荐这款", None)],
    "D": [("user", "想要黑色手机", None), ("staff", "看看", None), ("user", "有吗", None), ("staff", "这款", None)],
}
SAMPLES = [("X1", "C", 3, ["G", "B"], "B", "train"), ("B2", "D", 3, ["B", "R"], "B", "train"),
           ("A1", "D", 1, ["G"], "G", "train")]


def _ctx(corpus, tmp_path):
    return FeatureContext(corpus, tmp_path / "art", tmp_path / "cache", show_progress=False)


def _context_turns_by_pandas(ctx) -> pd.DataFrame:
    """The context table as it was built before positions: a concat of the joined rows, sorted."""
    ti, si = ctx.before_sample(ctx.corpus.turns)
    t = pd.concat([ctx.corpus.turns.take(ti).reset_index(drop=True),
                   ctx.corpus.samples[["sample_id", "user_id"]].take(si).reset_index(drop=True)], axis=1)
    return t.sort_values(["sample_id", "turn_idx"], kind="stable").reset_index(drop=True)


def test_context_rows_are_the_turns_before_each_sample_by_sample_id_then_turn(tmp_path):
    ctx = _ctx(make_corpus(ITEMS, SESSIONS, SAMPLES), tmp_path)
    ct = ctx.context_turns
    assert list(zip(ct["sample_id"], ct["turn_idx"])) == [("A1", 0), ("B2", 0), ("B2", 1), ("B2", 2),
                                                          ("X1", 0), ("X1", 1), ("X1", 2)]
    pd.testing.assert_frame_equal(ct, _context_turns_by_pandas(ctx), check_exact=True)
    turns, samples = ctx.context_rows
    assert ctx.corpus.samples["sample_id"].to_numpy()[samples].tolist() == ct["sample_id"].tolist()
    assert ctx.corpus.turns["text"].to_numpy()[turns].tolist() == ct["text"].tolist()
    for name in ct.columns:  # every column as an array, without the table
        assert ctx.context_column(name).tolist() == ct[name].to_numpy().tolist(), name
    assert ctx.context_column("role").tolist() == ["user", "user", "staff", "user", "user", "staff", "user"]


def test_no_linked_items_no_mentions(tmp_path):
    ctx = _ctx(make_corpus(ITEMS, SESSIONS, SAMPLES), tmp_path)
    assert len(ctx.mention_rows[0]) == 0 and len(ctx.mentions) == 0
    assert list(ctx.mentions.columns) == ["sample_id", "item_id"]


def test_mentions_are_the_distinct_items_linked_before_each_sample(tmp_path):
    recs = tiny_records()
    # X1 (C1, turn 3) sees I1 (turn 1), then I1 again and I3 (turn 2): I1 counts once; X2 sees nothing
    recs["sessions"][0]["turns"][2]["items"] = ["I1", "I3"]
    ctx = _ctx(Corpus.from_records(**recs), tmp_path)
    m = ctx.mentions
    assert list(zip(m["sample_id"], m["item_id"])) == [("X1", "I1"), ("X1", "I3")]
    ti, si = ctx.before_sample(ctx.corpus.turn_items)  # the table as it was built: joined rows, deduplicated
    by_pandas = pd.DataFrame({"sample_id": ctx.corpus.samples["sample_id"].take(si).reset_index(drop=True),
                              "item_id": ctx.corpus.turn_items["item_id"].take(ti).reset_index(drop=True)})
    pd.testing.assert_frame_equal(m, by_pandas.drop_duplicates().reset_index(drop=True), check_exact=True)
    turn_items, samples = ctx.mention_rows
    assert ctx.column("turn_items", "item_id")[turn_items].tolist() == m["item_id"].tolist()
    assert ctx.column("samples", "sample_id")[samples].tolist() == m["sample_id"].tolist()


@pytest.mark.parametrize("cut, small", [(0, 0), (10_000, 0), (10_000, 256)])  # Arrow's hashing (every column
def test_factorize_values_is_pandas_factorize_with_object_uniques(monkeypatch, cut, small):  # longer than 0),
    monkeypatch.setattr(frames, "_OBJECT_HASHING_MAX", cut)  # pandas' of objects, a dict (strings only)
    monkeypatch.setattr(frames, "_DICT_MAX", small)
    col = pd.Series(["b", None, "a", "b", None, "c"], dtype="str")
    codes, uniq = factorize_values(col)
    assert codes.tolist() == [0, 1, 2, 0, 1, 3]
    assert uniq.dtype == object and uniq[0] == "b" and np.isnan(uniq[1]) and uniq[2:].tolist() == ["a", "c"]
    codes, uniq = factorize_values(np.array(["x", "y", "x"], dtype=object))
    assert codes.tolist() == [0, 1, 0] and uniq.tolist() == ["x", "y"]
    for column in (pd.Series(["q", "p", "q", "r"], dtype="str"), np.array(["q", "p", "q", "r"], dtype=object)):
        codes, uniq = factorize_values(column)
        want_codes, want_uniq = pd.factorize(pd.Series(column, dtype="str"))
        assert codes.dtype == want_codes.dtype and codes.tolist() == want_codes.tolist() == [0, 1, 0, 2]
        assert uniq.dtype == object and uniq.tolist() == list(want_uniq)
    assert id_positions(np.array(["c", "b", "a"], dtype=object), col).tolist() == [1, -1, 2, 1, -1, 0]


def test_row_codes_are_shared_by_the_kinds_of_a_call(tmp_path):
    ctx = _ctx(make_corpus(ITEMS, SESSIONS, SAMPLES), tmp_path)
    rows = ctx.corpus.candidate_rows()
    codes = row_codes(rows, ctx)
    assert row_codes(rows, ctx) is codes  # memoised for the same rows
    assert codes.samples.tolist() == ["X1", "B2", "A1"] and codes.sample.tolist() == [0, 0, 1, 1, 2]
    assert codes.items.tolist() == ["G", "B", "R"] and codes.item.tolist() == [0, 1, 1, 2, 0]
    assert codes.items.dtype == object and codes.samples.dtype == object
    again = row_codes(rows.copy(), ctx)  # another rows object: coded again, the same codes
    assert again is not codes and all(np.array_equal(getattr(again, f), getattr(RowCodes.of(rows), f))
                                      for f in ("sample", "samples", "item", "items"))


def test_numeric_frame_is_the_dict_frame_as_floats():
    index = pd.RangeIndex(5, 8)
    cols = {"": np.array([0.5, np.nan, -1.0]), "flag": np.array([True, False, True]), "n": np.array([1, 2, 3])}
    got = frames.numeric_frame(cols, index)
    pd.testing.assert_frame_equal(got, pd.DataFrame(cols, index=index).astype(np.float64), check_exact=True)
    assert len(got._mgr.blocks) == 1  # one float64 block: serving reads the columns as its rows
    empty = frames.numeric_frame({"a": np.zeros(0), "b": np.zeros(0)}, pd.RangeIndex(0))
    assert empty.shape == (0, 2) and list(empty.dtypes) == [np.float64, np.float64]
    for index in (pd.Index([7, 3, 9]), pd.RangeIndex(3)):  # the frame the 2-d constructor makes, block for block
        values = np.stack([np.asarray(v, dtype=np.float64) for v in cols.values()])
        want = pd.DataFrame(values.T, index=index, columns=list(cols), copy=False)
        got = frames.numeric_frame(cols, index)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert got._mgr.is_consolidated() and got._mgr.blocks[0].mgr_locs.as_array.tolist() == [0, 1, 2]
        assert got._mgr.blocks[0].values.flags.c_contiguous == want._mgr.blocks[0].values.flags.c_contiguous
        assert np.array_equal(got.to_numpy().T, values, equal_nan=True)
    none = frames.numeric_frame({}, pd.RangeIndex(3))
    assert none.shape == (3, 0) and none.index.equals(pd.RangeIndex(3))


def test_before_sample_is_memoised_per_table_object(tmp_path):
    ctx = _ctx(make_corpus(ITEMS, SESSIONS, SAMPLES), tmp_path)
    turns = ctx.corpus.turns
    ti, si = ctx.before_sample(turns)
    assert ctx.before_sample(turns)[0] is ti  # the same table: its pairs once
    again = ctx.before_sample(turns.copy())  # another table object: joined again, the same pairs
    assert again[0] is not ti and again[0].tolist() == ti.tolist() and again[1].tolist() == si.tolist()
    # X1 (C, turn 3) sees C's turns 0-2; B2 (D, turn 3) D's 0-2; A1 (D, turn 1) D's turn 0
    pairs = sorted(zip(turns["session_id"].to_numpy()[ti], turns["turn_idx"].to_numpy()[ti],
                       ctx.corpus.samples["sample_id"].to_numpy()[si]))
    assert pairs == [("C", 0, "X1"), ("C", 1, "X1"), ("C", 2, "X1"), ("D", 0, "A1"), ("D", 0, "B2"),
                     ("D", 1, "B2"), ("D", 2, "B2")]


def test_flags_are_the_filled_boolean_column():
    from features.preferences import _flags

    for col in (pd.Series([True, False, True]), pd.Series([True, None, False], dtype="boolean"),
                pd.Series([1, None, 0], dtype=object)):
        want = col.fillna(False).astype(bool).to_numpy()
        got = _flags(col)
        assert got.dtype == bool and got.tolist() == want.tolist()


def test_item_index_codes_are_the_positions_of_the_ids_as_strings():
    from features.extractors.interactive import _ItemIndex
    from features.frames import positions

    index = _ItemIndex(pd.Series(["I1", "I2", "I1", "7"], dtype="str"))
    wanted = pd.Series(["I2", "x", "I1", "I2"], dtype="str")
    assert index.codes(wanted).tolist() == [1, 3, 0, 1]  # an unknown id: the extra last row
    assert index.codes(np.array([7, "I1", None], dtype=object)).tolist() == [2, 0, 3]  # 7 read as "7"; none
    old = positions(pd.Index(index.ids), wanted.astype(str))  # the pandas lookup it replaced
    assert np.where(old < 0, len(index.ids), old).tolist() == index.codes(wanted).tolist()
    ids = np.array(["I1", "x"], dtype=object)
    assert index.codes_of_distinct(ids) is index.codes_of_distinct(ids)  # memoised for the latest ids
    for column in (pd.Series(["I1", "I2", "I1", "7"], dtype="str"), pd.Series([3, 1, 3, 2]),
                   pd.Series(["b", None, "a", None], dtype="str")):  # the ids: pd.unique of them as strings
        got, want = _ItemIndex(column).ids, pd.unique(column.astype(str))
        assert got.dtype == object and len(got) == len(want)
        assert all(g == w or (pd.isna(g) and pd.isna(w)) for g, w in zip(got.tolist(), want.tolist()))
