"""The array paths of the context features: preference words as turn positions, the growing phrase
embedder, the features over partitions of any cut, and a request's context against a corpus's."""
import numpy as np
import pandas as pd
import pytest

from features.context import FeatureContext
from features.extractors.context import _PhraseEmbedder, context_utterances
from features.preferences import PREF_COLUMNS, preferences_for_context
from features.registry import get_kind
from features.wordvec import phrase_matrix, to_keyed_vectors
from tests.fixtures import make_corpus
from tests.test_context_features import ITEMS, VECS

SESSIONS = {
    "C": [
        ("user", "想买华为手机，拍照清晰的", [("华为", "descriptive"), ("华为", "descriptive"), ("手机", "category")]),
        ("staff", "您看看这款", None),
        ("user", "不要金色的", None),  # extracted: negative
        ("user", "   ", None),  # blank: no word
        ("staff", "推荐这款", None),  # X1 recommends here
        ("user", "黑色的有吗", []),  # annotated as having none
        ("staff", "这款", None),  # X2 recommends here
    ],
    "D": [("user", "想要黑色手机", None), ("staff", "看看", None)],
}
SAMPLES = [("X1", "C", 4, ["G", "B", "R"], "B", "train"), ("X2", "C", 6, ["G", "B"], "G", "train"),
           ("Y1", "D", 1, ["B", "R"], "B", "test")]


def _ctx(c, tmp_path):
    return FeatureContext(c, tmp_path / "art", tmp_path / "cache", show_progress=False)


def test_preference_words_are_the_table_rows_with_their_context_turn(tmp_path):
    ctx = _ctx(make_corpus(ITEMS, SESSIONS, SAMPLES), tmp_path)
    prefs = ctx.preferences
    expected = [("X1", 0, "华为", "descriptive"), ("X1", 0, "手机", "category"), ("X1", 2, "不要金色", "negative"),
                ("X2", 0, "华为", "descriptive"), ("X2", 0, "手机", "category"), ("X2", 2, "不要金色", "negative"),
                ("Y1", 0, "黑色", "descriptive"), ("Y1", 0, "手机", "category")]
    assert list(prefs.itertuples(index=False, name=None)) == expected  # the repeated annotation once
    assert list(prefs.columns) == PREF_COLUMNS and list(prefs.index) == list(range(len(expected)))
    assert [str(d) for d in prefs.dtypes] == ["str", "int64", "str", "str"]
    words = ctx.preference_words
    ct = ctx.context_turns
    assert ct["sample_id"].to_numpy()[words.turn].tolist() == prefs["sample_id"].tolist()
    assert ct["turn_idx"].to_numpy()[words.turn].tolist() == prefs["turn_idx"].tolist()
    assert words.text.tolist() == prefs["text"].tolist() and words.type.tolist() == prefs["type"].tolist()
    pd.testing.assert_frame_equal(preferences_for_context(ctx), prefs)


def test_context_without_user_turns_has_the_empty_table(tmp_path):
    c = make_corpus(ITEMS, {"S": [("staff", "看看", None), ("staff", "这款", None)]},
                    [("Z", "S", 1, ["G"], "G", "train")])
    ctx = _ctx(c, tmp_path)
    assert len(ctx.preferences) == 0 and list(ctx.preferences.columns) == PREF_COLUMNS
    assert [str(d) for d in ctx.preferences.dtypes] == ["object", "int64", "object", "object"]
    assert len(ctx.preference_words.turn) == 0


def test_context_utterances_of_the_rows_samples(tmp_path):
    c = make_corpus(ITEMS, SESSIONS, SAMPLES)
    ctx = _ctx(c, tmp_path)
    rows = c.candidate_rows()
    u = context_utterances(rows, ctx, ("descriptive", "category", "comparative"))
    assert list(u.itertuples(index=False, name=None)) == [
        ("X1", "想买华为手机，拍照清晰的"), ("X2", "想买华为手机，拍照清晰的"), ("Y1", "想要黑色手机")]
    u = context_utterances(rows[rows["sample_id"] == "X2"], ctx, ("negative",))
    assert list(u.itertuples(index=False, name=None)) == [("X2", "不要金色的")]


def test_phrase_embedder_grows_and_keeps_every_vector():
    kv = to_keyed_vectors([f"w{k}" for k in range(200)], np.random.default_rng(0).normal(size=(200, 4)))

    class Split:  # a phrase "w1 w2" is the mean of its words
        def tokenize(self, text):
            return tuple(text.split())

    emb = _PhraseEmbedder(kv, Split())
    calls = [[f"w{k}" for k in range(50)], [f"w{k} w{k + 1}" for k in range(0, 150, 2)] + ["oov"],
             [f"w{k}" for k in range(40, 200)] + ["w3 w4", "oov"]]
    for phrases in calls:  # 50, then 76 and 151 new phrases: the matrix grows past 64 and 128 rows
        M, ok = emb(phrases)
        M0, ok0 = phrase_matrix(phrases, kv, Split())
        assert np.array_equal(M, M0) and np.array_equal(ok, ok0)
    assert len(emb.index) == 50 + 76 + 151


@pytest.fixture
def vec_file(tmp_path):
    p = tmp_path / "vectors.txt"
    p.write_text("\n".join([f"{len(VECS)} 4"] + [f"{w} " + " ".join(map(str, v)) for w, v in VECS.items()]) + "\n",
                 encoding="utf-8")
    return p


@pytest.mark.parametrize("aggregate", ["mean", "max"])
def test_glove_cosine_is_the_same_on_any_partition_and_in_a_context_of_its_own(tmp_path, vec_file, aggregate):
    c = make_corpus(ITEMS, SESSIONS, SAMPLES)
    ctx = _ctx(c, tmp_path)
    k = get_kind("glove_cosine")
    p = k.params(vectors={"method": "pretrained", "path": str(vec_file)}, aggregate=aggregate)
    state = k.fit(ctx, p)
    rows = c.candidate_rows()
    whole = k.transform(rows, ctx, p, state)
    assert whole["has_pref"].tolist() == [1, 1, 0, 1, 1, 1, 0] and whole["has_negative"].tolist() == [1, 1, 0, 1, 1, 0, 0]
    for cut in range(1, len(rows)):  # partitions as the corpus engines cut them, and arbitrary ones
        parts = pd.concat([k.transform(rows.iloc[:cut], ctx, p, state), k.transform(rows.iloc[cut:], ctx, p, state)])
        pd.testing.assert_frame_equal(parts, whole, check_exact=True)
    # a context of one sample only (a scoring request's): the same values
    one = make_corpus(ITEMS, {"D": SESSIONS["D"]}, [SAMPLES[2]])
    alone = k.transform(one.candidate_rows(), _ctx(one, tmp_path), p, state)
    assert np.array_equal(alone.to_numpy(), whole[rows["sample_id"] == "Y1"].to_numpy())


@pytest.mark.parametrize("codes", [[], [7], [3, 3, -1, 9, 3, 0, 9], list(np.random.default_rng(0).integers(-1, 40, 200))])
def test_factorize_ints_is_pandas_factorize(codes):
    from features.extractors.context import _factorize_ints

    codes = np.array(codes, np.int64)
    got, want = _factorize_ints(codes), pd.factorize(codes)
    assert got[0].dtype == want[0].dtype and got[1].dtype == want[1].dtype
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_item_value_index_groups_pairs_by_item():
    from features.extractors.context import _item_value_index

    item = np.array([2, 0, -1, 2, 0, 5, 2])
    phrase = np.array([4, 1, 3, 0, 6, 2, -1])
    ok = np.array([True, True, True, True, True, True, False])
    idx = _item_value_index(item, phrase, ok)  # pairs kept: (2,4) (0,1) (2,0) (5,2); (0,6) has no vector
    assert idx.items.tolist() == [0, 2, 5] and idx.starts.tolist() == [0, 1, 3] and idx.sizes.tolist() == [1, 2, 1]
    assert idx.cols.tolist() == [0, 1, 2, 4] and idx.cols[idx.value].tolist() == [1, 4, 0, 2]
    empty = _item_value_index(np.array([-1]), np.array([0]), ok)
    assert not len(empty.items) and not len(empty.starts) and not len(empty.sizes)


def test_row_max_mean_is_the_same_in_chunks_of_words_and_is_the_mean_of_best_cosines():
    from features.extractors.context import _distinct_codes, _first_pairs, _item_value_index, _row_max_mean

    rng = np.random.default_rng(3)
    M = rng.standard_normal((12, 5)).astype(np.float32)
    M /= np.linalg.norm(M, axis=1, keepdims=True)
    ok = np.ones(12, bool)
    ok[11] = False
    p_sample, p_word = _distinct_codes(*_first_pairs(np.array([0, 0, 1, 1, 1, 0]), np.array([0, 1, 2, 0, 11, 0])), ok)
    v_item, v_phrase = np.array([0, 0, 1, 2, 2, 2]), np.array([3, 4, 5, 6, 7, 11])
    index = _item_value_index(v_item, v_phrase, ok)
    row_item, row_sample = np.array([0, 1, 2, 0, 2, -1]), np.array([0, 0, 0, 1, 1, 1])
    whole = _row_max_mean(row_item, row_sample, p_sample, p_word, index, M)
    assert np.array_equal(whole, _row_max_mean(row_item, row_sample, p_sample, p_word, index, M, chunk=1))
    values = {0: [3, 4], 1: [5], 2: [6, 7]}  # (11 has no vector)
    words = {0: [0, 1], 1: [2, 0]}
    want = [np.mean([max(float(M[w] @ M[v]) for v in values[i]) for w in words[s]]) if i >= 0 else 0.0
            for i, s in zip(row_item.tolist(), row_sample.tolist())]
    np.testing.assert_allclose(whole, want, rtol=1e-6)


def test_codes_where_keeps_the_codes_of_every_row_and_recodes_a_part():
    from features.extractors.context import _codes_where

    codes, uniq = pd.factorize(np.array(["b", "a", "b", "c", "a"], dtype=object))
    got = _codes_where(codes, uniq, np.ones(5, bool))
    assert got[0].tolist() == [0, 1, 0, 2, 1] and got[1].tolist() == ["b", "a", "c"]
    got = _codes_where(codes, uniq, np.array([False, True, False, True, False]))  # a, c: b only elsewhere
    assert got[0].tolist() == [-1, 0, -1, 1, 0] and got[1].tolist() == ["a", "c"]


@pytest.mark.parametrize("bound", [1, 50, 1 << 17])
def test_unique_inverse_is_numpys(bound):
    from features.extractors.context import _unique_inverse

    for n in (0, 1, 7, 300):
        keys = np.random.default_rng(n).integers(0, bound, n)
        want = np.unique(keys, return_inverse=True)
        got = _unique_inverse(keys, bound)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1].reshape(-1))
