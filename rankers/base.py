"""The ``Ranker`` interface and the base class of all Keras rankers.

Vocabulary (scikit-learn like, the same for every ranker, Keras or not)::

    ranker = rankers.registry.build("deepfm", space, epochs=5)   # hparams: configs/models YAML + overrides
    ranker.fit(X_train, y_train, X_valid, y_valid, groups_valid)  # -> self; ranker.history_
    p = ranker.predict(X)                                         # float32 (n,) probabilities
    ranker.evaluate(X, y, groups)                                 # core.metrics.evaluate
    ranker.save("out/deepfm");  same = rankers.registry.load("out/deepfm")

``X`` is a dict ``field name -> numpy array`` matching the :class:`~core.space.FeatureSpace`;
it is checked with ``space.validate`` first, so a missing, unexpected or mistyped feature raises
``FeatureInputError`` naming it.

Writing a new Keras ranker
--------------------------
Subclass :class:`KerasRanker`, implement ONE method, ``build_logit``, from the shared layers of
``rankers.layers``; register it with ``@register("name")``, add the module name to
``rankers.registry.MODEL_MODULES`` and write ``configs/models/<name>.yaml`` (``extends: base`` plus
what differs). Model-specific hyperparameters: a subclass of
:class:`rankers.hparams.KerasHyperparameters` named in ``Hyperparameters``::

    @register("fm")
    class FMRanker(KerasRanker):
        Hyperparameters = KerasHyperparameters          # or a subclass with more fields

        def build_logit(self, x):                        # x: packed Keras inputs (rankers.inputs)
            v = self.field_vectors(x)                   # (B, F, k) categorical + pooled sequences
            return self.linear_logit(x) + FM()(v)       # (B, 1) logit

Training (``rankers.training``: tf.data, Adam, BCE, early stopping on validation AUC, seeding),
prediction, the SavedModel export and loading come for free. Helpers available inside
``build_logit``: :meth:`KerasRanker.field_vectors`, :meth:`KerasRanker.representation`,
:meth:`KerasRanker.linear_logit`, :meth:`KerasRanker.mlp`, :meth:`KerasRanker.dense_input`.

Extension hooks (used by K-DCN on top of DCN):

* :meth:`KerasRanker.extra_representations` returns extra ``(B, d_i)`` tensors that
  :meth:`representation` appends to ``f = [field embeddings, dense, extras...]`` (K-DCN eq. 9);
* :meth:`KerasRanker.pooled_sequence_fields` chooses the sequence fields that get the default
  mean-pooled treatment; a subclass that consumes some sequence fields itself (e.g. behaviour
  sequences through a CNN) removes them there and reads ``x[rankers.inputs.seq_key(name)]``;
  :meth:`KerasRanker.sequence_embedding` gives the shared-vocabulary table of a vocab.

A non-Keras ranker (see ``rankers.gbdt``) subclasses :class:`Ranker` and implements ``fit``,
``_predict_packed`` (or ``predict``), ``_save_payload`` and ``_load_payload``.

Persistence: :meth:`Ranker.save` writes ``ranker.json`` (name, hparams, history), the feature space
and the payload into one directory, atomically; ``rankers.registry.load`` reads ``ranker.json``,
looks the class up and calls :meth:`Ranker.restore`.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import tensorflow as tf

from core.io import atomic_dir
from core.metrics import evaluate as _evaluate
from core.space import FeatureSpace, Field
from rankers import inputs as rin
from rankers import layers as L
from rankers.hparams import Hyperparameters, KerasHyperparameters, validate

FORMAT_VERSION = 1
_COMPUTE = object()  # sentinel: "compute the field vectors"


def _as_labels(y, n: int, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (n,):
        raise ValueError(f"{what} must have shape ({n},), got {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{what} must be binary 0/1 labels")
    return y.astype(np.float32)


class Ranker:
    """Base of every ranker. ``Hyperparameters``: the pydantic schema of its hyperparameters (their
    values come from ``configs/models/<name>.yaml``, see ``rankers.registry.build``)."""

    name: ClassVar[str] = ""  # set by rankers.registry.register
    Hyperparameters: ClassVar[type[Hyperparameters]] = Hyperparameters

    def __init__(self, space: FeatureSpace, **hparams: Any):
        """``hparams``: ALL hyperparameters of the schema (``rankers.registry.build`` merges them
        from the YAML files and the overrides); raises ``HyperparameterError`` when one is wrong."""
        checked = validate(self.Hyperparameters, copy.deepcopy(hparams), model=self.name or type(self).__name__,
                           default_source=f"{type(self).__name__}(...)")
        if not space.fields:
            raise ValueError("cannot build a ranker on an empty feature space")
        rin.packed_keys(space)  # checks sequence names
        self.space = space
        self.hparams: dict[str, Any] = checked
        self.history_: dict[str, list[float]] = {}
        self.fitted_ = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, fields={len(self.space.fields)}, fitted={self.fitted_})"

    # -- the interface ---------------------------------------------------------------------------
    def fit(self, X_train: Mapping[str, np.ndarray], y_train, X_valid: Mapping[str, np.ndarray] | None = None,
            y_valid=None, groups_valid=None, *, verbose: int = 0, tensorboard_dir: str | None = None,
            groups_train=None) -> "Ranker":
        """Train from scratch; keep per-epoch metrics on ``self.history_``. Returns ``self``.
        ``groups_*``: the request of each row (validation Top@K; listwise training)."""
        raise NotImplementedError

    def predict(self, X: Mapping[str, np.ndarray]) -> np.ndarray:
        """Click probabilities, float32 of shape ``(n,)``."""
        packed = rin.pack(self.space, X)
        if not self.fitted_:
            raise RuntimeError(f"{self!r} is not fitted")
        return np.asarray(self._predict_packed(packed), np.float32).reshape(-1)

    def evaluate(self, X: Mapping[str, np.ndarray], y, groups=None) -> dict[str, float]:
        """``core.metrics.evaluate`` of this ranker's predictions."""
        return _evaluate(y, self.predict(X), groups)

    def _predict_packed(self, packed: Mapping[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def _record_validation(self, packed_valid: Mapping[str, np.ndarray], y_valid, groups_valid) -> None:
        """One-shot fits (scikit-learn rankers): the validation metrics as one-entry ``val_*`` lists
        on ``history_``, the shape the Keras rankers' per-epoch history has."""
        y = _as_labels(y_valid, rin.n_rows(packed_valid), "y_valid")
        m = _evaluate(y, self._predict_packed(packed_valid), groups_valid)
        self.history_.update({f"val_{k}": [float(v)] for k, v in m.items() if not k.startswith("n_")})

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``ranker.json`` + ``feature_space.json`` + the model payload into directory ``path``.

        Written into a temporary sibling directory and renamed into place when complete
        (``core.io.atomic_dir``; an existing ``path`` is replaced). Read back with
        ``rankers.registry.load``.
        """
        if not self.fitted_:
            raise RuntimeError(f"{self!r} is not fitted")
        path = Path(path)
        with atomic_dir(path) as tmp:
            self._save_payload(tmp)
            self.space.save(tmp)
            meta = {"name": self.name, "format_version": FORMAT_VERSION, "hparams": self.hparams,
                    "history": self.history_}
            (tmp / "ranker.json").write_text(json.dumps(meta, indent=1))
        return path

    @classmethod
    def restore(cls, path: str | os.PathLike, hparams: dict[str, Any], history: dict[str, list[float]]) -> "Ranker":
        """A fitted ranker from the directory ``path`` written by :meth:`save` (``hparams`` and
        ``history`` as read from its ``ranker.json`` by ``rankers.registry.load``)."""
        path = Path(path)
        obj = cls(FeatureSpace.load(path), **hparams)
        obj._load_payload(path)
        obj.history_ = history
        obj.fitted_ = True
        return obj

    def _save_payload(self, directory: Path) -> None:
        raise NotImplementedError

    def _load_payload(self, directory: Path) -> None:
        raise NotImplementedError


class KerasRanker(Ranker):
    """A ranker whose model is a Keras graph over the packed inputs; implement :meth:`build_logit`."""

    Hyperparameters: ClassVar[type[Hyperparameters]] = KerasHyperparameters

    def __init__(self, space: FeatureSpace, **hparams: Any):
        super().__init__(space, **hparams)
        self.model: tf.keras.Model | None = None
        self._predict_fn = None
        self._seq_tables: dict[str, L.VocabEmbedding] = {}

    # -- THE method to implement -----------------------------------------------------------------
    def build_logit(self, x: dict[str, tf.Tensor]) -> tf.Tensor:
        """Return the ``(B, 1)`` logit from the packed Keras inputs ``x`` (see ``rankers.inputs``)."""
        raise NotImplementedError

    # -- hooks -----------------------------------------------------------------------------------
    def extra_representations(self, x: dict[str, tf.Tensor]) -> list[tf.Tensor]:
        """Extra ``(B, d_i)`` representations appended by :meth:`representation` (default none)."""
        return []

    def pooled_sequence_fields(self) -> list[Field]:
        """Sequence fields given the default treatment: mean-pooled embedding = one field vector."""
        return list(self.space.sequence)

    # -- building blocks for build_logit ---------------------------------------------------------
    @property
    def k(self) -> int:
        return int(self.hparams["embedding_dim"])

    def _init(self):
        return tf.keras.initializers.RandomNormal(stddev=float(self.hparams["embedding_init_std"]))

    def sequence_embedding(self, vocab: str) -> L.VocabEmbedding:
        """The (single, shared) table of a sequence vocabulary; pretrained when the space has one."""
        if vocab not in self._seq_tables:
            size = self.space.shared_vocab_sizes()[vocab]
            pre = self.space.pretrained.get(vocab)
            dim = int(np.asarray(pre).shape[1]) if pre is not None else self.k
            table = L.VocabEmbedding(size, dim, pretrained=pre, l2=float(self.hparams["l2_embedding"]),
                                     initializer=self._init(), name=f"vocab_{rin._safe(vocab)}")
            table.trainable = bool(self.hparams["pretrained_trainable"]) if pre is not None else True
            self._seq_tables[vocab] = table
        return self._seq_tables[vocab]

    def field_vectors(self, x: dict[str, tf.Tensor], dim: int | None = None, name: str = "embedding") -> tf.Tensor | None:
        """``(B, F, dim)``: one vector per categorical field (fused table) and per pooled sequence field.

        Each call creates a NEW categorical table (pass another ``name`` for a second, unshared
        embedding as in FGCNN); sequence fields always use the shared vocabulary tables, projected
        by a bias-free Dense when the table width (e.g. a pretrained 64) differs from ``dim``.
        Returns ``None`` when the space has neither categorical nor pooled sequence fields.
        """
        dim = int(dim or self.k)
        parts = []
        if rin.CAT in x:
            emb = L.FusedEmbedding([f.vocab_size for f in self.space.categorical], dim,
                                   l2=float(self.hparams["l2_embedding"]), initializer=self._init(), name=name)
            parts.append(emb(x[rin.CAT]))  # (B, n_cat, dim)
        pool = L.SequencePooling("mean", name=f"{name}_seq_pool")
        for f in self.pooled_sequence_fields():
            ids = x[rin.seq_key(f.name)]
            table = self.sequence_embedding(f.vocab or f.name)
            v = pool([table(ids), ids])  # (B, d_vocab)
            if table.dim != dim:
                v = tf.keras.layers.Dense(dim, use_bias=False, name=f"{name}_proj_{rin._safe(f.name)}")(v)
            parts.append(v[:, None, :])  # (B, 1, dim)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=1)

    def dense_input(self, x: dict[str, tf.Tensor]) -> tf.Tensor | None:
        """The packed dense matrix ``(B, D)`` or ``None``."""
        return x.get(rin.DENSE)

    def representation(self, x: dict[str, tf.Tensor], fields: Any = _COMPUTE) -> tf.Tensor:
        """``f = [flattened field vectors, dense, *extra_representations]`` of shape ``(B, d)``.

        Pass ``fields`` (from :meth:`field_vectors`, possibly ``None``) to reuse embeddings shared
        with another part of the model; by default new ones are created.
        """
        if fields is _COMPUTE:
            fields = self.field_vectors(x)
        parts = []
        if fields is not None:
            parts.append(tf.keras.layers.Flatten()(fields))
        dense = self.dense_input(x)
        if dense is not None:
            parts.append(dense)
        parts.extend(self.extra_representations(x))
        if not parts:
            raise ValueError("empty representation: the feature space gives this model nothing to use")
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=1)

    def linear_logit(self, x: dict[str, tf.Tensor]) -> tf.Tensor:
        """First-order logit ``(B, 1)`` over all features (:class:`rankers.layers.Linear`)."""
        seq = {rin.seq_key(f.name): (f.vocab or f.name, self.space.shared_vocab_sizes()[f.vocab or f.name])
               for f in self.space.sequence}
        return L.Linear([f.vocab_size for f in self.space.categorical], self.space.dense_width, seq,
                        l2=float(self.hparams["l2_embedding"]), name="linear")(x)

    def mlp(self, units=None, name: str = "dnn") -> L.MLP:
        """An :class:`rankers.layers.MLP` with this ranker's dropout / batch-norm / l2 hparams."""
        return L.MLP(self.hparams["dnn_hidden_units"] if units is None else units,
                     dropout=float(self.hparams["dnn_dropout"]), batch_norm=bool(self.hparams["dnn_batch_norm"]),
                     l2=float(self.hparams["l2_dnn"]), precision=self.hparams["dnn_precision"], name=name)

    def logit_layer(self, name: str = "logit") -> tf.keras.layers.Dense:
        return tf.keras.layers.Dense(1, name=name)

    # -- model -----------------------------------------------------------------------------------
    def build_model(self) -> tf.keras.Model:
        """(Re)build the Keras model from scratch (seeded, so the initial weights are reproducible)."""
        from rankers.training import seed_everything

        seed_everything(int(self.hparams["seed"]), bool(self.hparams["deterministic"]))
        self._seq_tables = {}
        x = rin.keras_inputs(self.space)
        logit = self.build_logit(dict(x))
        self.model = tf.keras.Model(inputs=x, outputs=logit, name=self.name or type(self).__name__)
        self._predict_fn = None
        return self.model

    def fit(self, X_train, y_train, X_valid=None, y_valid=None, groups_valid=None, *, verbose: int = 0,
            tensorboard_dir: str | None = None, train_workers: int = 1, groups_train=None) -> "KerasRanker":
        """``train_workers`` > 1: train with that many localhost processes under
        ``tf.distribute.MultiWorkerMirroredStrategy`` (``rankers.distribute``). ``groups_train``: the
        request of each training row, needed by ``listwise_weight`` > 0."""
        from rankers.training import train_keras

        train = rin.pack(self.space, X_train)
        y_tr = _as_labels(y_train, rin.n_rows(train), "y_train")
        listwise = float(self.hparams["listwise_weight"]) > 0
        if listwise and groups_train is None:
            raise ValueError(f"{self.name}: listwise_weight = {self.hparams['listwise_weight']} trains on whole "
                             "requests: pass groups_train (the request of each training row), or set listwise_weight: 0")
        if listwise and train_workers > 1:
            raise ValueError(f"{self.name}: listwise_weight > 0 is not supported with train_workers > 1 "
                             "(multi-worker batches are rows); set listwise_weight: 0 or train_workers: 1")
        if groups_train is not None and len(groups_train) != len(y_tr):
            raise ValueError(f"groups_train has {len(groups_train)} rows, y_train {len(y_tr)}")
        valid = None
        if X_valid is not None:
            if y_valid is None:
                raise ValueError("X_valid given without y_valid")
            valid = rin.pack(self.space, X_valid)
            y_va = _as_labels(y_valid, rin.n_rows(valid), "y_valid")
            valid = (valid, y_va, None if groups_valid is None else np.asarray(groups_valid))
        self.build_model()
        if train_workers > 1:
            from rankers.distribute import fit_multiworker

            self.history_ = fit_multiworker(self, train, y_tr, valid, workers=train_workers, verbose=verbose)
        else:
            self.history_ = train_keras(self.model, self.hparams, train, y_tr, valid, predict_fn=self._predict_packed,
                                        verbose=verbose, tensorboard_dir=tensorboard_dir,
                                        groups=None if groups_train is None else np.asarray(groups_train))
        self.fitted_ = True
        return self

    def fit_parts(self, parts, X_valid=None, y_valid=None, groups_valid=None, *, verbose: int = 0) -> "KerasRanker":
        """``fit`` on the training rows of a parquet-parts table (``core.parts.PartedTable``), streamed
        part by part (``rankers.streaming``) so the training table need not fit in memory."""
        from rankers.streaming import parts_train_dataset
        from rankers.training import train_keras

        if float(self.hparams["listwise_weight"]) > 0:
            raise ValueError(f"{self.name}: listwise_weight > 0 is not supported when streaming parts (batches are "
                             "rows of one part); set listwise_weight: 0 or train in memory")
        valid = None
        if X_valid is not None:
            packed = rin.pack(self.space, X_valid)
            valid = (packed, _as_labels(y_valid, rin.n_rows(packed), "y_valid"),
                     None if groups_valid is None else np.asarray(groups_valid))
        self.build_model()
        stream = parts_train_dataset(parts, self.space, int(self.hparams["batch_size"]), int(self.hparams["seed"]))
        self.history_ = train_keras(self.model, self.hparams, {}, np.empty(0), valid, predict_fn=self._predict_packed,
                                    verbose=verbose, train_dataset=stream)
        self.fitted_ = True
        return self

    def _predict_packed(self, packed: Mapping[str, np.ndarray]) -> np.ndarray:
        """Score in chunks of ``predict_batch_size`` rows with one traced graph. Never XLA-compiled,
        even with ``jit_compile`` (which is for training): the oneDNN graph scores faster than the XLA
        one here (measured with benchmarks/bench_rankers.py: DeepFM 448k vs 100k rows/s, DCN 77k vs
        43k) and needs no fixed shapes."""
        if self._predict_fn is None:
            model = self.model

            def score(batch):
                return tf.sigmoid(model(batch, training=False))[:, 0]

            spec = {k: tf.TensorSpec((None,) + tuple(t.shape[1:]), t.dtype) for k, t in rin.keras_inputs(self.space).items()}
            self._predict_fn = tf.function(score, input_signature=[spec])
        n = rin.n_rows(packed)
        chunk = int(self.hparams["predict_batch_size"])
        out = np.empty(n, np.float32)
        for start in range(0, n, chunk):
            out[start: start + chunk] = self._predict_fn({k: v[start: start + chunk] for k, v in packed.items()}).numpy()
        return out

    # -- persistence: a SavedModel with a by-name serving signature ------------------------------
    def serving_module(self) -> tf.Module:
        """A ``tf.Module`` whose ``serve`` takes one tensor per feature (by field name) and returns
        ``{"score": (n,) probabilities}``; it tracks the model's variables."""
        space, model = self.space, self.model
        module = tf.Module()
        module.model_variables = list(model.weights)

        @tf.function(input_signature=[rin.signature_specs(space)])
        def serve(features):
            return {"score": tf.sigmoid(model(rin.pack_tf(space, features), training=False))[:, 0]}

        module.serve = serve
        return module

    def _save_payload(self, directory: Path) -> None:
        module = self.serving_module()
        tf.saved_model.save(module, str(directory), signatures={"serving_default": module.serve.get_concrete_function()})

    def _load_payload(self, directory: Path) -> None:
        self.build_model()
        ckpt = tf.train.Checkpoint(model_variables=list(self.model.weights))
        ckpt.read(str(Path(directory) / "variables" / "variables")).expect_partial().assert_existing_objects_matched()
