"""Rankers on a small planted-signal table (synth.planted): learning, shapes, save/load, seeds, errors.

Table: 12k rows in groups of 30, 8 categorical fields (vocab 20) + 3 dense + 1 sequence field, label
~ Bernoulli(sigmoid(FM teacher)); the teacher's own validation AUC is ~0.88. Thresholds on the
validation AUC after <= 5 epochs: every model > 0.73, the FM-family (DeepFM, FGCNN) > 0.77.
"""
import json

import numpy as np
import pytest
import tensorflow as tf

from core.space import FeatureInputError, FeatureSpace, Field
from rankers.config import load_model_config
from rankers.hparams import HyperparameterError
from rankers.registry import available, build, get, load
from synth.planted import planted_table

MODELS = ["lr", "dnn", "wide_deep", "deepfm", "fgcnn", "dcn", "gbdt"]
SKLEARN = ("lr", "gbdt")  # fitted by scikit-learn: no epochs, no SavedModel
FAST = {"epochs": 5, "batch_size": 256, "learning_rate": 0.005, "patience": 5, "jit_compile": False,
        "steps_per_execution": 1}
SMALL = {
    "fgcnn": {"conv_filters": [8, 8], "conv_kernel_width": [3, 3], "new_maps": [2, 2], "pooling_width": [2, 2],
              "dnn_precision": "float32"},
    "dcn": {"n_cross": 2, "dnn_hidden_units": [64, 64], "cross_projection_dim": None},
    "gbdt": {"max_iter": 100, "n_threads": 1},
}
MIN_AUC = {"deepfm": 0.77, "fgcnn": 0.77}


def hp(name, **extra):
    base = {} if name in SKLEARN else dict(FAST)
    return {**base, **SMALL.get(name, {}), **extra}


@pytest.fixture(scope="module")
def table():
    return planted_table(n_rows=12_000, vocab_sizes=20, seed=3, interaction_weight=0.5)


@pytest.fixture(scope="module")
def trained(table):
    Xtr, ytr, _ = table.part("train")
    Xva, yva, gva = table.part("valid")
    out = {}
    for name in MODELS:
        r = build(name, table.space, **hp(name))
        with pytest.warns(UserWarning) if name == "gbdt" else _nullcontext():
            out[name] = r.fit(Xtr, ytr, Xva, yva, gva)
    return out


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_registry_lists_models():
    assert set(MODELS) <= set(available())
    with pytest.raises(KeyError, match="unknown ranker"):
        get("nope")
    with pytest.raises(HyperparameterError, match=r"rankers.registry.build\('deepfm'\): no_such_hparam: unknown"):
        build("deepfm", FeatureSpace([Field("a", "dense")]), no_such_hparam=1)


@pytest.mark.parametrize("name", MODELS)
def test_learns_planted_signal(name, trained):
    h = trained[name].history_
    assert max(h["val_auc"]) > MIN_AUC.get(name, 0.73), h["val_auc"]
    if name not in SKLEARN:
        assert len(h["loss"]) == len(h["val_auc"]) and len(h["val_logloss"]) == len(h["val_auc"])
        assert {"val_top@1", "val_mrr", "val_ndcg@10"} <= set(h)


def test_fm_family_beats_linear(trained):
    best = {n: max(trained[n].history_["val_auc"]) for n in MODELS}
    assert best["deepfm"] > best["lr"] + 0.02


@pytest.mark.parametrize("name", MODELS)
def test_predict_shape_and_save_load_roundtrip(name, trained, table, tmp_path):
    r = trained[name]
    Xte, yte, gte = table.part("test")
    p = r.predict(Xte)
    assert p.dtype == np.float32 and p.shape == (len(yte),)
    assert np.all((p >= 0) & (p <= 1))
    m = r.evaluate(Xte, yte, gte)
    assert {"auc", "logloss", "top@1", "top@5", "top@10", "mrr", "ndcg@10"} <= set(m)
    path = r.save(tmp_path / name)
    assert json.loads((path / "ranker.json").read_text())["name"] == name
    assert (path / "feature_space.json").exists()
    assert not list(tmp_path.glob(".*tmp*"))  # temp dir renamed away
    again = load(path)
    assert type(again) is type(r) and again.hparams == r.hparams
    np.testing.assert_array_equal(again.predict(Xte), p)
    if name not in SKLEARN:  # the SavedModel's serving signature takes features by name
        sig = tf.saved_model.load(str(path)).signatures["serving_default"]
        out = sig(**{k: tf.constant(v[:100]) for k, v in Xte.items()})["score"].numpy()
        np.testing.assert_allclose(out, p[:100], rtol=1e-5, atol=1e-6)


def test_gbdt_exported_trees_match_sklearn(trained, table):
    from rankers.gbdt import predict_raw_numpy
    from rankers import inputs as rin

    r = trained["gbdt"]
    Xte, _, _ = table.part("test")
    Xm = r._matrix(rin.pack(table.space, Xte))
    ref = r.model_.predict_proba(Xm)[:, 1]
    np.testing.assert_allclose(r.predict(Xte), ref, rtol=1e-6)
    raw = r.model_._raw_predict(Xm)[:, 0]
    np.testing.assert_allclose(predict_raw_numpy(r.trees_, Xm), raw, rtol=1e-12, atol=1e-12)


def test_seed_reproducibility(table):
    Xtr, ytr, _ = table.part("train")
    Xva, yva, gva = table.part("valid")
    Xtr, ytr = {k: v[:3000] for k, v in Xtr.items()}, ytr[:3000]
    kw = hp("deepfm", epochs=2, dnn_dropout=0.1)
    a = build("deepfm", table.space, **kw).fit(Xtr, ytr, Xva, yva, gva)
    b = build("deepfm", table.space, **kw).fit(Xtr, ytr, Xva, yva, gva)
    assert a.history_["val_auc"] == b.history_["val_auc"]
    assert a.history_["loss"] == b.history_["loss"]
    np.testing.assert_array_equal(a.predict(Xva), b.predict(Xva))
    w0 = [w.copy() for w in build("deepfm", table.space, **kw).build_model().get_weights()]
    w7 = build("deepfm", table.space, **{**kw, "seed": 7}).build_model().get_weights()
    assert not all(np.array_equal(x, y) for x, y in zip(w0, w7))
    w0b = build("deepfm", table.space, **kw).build_model().get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(w0, w0b))


@pytest.mark.parametrize("name", ["deepfm", "dcn"])
def test_xla_training_learns_is_reproducible_and_predicts_in_chunks(name, table, tmp_path):
    """``jit_compile: true`` (the DeepFM / DCN default): same planted-signal bar, identical reruns,
    chunked prediction equal to one forward pass, and a save/load round trip."""
    Xtr, ytr, _ = table.part("train")
    Xva, yva, gva = table.part("valid")
    kw = hp(name, jit_compile=True, steps_per_execution=4, predict_batch_size=1000)
    a = build(name, table.space, **kw).fit(Xtr, ytr, Xva, yva, gva)
    b = build(name, table.space, **kw).fit(Xtr, ytr, Xva, yva, gva)
    assert max(a.history_["val_auc"]) > MIN_AUC.get(name, 0.73)
    assert a.history_["val_auc"] == b.history_["val_auc"]
    n = 1000 + 337  # one full chunk + a partial one
    part = {k: v[:n] for k, v in Xva.items()}
    p = a.predict(part)
    from rankers import inputs as rin

    eager = tf.sigmoid(a.model({k: tf.constant(v) for k, v in rin.pack(a.space, part).items()}, training=False))
    np.testing.assert_allclose(p, eager.numpy()[:, 0], rtol=1e-5, atol=1e-6)
    a.save(tmp_path / name)
    np.testing.assert_allclose(load(tmp_path / name).predict(part), p, rtol=1e-5, atol=1e-6)


def test_training_pipeline_runs_without_tf_data_autotuning(table):
    """Autotuning made iterator teardown wait for tf.data's optimiser thread (25-40 s idle after a
    fit, measured); the training dataset must keep it off."""
    from rankers import inputs as rin
    from rankers.training import make_train_dataset

    Xtr, ytr, _ = table.part("train")
    ds, steps = make_train_dataset(rin.pack(table.space, Xtr), ytr, 512, seed=0)
    assert ds.options().autotune.enabled is False
    assert steps == len(ytr) // 512
    x, y = next(iter(ds))
    assert y.shape == (512, 1) and x[rin.CAT].shape == (512, len(table.space.categorical))


def test_input_errors(trained, table):
    r = trained["deepfm"]
    Xte, _, _ = table.part("test")
    with pytest.raises(FeatureInputError, match="'c3'.*missing"):
        r.predict({k: v for k, v in Xte.items() if k != "c3"})
    with pytest.raises(FeatureInputError, match="not_a_feature"):
        r.predict({**Xte, "not_a_feature": Xte["d0"]})
    with pytest.raises(FeatureInputError, match="'d1' must be float"):
        r.predict({**Xte, "d1": Xte["d1"].astype(np.int32)})
    with pytest.raises(FeatureInputError, match="'c0'"):
        r.predict({**Xte, "c0": Xte["c0"].astype(np.float32)})
    Xtr, ytr, _ = table.part("train")
    with pytest.raises(FeatureInputError, match="'s0'"):
        build("lr", table.space).fit({**Xtr, "s0": Xtr["s0"][:, :2]}, ytr)


@pytest.fixture(scope="module")
def no_cat_table():
    return planted_table(n_rows=1200, n_cat=0, n_dense=3, n_seq=2, seed=5, pretrained_dim=8)


@pytest.mark.parametrize("name", MODELS)
def test_space_without_categorical_fields(name, no_cat_table, tmp_path):
    """Dense + two sequence fields sharing an 8-wide pretrained vocab (projected to k); also the
    pretrained init / freeze flag and the TensorBoard log dir."""
    t = no_cat_table
    Xtr, ytr, _ = t.part("train")
    Xva, yva, gva = t.part("valid")
    extra = {"max_iter": 5} if name == "gbdt" else {} if name == "lr" else {"epochs": 1}
    if name == "dnn":
        extra["pretrained_trainable"] = False
    r = build(name, t.space, **hp(name, **extra))
    if name == "dnn":  # optional TensorBoard logging (tensorboard is not a project dependency)
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            with pytest.raises(ImportError, match="tensorboard"):
                r.fit(Xtr, ytr, tensorboard_dir=str(tmp_path / "tb"))
        else:
            r.fit(Xtr, ytr, Xva, yva, gva, tensorboard_dir=str(tmp_path / "tb"))
            assert list((tmp_path / "tb").rglob("events.out.tfevents*"))
    r.fit(Xtr, ytr, Xva, yva, gva)
    p = r.predict(Xva)
    assert p.shape == (len(yva),) and np.isfinite(p).all()
    if name in ("dnn", "deepfm"):  # the shared vocab table starts from the pretrained matrix
        table = r.sequence_embedding("tokens")
        pre = t.space.pretrained["tokens"]
        if name == "dnn":  # frozen: unchanged by training
            assert not table.trainable
            np.testing.assert_array_equal(table.table.numpy(), pre)
        else:
            assert table.trainable and not np.array_equal(table.table.numpy(), pre)
            assert np.abs(table.table.numpy() - pre).max() < 0.5


@pytest.mark.parametrize("name", [m for m in MODELS if m not in SKLEARN])
def test_dense_only_and_categorical_only_spaces_build(name, table):
    """Forward pass of the untrained Keras graph on a dense-only and a categorical-only space."""
    X, _, _ = table.part("valid")
    for names in (["d0", "d1", "d2"], ["c0", "c1", "c2"], ["c0"]):
        space = table.space.subset(names)
        r = build(name, space, **hp(name))
        r.build_model()
        from rankers import inputs as rin

        p = r._predict_packed(rin.pack(space, {k: X[k][:50] for k in names}))
        assert p.shape == (50,) and np.isfinite(p).all()


def test_load_model_config_sections_and_paths(tmp_path):
    multi = tmp_path / "models.yaml"
    multi.write_text("deepfm:\n  epochs: 3\ndcn:\n  n_cross: 2\n")
    assert load_model_config("dcn", multi) == {"n_cross": 2}
    (tmp_path / "dnn.yaml").write_text("epochs: 7\n")
    assert load_model_config("dnn", tmp_path) == {"epochs": 7}
    r = build("dnn", FeatureSpace([Field("a", "dense")]), config=tmp_path)
    assert r.hparams["epochs"] == 7
    with pytest.raises(FileNotFoundError):
        load_model_config("lr", tmp_path)


def test_feature_table_npz_roundtrip(tmp_path):
    from core.table import FeatureTable

    t = planted_table(n_rows=300, n_cat=2, n_dense=1, n_seq=1, seed=1, pretrained_dim=4)
    again = FeatureTable.load(t.save(tmp_path / "tbl"))
    assert again.space.fields == t.space.fields
    for k in t.arrays:
        np.testing.assert_array_equal(again.arrays[k], t.arrays[k])
    np.testing.assert_array_equal(again.labels, t.labels)
    np.testing.assert_array_equal(again.groups, t.groups)
    assert list(again.split) == list(t.split)
    np.testing.assert_array_equal(again.space.pretrained["tokens"], t.space.pretrained["tokens"])


def test_custom_ranker_with_auto_named_layers(table):
    """A new Keras ranker = one class with build_logit; auto-named layers (a first 'dense') are fine."""
    from rankers.base import KerasRanker
    from rankers.layers import FM

    class TinyFM(KerasRanker):
        name = "tiny_fm_test"

        def build_logit(self, x):
            v = self.field_vectors(x)
            return self.linear_logit(x) + FM()(v) + tf.keras.layers.Dense(1)(self.dense_input(x))

    tf.keras.backend.clear_session()  # the next Dense is auto-named 'dense'
    r = TinyFM(table.space, **{**load_model_config("base"), **FAST})
    r.build_model()
    X, _, _ = table.part("valid")
    from rankers import inputs as rin

    assert r._predict_packed(rin.pack(table.space, X)).shape == (len(X["c0"]),)
