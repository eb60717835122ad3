"""The lone request's path through the service: packing straight into the padded model batch
(``rankers.inputs.pack(rows=...)``, ``CompiledModel.predict``), the table's arrays scored without a
copy (``FeatureTable.X``), and the batcher scoring a call on an idle service from the call itself."""
import asyncio
import threading

import numpy as np
import pandas as pd
import pytest

from core.space import FeatureInputError, FeatureSpace, Field
from core.table import FeatureTable
from pipelines.serve import RequestBatcher
from rankers import inputs as rin

SPACE = FeatureSpace([Field("a", "categorical", vocab_size=5), Field("x", "dense"),
                      Field("b", "categorical", vocab_size=3), Field("v", "dense", dim=2),
                      Field("s", "sequence", vocab_size=4, dim=3)])


def features(n=2):
    X = {"a": np.array([4, 0], np.int32), "x": np.array([0.5, -1.0], np.float32), "b": np.array([1, 2], np.int16),
         "v": np.array([[1, 2], [3, 4]], np.float64), "s": np.array([[1, 2, 3], [0, 0, 1]], np.int32)}
    return {k: v[:n] for k, v in X.items()}


def test_pack_by_hand():
    p = rin.pack(SPACE, features())
    assert p["cat"].dtype == np.int32 and p["cat"].tolist() == [[4, 1], [0, 2]]
    assert p["dense"].dtype == np.float32 and p["dense"].tolist() == [[0.5, 1, 2], [-1, 3, 4]]
    assert p["seq_s"].dtype == np.int32 and p["seq_s"].tolist() == [[1, 2, 3], [0, 0, 1]]


def test_pack_into_padded_rows():
    p = rin.pack(SPACE, features(), rows=4)
    assert p["cat"].tolist() == [[4, 1], [0, 2], [0, 0], [0, 0]]
    assert p["dense"].tolist() == [[0.5, 1, 2], [-1, 3, 4], [0, 0, 0], [0, 0, 0]]
    assert p["seq_s"].tolist() == [[1, 2, 3], [0, 0, 1], [0, 0, 0], [0, 0, 0]]
    assert {k: v.shape[0] for k, v in rin.pack(SPACE, features(0), rows=32).items()} == {"cat": 32, "dense": 32,
                                                                                         "seq_s": 32}
    with pytest.raises(ValueError, match="cannot pack 2 rows into 1"):
        rin.pack(SPACE, features(), rows=1)


@pytest.mark.parametrize("change", [
    {"a": np.array([4, 5], np.int32)},                  # past the vocabulary (checked on the packed matrix)
    {"b": np.array([-1, 2], np.int16)},                 # negative
    {"a": np.array([2 ** 32 + 1, 0], np.int64)},         # would be 1 once cast to int32: checked before
    {"a": np.array([2 ** 32 - 1, 0], np.uint32)},        # -1 once cast to int32
    {"s": np.array([[1, 2, 4], [0, 0, 1]], np.int32)},  # a sequence id past its vocabulary
    {"a": np.array([1.0, 2.0])},                        # not ids
    {"x": np.array([1, 2], np.int32)},                  # dense of ints
    {"v": np.array([1.0, 2.0])},                        # wrong per-row shape
    {"x": np.array([0.5, 1.0, 2.0], np.float32)},       # wrong length
    {"extra": np.zeros(2)},
])
def test_pack_refuses_what_validate_refuses_with_its_message(change):
    X = {**features(), **change}
    with pytest.raises(FeatureInputError) as want:
        SPACE.validate(X)
    with pytest.raises(FeatureInputError) as got:
        rin.pack(SPACE, X)
    assert str(got.value) == str(want.value)


@pytest.mark.parametrize("stacked_rows", [256, 0])  # stacked at once; one field at a time
def test_pack_stacks_each_kind_as_per_field_casts_do(monkeypatch, stacked_rows):
    """Fields of mixed dtypes, every dense field of one value a row: each kind stacked at once gives
    the per-field cast (ids as int32, floats rounded to float32 once); a field added to the space
    after a pack is packed too (the space's layout is made again)."""
    monkeypatch.setattr(rin, "_STACKED_ROWS", stacked_rows)
    space = FeatureSpace([Field("a", "categorical", vocab_size=300), Field("x", "dense"),
                          Field("b", "categorical", vocab_size=70000), Field("y", "dense"),
                          Field("c", "categorical", vocab_size=5)])
    rng = np.random.default_rng(4)
    X = {"a": np.array([299, 0, 7], np.uint16), "b": np.array([65535, 1, 69999], np.uint32),
         "c": np.array([4, 0, 2], np.int8), "x": rng.normal(size=3), "y": rng.normal(size=3).astype(np.float16)}
    for rows in (None, 5):
        p = rin.pack(space, X, rows)
        assert p["cat"].dtype == np.int32 and p["cat"][:3].tolist() == [[299, 65535, 4], [0, 1, 0], [7, 69999, 2]]
        want = np.stack([np.float32(v) for v in (X["x"], X["y"])], axis=1)
        assert p["dense"].dtype == np.float32 and np.array_equal(p["dense"][:3].view(np.uint32), want.view(np.uint32))
        assert not p["cat"][3:].any() and not p["dense"][3:].any()
    space.fields.append(Field("d", "categorical", vocab_size=3))
    assert rin.pack(space, {**X, "d": np.array([2, 1, 0], np.int32)})["cat"][:, 3].tolist() == [2, 1, 0]


def test_pack_names_a_missing_field():
    with pytest.raises(FeatureInputError, match="'b'.*missing"):
        rin.pack(SPACE, {k: v for k, v in features().items() if k != "b"})


def test_pack_takes_lists_and_wide_ids_through_validate():
    X = {**features(), "a": [4, 0], "b": np.array([1, 2], np.int64)}
    assert rin.pack(SPACE, X)["cat"].tolist() == [[4, 1], [0, 2]]


def test_X_without_a_split_is_the_tables_arrays_and_with_one_a_copy():
    space = FeatureSpace([Field("a", "categorical", vocab_size=5), Field("x", "dense")])
    arrays = {"a": np.array([1, 2, 3], np.int32), "x": np.array([0.1, 0.2, 0.3], np.float32), "unused": np.zeros(3)}
    rows = pd.DataFrame({"sample_id": ["s", "s", "t"], "label": [1, 0, 1],
                                           "split": ["train", "test", "test"]})
    t = FeatureTable(rows, arrays, space)
    X = t.X()
    assert list(X) == ["a", "x"] and X["a"] is arrays["a"] and X["x"] is arrays["x"]
    test = t.X(space, "test")
    assert test["a"].tolist() == [2, 3] and not np.shares_memory(test["a"], arrays["a"])


@pytest.fixture(scope="module")
def compiled():
    from pipelines.score import CompiledModel
    from rankers.registry import build
    from synth.planted import planted_table

    table = planted_table(n_rows=600, vocab_sizes=20, seed=3, interaction_weight=0.5)
    ranker = build("deepfm", table.space, epochs=1, batch_size=256, jit_compile=False, steps_per_execution=1)
    ranker.fit(*table.part("train")[:2])
    model = CompiledModel(ranker)
    model.warm_up()
    return model, table


def padded_call_of_each_chunk(model, X):
    """``CompiledModel.predict`` as it was: pack all rows, each chunk of at most the largest size
    concatenated with zero rows up to its size."""
    packed = rin.pack(model.space, X)
    n = len(next(iter(packed.values())))
    out, top = np.empty(n, np.float32), model.SIZES[-1]
    for s in range(0, n, top):
        m = min(top, n - s)
        size = next(z for z in model.SIZES if z >= m)
        batch = {k: np.concatenate([v[s: s + m], np.zeros((size - m,) + v.shape[1:], v.dtype)])
                 for k, v in packed.items()}
        out[s: s + m] = model._call(batch, size)[:m]
    return out


@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 2048, 2048 + 40, 2 * 2048])
def test_compiled_predict_equals_padding_each_chunk(compiled, n):
    model, table = compiled
    reps = -(-n // table.n_rows) or 1
    X = {k: np.concatenate([v] * reps)[:n] for k, v in table.X().items()}
    got = model.predict(X)
    assert got.dtype == np.float32 and got.shape == (n,)
    assert np.array_equal(got, padded_call_of_each_chunk(model, X))


def test_compiled_calls_are_the_functions_own_calls(compiled):
    """The lean call (``FlatCall``) of every padded size gives what the traced function gives."""
    model, table = compiled
    assert sorted(model._flat) == sorted(model.SIZES)
    for size, fn in model._fns.items():
        reps = -(-size // table.n_rows)
        packed = rin.pack(model.space, {k: np.concatenate([v] * reps)[:size] for k, v in table.X().items()})
        got = model._flat[size](packed)
        want = fn(packed).numpy()
        assert got.dtype == want.dtype == np.float32 and got.shape == (size,)
        assert np.array_equal(got, want)


def test_flat_call_of_a_function_of_variables():
    """Inputs in the flat order of the signature (sorted keys, not the dict's), variables captured."""
    import tensorflow as tf

    from pipelines.score import FlatCall

    w = tf.Variable([[0.5], [-1.0], [2.0]], dtype=tf.float32)
    emb = tf.Variable([0.1, 0.2, 0.3, 0.4], dtype=tf.float32)
    f = tf.function(lambda b: tf.sigmoid(tf.matmul(b["x"], w)[:, 0] + tf.reduce_sum(tf.gather(emb, b["a"]), axis=1)))
    fn = f.get_concrete_function({"x": tf.TensorSpec((4, 3), tf.float32, name="x"),
                                  "a": tf.TensorSpec((4, 2), tf.int32, name="a")})
    flat = FlatCall.of(fn)
    assert flat is not None and flat._keys == ["a", "x"]
    X = {"x": np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "a": np.array([[0, 1], [2, 3], [3, 3], [1, 0]], np.int32)}
    want = 1 / (1 + np.exp(-(X["x"] @ np.array([0.5, -1.0, 2.0]) + np.array([0.3, 0.7, 0.8, 0.3]))))
    np.testing.assert_allclose(flat(X), want, rtol=1e-6)
    assert np.array_equal(flat(X), fn(X).numpy())
    # Not one dict of tensors: no lean call (the function is called as it is).
    g = tf.function(lambda x, y: x + y).get_concrete_function(tf.TensorSpec((2,), tf.float32), tf.TensorSpec((2,), tf.float32))
    assert FlatCall.of(g) is None


@pytest.mark.parametrize("name", ["deepfm", "dnn", "wide_deep", "dcn", "kdcn", "fgcnn"])  # lr: scikit-learn
def test_compiled_keras_rankers_run_on_the_single_threaded_executor_with_the_functions_values(name):
    """Every padded size of a trained ranker: the single-threaded executor chosen up to a request's
    sizes (the default one for a batch's), the function's values."""
    from pipelines.score import CompiledModel, FlatCall
    from rankers.registry import build
    from synth.planted import planted_table

    table = planted_table(n_rows=300, vocab_sizes=20, seed=5, interaction_weight=0.5)
    ranker = build(name, table.space, epochs=1, batch_size=128, jit_compile=False, steps_per_execution=1)
    ranker.fit(*table.part("train")[:2])
    model = CompiledModel(ranker)
    assert {n: f.executor for n, f in model._flat.items()} == {32: FlatCall.SINGLE_THREADED, 128: FlatCall.SINGLE_THREADED,
                                                              512: "", 2048: ""}
    for size, fn in model._fns.items():
        reps = -(-size // table.n_rows)
        packed = rin.pack(model.space, {k: np.concatenate([v] * reps)[:size] for k, v in table.X().items()})
        assert np.array_equal(model._flat[size](packed), fn(packed).numpy())
        for executor in (FlatCall.SINGLE_THREADED, ""):
            assert np.array_equal(FlatCall(fn, model._flat[size]._keys, executor)(packed), fn(packed).numpy())


def test_flat_call_keeps_the_default_executor_where_the_single_threaded_one_refuses_or_differs():
    import tensorflow as tf

    from pipelines.score import FlatCall

    spec = {"x": tf.TensorSpec((4, 3), tf.float32, name="x")}
    X = {"x": np.arange(12, dtype=np.float32).reshape(4, 3) - 5}
    # Old-style control flow once lowered (Switch / Merge): the single-threaded executor refuses it.
    fn = tf.function(lambda b: tf.cond(tf.reduce_sum(b["x"]) > 0, lambda: b["x"][:, 0] * 2,
                                       lambda: b["x"][:, 0] - 1)).get_concrete_function(spec)
    with pytest.raises(tf.errors.FailedPreconditionError, match="Single-threaded executor"):
        FlatCall(fn, ["x"])(X)
    flat = FlatCall.of(fn)
    assert flat.executor == "" and flat(X).tolist() == [-10, -4, 2, 8] == fn(X).numpy().tolist()
    # A value that differs from the function's on the check's call (a counter that each call moves on).
    calls = tf.Variable(0.0)
    fn = tf.function(lambda b: b["x"][:, 0] + calls.assign_add(1.0)).get_concrete_function(spec)
    assert FlatCall.of(fn).executor == "" and calls.numpy() == 2

# -- RequestBatcher: a call on an idle service is scored from the call itself -----------------------------------
class GatedScorer:
    """Records its calls (request ids) and the thread of each; holds the first call until ``gate``."""

    def __init__(self):
        self.calls, self.threads = [], []
        self.gate, self.started = threading.Event(), threading.Event()

    def score(self, requests):
        self.calls.append([r["request_id"] for r in requests])
        self.threads.append(threading.current_thread().name)
        self.started.set()
        self.gate.wait(10)
        if any(r.get("user_id") == "bad" for r in requests):
            raise ValueError("bad user")
        return [{"request_id": r["request_id"], "ranking": []} for r in requests]


def req(rid, user="u1"):
    return {"request_id": rid, "user_id": user, "candidates": ["i1"]}


def test_an_idle_batcher_scores_a_lone_call_without_its_worker_and_counts_it():
    s, sizes = GatedScorer(), []
    s.gate.set()

    async def run():
        b = RequestBatcher(s.score, asyncio.to_thread, on_batch=sizes.append)  # never started: no worker
        out = [await b.submit([req("a"), req("b", "u2")]), await b.submit([req("c")])]
        with pytest.raises(ValueError, match="bad user"):
            await b.submit([req("x", "bad")])
        return out, b._busy

    out, busy = asyncio.run(run())
    assert [[r["request_id"] for r in o] for o in out] == [["a", "b"], ["c"]]
    assert s.calls == [["a", "b"], ["c"], ["x"]] and sizes == [2, 1, 1] and not busy


def test_calls_arriving_while_a_lone_call_is_scored_are_coalesced_after_it():
    s, sizes = GatedScorer(), []

    async def run():
        b = RequestBatcher(s.score, asyncio.to_thread, on_batch=sizes.append)
        b.start()
        try:
            head = asyncio.ensure_future(b.submit([req("a")]))
            await asyncio.to_thread(s.started.wait, 10)
            rest = [asyncio.ensure_future(b.submit([req(r, u)])) for r, u in (("b", "u2"), ("c", "u3"))]
            await asyncio.sleep(0.05)
            assert s.calls == [["a"]]  # the worker waits while the lone call is scored
            s.gate.set()
            return await asyncio.gather(head, *rest)
        finally:
            await b.stop()

    out = asyncio.run(run())
    assert s.calls == [["a"], ["b", "c"]] and sizes == [1, 2]
    assert [o[0]["request_id"] for o in out] == ["a", "b", "c"]


def test_a_cancelled_lone_call_leaves_the_batcher_idle():
    s = GatedScorer()

    async def run():
        b = RequestBatcher(s.score, asyncio.to_thread)
        b.start()
        try:
            head = asyncio.ensure_future(b.submit([req("a")]))
            await asyncio.to_thread(s.started.wait, 10)
            head.cancel()
            await asyncio.sleep(0)
            s.gate.set()
            return await asyncio.wait_for(b.submit([req("b")]), 5)
        finally:
            await b.stop()

    assert asyncio.run(run())[0]["request_id"] == "b" and s.calls == [["a"], ["b"]]


def test_uvicorn_parses_http_with_httptools():
    """httptools is a dependency: uvicorn's default (``http="auto"``) takes it over pure-Python h11."""
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    async def app(scope, receive, send):
        pass

    config = uvicorn.Config(app, log_level="warning")
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
