"""Every layer of rankers.layers is Keras-serialisable, and a saved ranker scores in a fresh process
without the ranker classes: via the SavedModel's serving signature and via the Keras model
reloaded with ``import rankers.layers`` alone."""
import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from rankers import inputs as rin
from rankers import layers as L
from rankers.registry import build

REPO = Path(__file__).resolve().parents[1]

# one instance per layer class, with non-default constructor arguments
LAYERS = [
    L.FusedEmbedding([3, 5], 4, l2=0.1, initializer="ones", name="fe"),
    L.VocabEmbedding(7, 3, l2=0.2, initializer="zeros", name="ve"),
    L.SequencePooling("max", name="sp"),
    L.DenseFeatures(name="df"),
    L.Linear([3, 4], 2, {"seq_a": ("words", 9), "seq_b": ("words", 11)}, l2=0.3, name="lin"),
    L.FM(name="fm"),
    L.MLP([8, 4], activation="tanh", dropout=0.2, batch_norm=True, l2=0.01, precision="bfloat16", name="mlp"),
    L.InnerProduct(name="ip"),
    L.FGCNNBlock([4, 6], [3, 3], [1, 2], [2, 1], l2=0.05, precision="float32", name="fg"),
    L.CrossDeep(3, [16, 8], projection_dim=4, dropout=0.1, batch_norm=True, l2=0.02, precision="float32", name="cd"),
    L.UserStateCNN([2, 3], filters=5, activation="tanh", l2=0.04, name="us"),
    L.DialogueSelfAttention(heads=2, pooling="mean", name="da"),
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda layer: type(layer).__name__)
def test_layer_config_holds_every_constructor_argument_and_round_trips(layer):
    cls = type(layer)
    assert tf.keras.utils.get_registered_name(cls) == f"econvrec>{cls.__name__}"
    cfg = layer.get_config()
    own_init = cls.__dict__.get("__init__")  # layers without one take only Keras' base arguments
    args = [p for p in inspect.signature(own_init).parameters if p not in ("self", "kwargs")] if own_init else []
    assert set(args) <= set(cfg), f"{cls.__name__}.get_config misses {set(args) - set(cfg)}"
    json.dumps(cfg)  # plain JSON
    again = tf.keras.layers.deserialize(tf.keras.layers.serialize(layer))
    assert type(again) is cls and again.get_config() == cfg


def test_pretrained_vocab_table_config_leaves_the_matrix_to_the_weights():
    layer = L.VocabEmbedding(4, 2, pretrained=np.ones((5, 2), np.float32), name="pre")
    cfg = layer.get_config()
    assert cfg["pretrained"] is None and cfg["initializer"] == "zeros" and cfg["vocab_size"] == 4


_LOADER = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    import rankers.layers  # registers the layers; nothing else of ours
    d = sys.argv[1]
    packed = dict(np.load(d + "/packed.npz"))
    features = dict(np.load(d + "/features.npz"))
    keras = tf.keras.models.load_model(d + "/model.keras")
    p_keras = tf.sigmoid(keras({k: tf.constant(v) for k, v in packed.items()}, training=False)).numpy()[:, 0]
    serve = tf.saved_model.load(d + "/ranker").signatures["serving_default"]
    p_serve = serve(**{k: tf.constant(v) for k, v in features.items()})["score"].numpy()
    assert not [m for m in sys.modules if m.startswith("rankers.") and m not in ("rankers.layers",)], \\
        sorted(m for m in sys.modules if m.startswith("rankers"))
    np.savez(d + "/out.npz", keras=p_keras, serve=p_serve)
""")


def _kdcn_data():
    from test_kdcn import FAST, planted

    space, X, y, _, _, _ = planted(n_groups=60)
    return space, X, y, dict(FAST, epochs=1)


def _deepfm_data():
    from synth.planted import planted_table

    t = planted_table(n_rows=600, n_cat=3, n_dense=2, n_seq=1, seed=4, pretrained_dim=4)
    X, y, _ = t.part("train")
    return t.space, X, y, {"epochs": 1, "batch_size": 128, "steps_per_execution": 1}


@pytest.mark.parametrize("name,data", [("deepfm", _deepfm_data), ("kdcn", _kdcn_data)])
def test_saved_ranker_predicts_in_a_fresh_process_without_the_ranker_class(name, data, tmp_path):
    space, X, y, hp = data()
    r = build(name, space, **hp).fit(X, y)
    X = {k: v[:200] for k, v in X.items()}
    expected = r.predict(X)
    r.save(tmp_path / "ranker")
    r.model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "packed.npz", **rin.pack(space, X))
    np.savez(tmp_path / "features.npz", **X)
    proc = subprocess.run([sys.executable, "-c", _LOADER, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_allclose(out["serve"], expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(out["keras"], expected, rtol=0, atol=1e-6)
