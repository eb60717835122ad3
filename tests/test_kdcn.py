"""K-DCN ranker: layer shapes and masking, KF field roles, learning a signal planted in the KF
sequences, frozen vs fine-tuned pretrained table, the no-pretraining ablation, save/load."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from core.space import FeatureSpace, Field
from rankers import registry as R
from rankers.kdcn import KDCNRanker
from rankers.layers import DialogueSelfAttention, UserStateCNN
from core.metrics import evaluate

V, C, DIM = 300, 6, 16  # entities (pad + oov + 298), clusters, pretrained width
FAST = dict(batch_size=256, dnn_hidden_units=[128, 128], cross_projection_dim=None, jit_compile=False,
            steps_per_execution=8)


def planted(n_groups=600, group=10, seed=0):
    """Candidate rows whose label depends only on KF sequences, through the pretrained geometry.

    Entities belong to one of C clusters and their pretrained vectors are cluster centroid +
    noise. Per sample: a user cluster ``cu`` (80% of the clicks, 50% of cart, 60% of purchases
    come from it) and a query cluster ``cq`` (80% of the query keywords); per candidate a title
    cluster (90% of its title keywords). ``logit = 1.5 [cu < C/2] + 2.5 [title cluster == cq]
    + 0.3 price - 2``: the user-state signal is linear in the averaged behaviour embedding, the
    dialogue signal is a query/title match. Other fields: the (uninformative) candidate cluster
    id is NOT given; a noise categorical and the price are.
    """
    rng = np.random.default_rng(seed)
    ent_cluster = rng.integers(0, C, V)
    by_c = [np.flatnonzero((ent_cluster == c) & (np.arange(V) >= 2)) for c in range(C)]
    centroids = rng.normal(0, 1, (C, DIM))
    pre = (centroids[ent_cluster] + rng.normal(0, 0.4, (V, DIM))).astype(np.float32)
    pre[:2] = 0
    n = n_groups * group
    cu = np.repeat(rng.integers(0, C, n_groups), group)
    cq = np.repeat(rng.integers(0, C, n_groups), group)
    cand = rng.integers(0, C, n)

    def seq(cl, L, p_in, minlen):
        lens = rng.integers(minlen, L + 1, n)
        inside = rng.random((n, L)) < p_in
        c = np.where(inside, cl[:, None], rng.integers(0, C, (n, L)))
        pick = rng.random((n, L))
        ids = np.empty((n, L), np.int32)
        for k in range(C):
            m = c == k
            ids[m] = by_c[k][(pick[m] * len(by_c[k])).astype(int)]
        ids[np.arange(L)[None, :] >= lens[:, None]] = 0
        return ids

    X = {
        "user_state__click": seq(cu, 5, 0.8, 1),
        "user_state__cart": seq(cu, 3, 0.5, 0),
        "user_state__favorite": seq(rng.integers(0, C, n), 3, 0.0, 0),
        "user_state__purchase": seq(cu, 2, 0.6, 0),
        "dialogue_keywords__query": seq(cq, 4, 0.8, 1),
        "dialogue_keywords__title": seq(cand, 4, 0.9, 1),
        "noise_cat": rng.integers(0, 12, n).astype(np.int32),
        "price": rng.normal(0, 1, n).astype(np.float32),
    }
    logit = 1.5 * (cu < C // 2) + 2.5 * (cand == cq) + 0.3 * X["price"] - 2.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    fields = [Field("noise_cat", "categorical", vocab_size=12, group="BF"), Field("price", "dense", group="BF")]
    fields += [Field(k, "sequence", vocab_size=V, dim=v.shape[1], vocab="ckg_entity", group="KF")
               for k, v in X.items() if v.ndim == 2]
    groups = np.repeat(np.arange(n_groups), group)
    split = np.where(groups < int(n_groups * 0.75), "train", "valid")
    return FeatureSpace(fields, {"ckg_entity": pre}), X, y, groups, split, logit


@pytest.fixture(scope="module")
def table():
    return planted()


def _part(X, m):
    return {k: v[m] for k, v in X.items()}


# -- layers --------------------------------------------------------------------------------------------------
def test_user_state_cnn_shapes():
    B = tf.random.normal((3, 4, DIM))
    assert UserStateCNN((2, 4), filters=5)(B).shape == (3, (3 + 1) * 5)  # heights 2 and 4 over k = 4 rows
    # fewer behaviour rows than the tallest kernel: zero-padded to 4 rows
    assert UserStateCNN((2, 4), filters=5)(tf.random.normal((3, 1, DIM))).shape == (3, (3 + 1) * 5)



def test_user_state_cnn_equals_conv2d_and_a_hand_sliding_window():
    """The conv1d in call() is eq. 5's Conv2D (N x d kernel over a 1-channel map) on the same weights."""
    B = tf.random.normal((3, 3, DIM), seed=4)  # 3 behaviours: padded to 4 rows for the height-4 kernel
    layer = UserStateCNN((2, 4), filters=5, activation="tanh")
    out = layer(B).numpy()
    assert [w.name.split("/")[-2:] for w in layer.weights][:2] == [["conv_h2", "kernel:0"], ["conv_h2", "bias:0"]]
    padded = np.pad(B.numpy(), [(0, 0), (0, 1), (0, 0)])
    expected = []
    for conv, h in zip(layer.convs, (2, 4)):
        W, b = conv.kernel.numpy()[:, :, 0, :], conv.bias.numpy()  # (h, d, filters), (filters,)
        windows = np.stack([np.einsum("bhd,hdf->bf", padded[:, r:r + h], W) for r in range(4 - h + 1)], axis=1)
        expected.append(np.tanh(windows + b).reshape(3, -1))  # (3, rows * filters), row-major like Conv2D's
        reference = tf.keras.layers.Conv2D(5, (h, DIM), activation="tanh")
        reference.build((None, 4, DIM, 1))
        reference.set_weights([conv.kernel.numpy(), b])
        np.testing.assert_allclose(reference(padded[..., None]).numpy().reshape(3, -1), expected[-1], atol=1e-5)
    np.testing.assert_allclose(out, np.concatenate(expected, axis=1), atol=1e-5)

def test_dialogue_attention_masks_padding():
    layer = DialogueSelfAttention(heads=4)
    ids = tf.constant([[5, 7, 0, 0, 9, 0]])
    W = tf.random.normal((1, 6, DIM), seed=1)
    out = layer([W, ids])
    assert out.shape == (1, 6 * DIM)
    out = tf.reshape(out, (1, 6, DIM)).numpy()
    assert not out[0, [2, 3, 5]].any() and out[0, [0, 1, 4]].any()
    # whatever sits at padded positions does not change the result
    W2 = tf.tensor_scatter_nd_update(W, [[0, 2], [0, 5]], tf.random.normal((2, DIM), seed=2) * 10)
    np.testing.assert_allclose(tf.reshape(layer([W2, ids]), (1, 6, DIM)).numpy(), out, atol=1e-5)
    assert DialogueSelfAttention(heads=4, pooling="mean")([W, ids]).shape == (1, DIM)


def test_kf_roles_and_registry(table):
    space = table[0]
    extra = FeatureSpace(space.fields + [Field("other_seq", "sequence", vocab_size=9, dim=3, vocab="words")],
                         space.pretrained)
    r = R.build("kdcn", extra)
    assert isinstance(r, KDCNRanker) and "kdcn" in R.available()
    assert [f.name for f in r.roles["user_state"]] == [
        "user_state__click", "user_state__cart", "user_state__favorite", "user_state__purchase"]
    assert [f.name for f in r.roles["query"]] == ["dialogue_keywords__query"]
    assert [f.name for f in r.roles["title"]] == ["dialogue_keywords__title"]
    assert [f.name for f in r.pooled_sequence_fields()] == ["other_seq"]
    with pytest.raises(ValueError, match="unknown sequence field"):
        R.build("kdcn", space, query_fields=["nope"])


# -- learning ------------------------------------------------------------------------------------------------
def test_kdcn_learns_planted_kf_signal_and_round_trips(table, tmp_path):
    space, X, y, g, split, logit = table
    tr, va = split == "train", split == "valid"
    # reference points on this table: teacher logit AUC ~0.76; DCN without the KF fields ~0.56
    teacher = evaluate(y[va], logit[va])["auc"]
    assert teacher > 0.72
    r = R.build("kdcn", space, epochs=6, patience=2, **FAST)
    r.fit(_part(X, tr), y[tr], _part(X, va), y[va], g[va])
    auc = max(r.history_["val_auc"])
    assert auc > 0.63, r.history_["val_auc"]
    # freeze_pretrained: false (default) fine-tunes the pretrained CKG table
    assert np.abs(_table_weights(r) - space.pretrained["ckg_entity"]).max() > 1e-4
    p = r.predict(_part(X, va))
    assert r.evaluate(_part(X, va), y[va], g[va])["auc"] == pytest.approx(auc, abs=1e-6)
    r.save(tmp_path / "kdcn")
    back = R.load(tmp_path / "kdcn")
    assert isinstance(back, KDCNRanker)
    np.testing.assert_array_equal(back.predict(_part(X, va)), p)


def _table_weights(r):
    return r.sequence_embedding("ckg_entity").table.numpy()


def test_frozen_table_and_ablation(table):
    space, X, y, g, split, _ = table
    tr = np.flatnonzero(split == "train")[:512]
    Xs, ys = _part(X, tr), y[tr]
    small = {**FAST, "dnn_hidden_units": [32]}
    frozen = R.build("kdcn", space, epochs=1, freeze_pretrained=True, **small).fit(Xs, ys)
    np.testing.assert_array_equal(_table_weights(frozen), space.pretrained["ckg_entity"])
    # no pretrained matrix: random kg_dim-wide table ("DCN + KF features without pretraining")
    bare = FeatureSpace(space.fields, {})
    abl = R.build("kdcn", bare, epochs=1, kg_dim=8, **small).fit(Xs, ys)
    w = _table_weights(abl)
    assert w.shape == (V, 8) and np.isfinite(abl.predict(Xs)).all()


# -- end to end: KF kinds through the feature pipeline into K-DCN --------------------------------------------
KF_SPEC = """\
version: 1
features:
  - name: price
    group: BF
    kind: price
  - name: user_state
    group: KF
    kind: user_state
    maxlen: 4
    ckg: &ckg {dim: 8, epochs: 2, min_value_count: 1, min_keyword_df: 1}
  - name: dialogue_keywords
    group: KF
    kind: dialogue_keywords
    query_len: 5
    title_len: 4
    ckg: *ckg
feature_sets:
  BF+KF: [BF, KF]
"""


def test_kf_pipeline_to_kdcn(tmp_path):
    from features.materialize import FeaturePipeline
    from features.spec import load_spec
    from core.corpus import Corpus
    from tests.conftest import tiny_records

    corpus = Corpus.from_records(**tiny_records())
    (tmp_path / "spec.yaml").write_text(KF_SPEC, encoding="utf-8")
    pipe = FeaturePipeline(load_spec(tmp_path / "spec.yaml"), tmp_path / "store", show_progress=False).fit(corpus)
    space = pipe.feature_space("BF+KF")
    kf = [f for f in space.sequence if f.vocab == "ckg_entity"]
    assert [f.name for f in kf] == ["user_state__click", "user_state__cart", "user_state__favorite",
                                    "user_state__purchase", "dialogue_keywords__query", "dialogue_keywords__title"]
    pre = space.pretrained["ckg_entity"]
    assert pre.shape == (kf[0].vocab_size, 8) and not pre[:2].any()
    table = pipe.transform(corpus)
    X, y = table.X(space), table.labels.astype(int)
    assert space.validate(X) == len(y)
    # U1 clicked I1 then I2: most recent first; both are CKG items
    u1 = (table.rows["user_id"] == "U1").to_numpy()
    click = X["user_state__click"][u1][0]
    assert (click[:2] >= 2).all() and (click[2:] == 0).all()
    assert (X["dialogue_keywords__title"] >= 2).any(axis=1).all()  # every candidate title has a CKG keyword
    r = R.build("kdcn", space, epochs=1, **FAST).fit(X, y)
    p = r.predict(X)
    assert p.shape == (len(y),) and np.isfinite(p).all()


def test_yaml_config_extends_dcn():
    """kdcn.yaml starts from dcn.yaml (itself from base.yaml): the paper's settings."""
    hp = R.build("kdcn", FeatureSpace([Field("a", "dense")])).hparams
    assert hp["n_cross"] == 4 and hp["dnn_hidden_units"] == [512, 512] and hp["attention_heads"] == 4
    assert hp["user_state_kernel_heights"] == [2, 4] and hp["batch_size"] == 512 and hp["jit_compile"] is False
    assert hp["embedding_dim"] == 16 and hp["cross_projection_dim"] == 64
