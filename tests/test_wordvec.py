"""Word vectors: GloVe co-occurrence and training, word2vec, pretrained formats, the fitted resource."""
import numpy as np
import pytest
from gensim.models import KeyedVectors

import features.wordvec as wv
from features.context import FeatureContext
from features.text import Tokenizer
from tests.fixtures import make_corpus
from tests.test_preferences import ITEMS


def test_cooccurrence_distance_weighting_symmetry_and_sentence_boundaries():
    vocab = ["a", "b", "c", "d"]
    X = wv.cooccurrence([["a", "b", "c"], ["c", "d"], ["a", "x", "b"]], vocab, window=2).toarray()
    # sentence 1: a-b d=1, b-c d=1, a-c d=2; sentence 2: c-d d=1;
    # sentence 3: OOV "x" is dropped first (GloVe), so a-b d=1 again. Nothing crosses sentences.
    expected = np.zeros((4, 4))
    for i, j, w in [(0, 1, 2.0), (1, 2, 1.0), (0, 2, 0.5), (2, 3, 1.0)]:
        expected[i, j] = expected[j, i] = w
    np.testing.assert_allclose(X, expected)


def test_build_vocab_min_count_and_order():
    words, counts = wv.build_vocab([["b", "a", "b"], ["c", "a", "b"]], min_count=2)
    assert words == ["b", "a"] and list(counts) == [3, 2]


def _topic_sentences(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    colours, animals = ["红", "绿", "蓝", "黄"], ["猫", "狗", "鱼", "鸟"]
    return [list(rng.choice(colours if k % 2 else animals, 8)) for k in range(n)]


def test_glove_cooccurring_words_end_up_closer_and_loss_decreases():
    sents = _topic_sentences()
    vocab, _ = wv.build_vocab(sents)
    X = wv.cooccurrence(sents, vocab, window=3)
    vecs, losses = wv.glove_fit(X, dim=16, epochs=30, x_max=10, seed=0)
    assert losses[-1] < losses[0] / 5
    kv = wv.to_keyed_vectors(vocab, vecs)
    for a, b in [("红", "绿"), ("蓝", "黄"), ("猫", "狗"), ("鱼", "鸟")]:
        assert kv.similarity(a, b) > 0.8
    for a, b in [("红", "猫"), ("绿", "鱼"), ("黄", "狗")]:
        assert kv.similarity(a, b) < 0.3


def test_glove_is_deterministic_for_a_seed():
    sents = _topic_sentences(200)
    a = wv.train_glove(sents, dim=8, window=2, epochs=5, seed=3)
    b = wv.train_glove(sents, dim=8, window=2, epochs=5, seed=3)
    assert a.index_to_key == b.index_to_key
    np.testing.assert_array_equal(a.vectors, b.vectors)


def test_word2vec_trainer_is_deterministic():
    sents = _topic_sentences(300)
    a = wv.train_word2vec(sents, dim=8, window=2, epochs=3, seed=1)
    b = wv.train_word2vec(sents, dim=8, window=2, epochs=3, seed=1)
    assert isinstance(a, KeyedVectors) and a.vector_size == 8
    np.testing.assert_array_equal(a.vectors, b[a.index_to_key])


def test_pretrained_formats(tmp_path):
    glove = tmp_path / "g.txt"
    glove.write_text("金色 1 0 0\n黑色 0 1 0\n", encoding="utf-8")
    w2v = tmp_path / "w.txt"
    w2v.write_text("2 3\n金色 1 0 0\n黑色 0 1 0\n", encoding="utf-8")
    for path, fmt in [(glove, "auto"), (glove, "glove"), (w2v, "auto"), (w2v, "word2vec")]:
        kv = wv.load_pretrained(path, fmt)
        assert kv.index_to_key == ["金色", "黑色"]
        np.testing.assert_array_equal(kv["黑色"], [0, 1, 0])
    binp = tmp_path / "v.bin"
    wv.save_vectors(kv, binp)
    back = wv.load_pretrained(binp)
    np.testing.assert_array_equal(back.vectors, kv.vectors)
    with pytest.raises(FileNotFoundError):
        wv.load_pretrained(tmp_path / "missing.txt")


def test_phrase_matrix_mean_of_tokens_oov_skipped():
    kv = wv.to_keyed_vectors(["金色", "手机", "黑色"], np.array([[3, 0, 0], [0, 4, 0], [0, 0, 1]], np.float32))
    tok = Tokenizer(["金色", "手机", "黑色"])
    M, ok = wv.phrase_matrix(["金色手机", "金色", "白色", "金色大象"], kv, tok)
    assert list(ok) == [True, True, False, True]
    np.testing.assert_allclose(M[0], np.array([1.5, 2, 0]) / 2.5)  # mean (1.5, 2, 0), norm 2.5
    np.testing.assert_allclose(M[1], [1, 0, 0])
    np.testing.assert_allclose(M[2], [0, 0, 0])
    np.testing.assert_allclose(M[3], [1, 0, 0])  # 大象 is OOV: skipped


def test_wordvec_resource_trains_once_and_reloads(tmp_path, monkeypatch):
    sessions = {"C": [("user", "想要华为手机", None), ("staff", "华为 金色 手机", None)]}
    c = make_corpus(ITEMS, sessions, [("X", "C", 1, ["G"], "G", "train")])
    ctx = FeatureContext(c, tmp_path / "art", tmp_path / "cache")
    tok = Tokenizer(["华为", "金色", "手机", "黑色"])
    params = wv.VectorParams(method="glove", dim=4, window=2, min_count=1, epochs=3)
    calls = []
    real = wv.train_vectors
    monkeypatch.setattr(wv, "train_vectors", lambda p, s: calls.append(s) or real(p, s))
    rel = wv.wordvec_resource(ctx, params, tok)
    rel2 = wv.wordvec_resource(ctx, params, tok)
    assert rel == rel2 and len(calls) == 1
    # dialogue texts of training sessions and item titles, tokenised with the KB-aware tokenizer
    assert ("华为", "金色", "手机") in calls[0] and ("想要", "华为", "手机") in calls[0]
    kv = wv.load_saved(ctx.path(rel))
    assert {"华为", "手机", "金色"} <= set(kv.index_to_key) and kv.vector_size == 4
    assert rel.startswith("resources/wordvec-") and rel.endswith("vectors.bin")
