"""price_constraint: stated price bounds against the candidate's price, by hand."""
import numpy as np
import pytest

from features.context import FeatureContext
from features.registry import get_kind
from core.corpus import Corpus
from tests.fixtures import tiny_records


def run(rec):
    corpus = Corpus.from_records(**rec)
    k = get_kind("price_constraint")
    rows = corpus.candidate_rows()
    out = k.transform(rows, FeatureContext(corpus, None, None), k.params(), {})
    out.index = list(zip(rows["sample_id"], rows["item_id"]))
    return out


def test_upper_bound_cheaper_and_too_expensive():
    rec = tiny_records()
    turns = rec["sessions"][0]["turns"]
    turns[2]["text"] = "预算3000以内，再便宜一点"
    turns[2]["preference_words"] = [{"text": "3000以内", "type": "comparative"},
                                    {"text": "便宜一点", "type": "comparative"}]
    # A bound stated AT the recommendation turn must not count (leakage).
    turns[4]["preference_words"] = [{"text": "低于100", "type": "comparative"}]
    out = run(rec)
    # X1 candidates: I1 5999, I2 4999, I3 1999; bound 3000; last linked item before turn 3 is I1 (5999).
    assert out.loc[[("X1", "I2")], ""].item() == pytest.approx(np.log(4999 / 3000))
    assert out.loc[[("X1", "I3")], ""].item() == pytest.approx(np.log(1999 / 3000))
    assert out.loc[[("X1", "I2")], "violates"].item() == 1.0
    assert out.loc[[("X1", "I3")], "violates"].item() == 0.0
    assert out.loc[[("X1", "I3")], "cheaper"].item() == pytest.approx(np.log(1999 / 5999))
    assert out.loc[[("X1", "I3")], "has_constraint"].item() == 1.0
    # X2 said nothing about price: all zero.
    assert (out.loc[[("X2", "I3"), ("X2", "I1")]] == 0).all().all()


def test_too_expensive_uses_candidate_median_and_ignores_capacity_bounds():
    rec = tiny_records()
    turns = rec["sessions"][0]["turns"]
    turns[2]["preference_words"] = [{"text": "别太贵", "type": "negative"},
                                    {"text": "200G以内", "type": "comparative"}]
    out = run(rec)
    # Median of X1's candidate prices (5999, 4999, 1999) is 4999; "200G以内" is no price bound.
    assert out.loc[[("X1", "I1")], "too_expensive"].item() == pytest.approx(np.log(5999 / 4999))
    assert out.loc[[("X1", "I1")], ""].item() == 0.0
    assert out.loc[[("X1", "I1")], "violates"].item() == 0.0


def test_request_without_links_or_prices():
    rec = tiny_records()
    rec["samples"] = [s for s in rec["samples"] if s["sample_id"] == "X2"]  # nothing linked before turn 1
    out = run(rec)
    assert (out == 0).all().all()
