"""The array helpers behind price, price_constraint and item_reaction, on hand-computed cases."""
import numpy as np
import pandas as pd

from core.corpus import Corpus
from features.context import FeatureContext
from features.extractors.basic import id_positions
from features.extractors.constraints import _group_median, _text_matches
from features.extractors.feedback import _latest_per_sample, session_reactions, turns_before_sample
from features.reactions import ReactionDetector
from tests.fixtures import tiny_records


def test_group_median_matches_pandas_groupby_median():
    values = np.array([3.0, 1.0, np.nan, 4.0, 2.0, 10.0, np.nan, 7.0, 5.0])
    group = np.array([0, 0, 0, 1, 1, 1, 2, 3, 3])
    # group 0: {1, 3} (NaN skipped) -> 2; group 1: {2, 4, 10} -> 4; group 2: only NaN; group 3: {5, 7} -> 6
    expected = np.array([2.0, 2.0, 2.0, 4.0, 4.0, 4.0, np.nan, 6.0, 6.0])
    got = _group_median(values, group)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got, pd.Series(values).groupby(group).transform("median").to_numpy())
    assert len(_group_median(np.zeros(0), np.zeros(0, np.int64))) == 0


def test_id_positions_absent_and_repeated_ids():
    ids = np.array(["a", "b", "c"], dtype=object)
    wanted = pd.Series(["c", "x", "a", "c"], dtype="str")
    np.testing.assert_array_equal(id_positions(ids, wanted), [2, -1, 0, 2])
    np.testing.assert_array_equal(id_positions(ids, np.zeros(0, object)), np.zeros(0, np.int64))


def test_text_matches_bounds_and_wording():
    texts = np.array(["低于3000", "３０００元以内", "200g以内", "便宜一点", "别太贵", "低于3000", None], dtype=object)
    code, bound, cheaper, expensive = _text_matches(texts)
    assert code[0] == code[5] and code[6] == -1  # each distinct text once; missing stays missing
    per_text = {t: k for t, k in zip(texts[:5], code[:5])}
    assert bound[per_text["低于3000"]] == 3000.0
    assert bound[per_text["３０００元以内"]] == 3000.0  # full-width digits normalised
    assert np.isnan(bound[per_text["200g以内"]])  # a capacity, not a price
    assert cheaper[per_text["便宜一点"]] and not cheaper[per_text["别太贵"]]
    assert expensive[per_text["别太贵"]] and not expensive[per_text["便宜一点"]]
    # read once per process: again, alone or among new texts (one of them with a decimal bound), the same
    import features.extractors.constraints as constraints

    assert "低于3000" in constraints._READINGS
    again = _text_matches(np.array(["便宜一点", "不超过99.5元", "低于3000"], dtype=object))
    assert again[0].tolist() == [0, 1, 2] and again[1][1:].tolist() == [99.5, 3000.0] and np.isnan(again[1][0])
    assert again[2].tolist() == [True, False, False] and again[3].tolist() == [False, False, False]
    first = [x.tolist() for x in _text_matches(texts)]
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(first, (code, bound, cheaper, expensive)))


def test_turns_before_sample_pairs_each_turn_with_later_samples_of_its_session():
    samples = pd.DataFrame({"session_id": ["s1", "s1", "s2"], "turn": [3, 5, 2]})
    session_ids = np.array(["s1", "s2", "s1", "s3"], dtype=object)
    turn_idx = np.array([4, 1, 0, 0])
    ti, si = turns_before_sample(samples, session_ids, turn_idx)
    # turn 4 of s1: before sample 1 (turn 5) only; turn 1 of s2: sample 2; turn 0 of s1: both; s3: none
    assert list(zip(ti.tolist(), si.tolist())) == [(0, 1), (1, 2), (2, 0), (2, 1)]


def test_reaction_frames_of_the_tiny_corpus():
    corpus = Corpus.from_records(**tiny_records())
    ctx = FeatureContext(corpus, None, None)
    replies = session_reactions(ctx, ReactionDetector(None))
    latest = _latest_per_sample(ctx, replies)
    # X1's context: I1 shown at turn 1, the reply at turn 2 (还有别的吗) turns it down without a negative word
    x1 = latest[latest["sample_id"] == "X1"].set_index("item_id")
    assert x1.loc["I1", "label"] == "implied" and x1.loc["I1", "polarity"] == -1.0
    assert x1.loc["I1", "turns_since"] == 1.0 and x1.loc["I1", "asked"] == 0.0
    assert list(latest.columns) == ["sample_id", "item_id", "label", "polarity", "turns_since", "asked"]
    assert "X2" not in set(latest["sample_id"])  # nothing shown before X2's turn
