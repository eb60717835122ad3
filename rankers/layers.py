"""Small shared Keras layers (TFRS style) that every Keras ranker is composed of.

Shape conventions (``B`` = batch, ``F`` = number of field vectors, ``k`` = embedding dim):

* categorical ids arrive packed as ONE int32 tensor ``(B, n_cat)`` (see ``rankers.inputs``);
* dense features arrive packed as ONE float32 tensor ``(B, D)``;
* each sequence field arrives as int32 ``(B, L)`` (0 = padding).

Cross layers are not defined here: DCN uses ``tensorflow_recommenders.layers.dcn.Cross``
(through :class:`CrossDeep`).

Every layer is serialisable: ``get_config`` returns all its constructor arguments and the class
is registered with Keras as ``econvrec>Name`` (:data:`keras_serializable`), so a model built from
these layers reloads with ``tf.keras.models.load_model`` after ``import rankers.layers`` alone.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from core.env import cpu_has_bf16

Cross = tfrs.layers.dcn.Cross  # the DCN cross layer (tfrs.layers.dcn.Cross)

# Class decorator: register a layer for Keras (de)serialisation under our package name.
keras_serializable = tf.keras.utils.register_keras_serializable(package="econvrec")

__all__ = [
    "FusedEmbedding",
    "VocabEmbedding",
    "SequencePooling",
    "DenseFeatures",
    "Linear",
    "FM",
    "MLP",
    "InnerProduct",
    "FGCNNBlock",
    "CrossDeep",
    "cross_and_deep",
    "UserStateCNN",
    "DialogueSelfAttention",
]


# Tables up to this many elements get a dense gradient (see ``gather_rows``).
DENSE_GRAD_MAX_ELEMENTS = 1 << 21


@tf.custom_gradient
def _gather_dense_grad(table, ids):
    out = tf.gather(table, ids)

    def grad(dy):
        return tf.math.unsorted_segment_sum(dy, ids, tf.shape(table)[0]), None

    return out, grad


def gather_rows(table: tf.Variable, ids: tf.Tensor) -> tf.Tensor:
    """``tf.gather(table, ids)`` whose gradient is a dense ``unsorted_segment_sum`` for small tables.

    The default ``IndexedSlices`` gradient costs more than it saves here: Keras' Adam de-duplicates
    the slices (``tf.unique``) and then updates its moments over the whole table anyway. For tables
    up to ``DENSE_GRAD_MAX_ELEMENTS`` (2M floats) one segment-sum is ~40% cheaper per step
    (measured on the benchmark's 24-field embedding); larger tables keep sparse gradients.
    """
    if int(np.prod(table.shape)) <= DENSE_GRAD_MAX_ELEMENTS:
        return _gather_dense_grad(tf.convert_to_tensor(table), ids)
    return tf.gather(table, ids)


def _l2_of(x: tf.Tensor, l2: float) -> tf.Tensor:
    """``l2 * mean over the batch of the squared norm`` of looked-up rows (cheap, sparse-friendly)."""
    x = tf.reshape(x, [tf.shape(x)[0], -1])
    return l2 * tf.reduce_mean(tf.reduce_sum(tf.square(x), axis=1))


@keras_serializable
class FusedEmbedding(tf.keras.layers.Layer):
    """All categorical fields in ONE embedding table; per-field offsets are added inside.

    ``(B, n_fields) int ids -> (B, n_fields, dim)``. Field ``i`` owns rows
    ``offsets[i] : offsets[i] + vocab_sizes[i]`` of the ``(sum(vocab_sizes), dim)`` table, so a
    single ``tf.gather`` embeds every field (no per-field Embedding layer or input).

    Args:
      vocab_sizes: number of ids of each field (PAD and OOV included).
      dim: embedding width (1 gives the first-order weights of a linear model).
      l2: penalty on the looked-up rows (``l2 * mean_batch ||e||^2``), not on the whole table.
      initializer: Keras initializer of the table.
    """

    def __init__(self, vocab_sizes: Sequence[int], dim: int, l2: float = 0.0, initializer="random_normal", **kwargs):
        super().__init__(**kwargs)
        self.vocab_sizes = [int(v) for v in vocab_sizes]
        self.dim = int(dim)
        self.l2 = float(l2)
        self.initializer = tf.keras.initializers.get(initializer)
        offsets = np.concatenate([[0], np.cumsum(self.vocab_sizes)[:-1]]) if self.vocab_sizes else np.zeros(0)
        self._offsets = tf.constant(offsets.astype(np.int32))  # (n_fields,)

    def build(self, input_shape):
        self.table = self.add_weight(
            name="table", shape=(sum(self.vocab_sizes), self.dim), initializer=self.initializer, trainable=True
        )
        super().build(input_shape)

    def call(self, ids):  # ids: (B, n_fields) int32
        emb = gather_rows(self.table, ids + self._offsets)  # (B, n_fields, dim)
        if self.l2:
            self.add_loss(_l2_of(emb, self.l2))
        return emb

    def get_config(self):
        return {**super().get_config(), "vocab_sizes": self.vocab_sizes, "dim": self.dim, "l2": self.l2,
                "initializer": tf.keras.initializers.serialize(self.initializer)}


@keras_serializable
class VocabEmbedding(tf.keras.layers.Layer):
    """One shared-vocabulary table for sequence fields: ``(B, L) ids -> (B, L, dim)``.

    Sequence fields naming the same ``vocab`` call the same instance (shared weights). The table
    may start from a pretrained matrix (e.g. knowledge-graph entity vectors, ``(vocab_size, dim)``)
    and may be frozen with ``trainable=False``. The pretrained matrix is only the table's initial
    value: ``get_config`` leaves it out (``pretrained: None``, zeros initializer) since a saved
    model restores the table from its weights, and a config stays small.
    """

    def __init__(self, vocab_size: int, dim: int, pretrained: np.ndarray | None = None, l2: float = 0.0,
                 initializer="random_normal", **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)
        self.dim = int(dim)
        self.l2 = float(l2)
        if pretrained is not None:
            pretrained = np.asarray(pretrained, np.float32)
            if pretrained.ndim != 2 or pretrained.shape[0] < self.vocab_size or pretrained.shape[1] != self.dim:
                raise ValueError(
                    f"pretrained matrix for vocab '{self.name}' has shape {pretrained.shape}, "
                    f"expected ({self.vocab_size}, {self.dim})"
                )
            pretrained = pretrained[: self.vocab_size]
            self.initializer = tf.keras.initializers.Constant(pretrained)
        else:
            self.initializer = tf.keras.initializers.get(initializer)
        self._from_pretrained = pretrained is not None

    def build(self, input_shape):
        self.table = self.add_weight(
            name="table", shape=(self.vocab_size, self.dim), initializer=self.initializer, trainable=True
        )
        super().build(input_shape)

    def call(self, ids):  # (B, L) int32
        emb = gather_rows(self.table, ids) if self.trainable else tf.gather(self.table, ids)  # (B, L, dim)
        if self.l2 and self.trainable:
            self.add_loss(_l2_of(emb, self.l2))
        return emb

    def get_config(self):
        init = "zeros" if self._from_pretrained else tf.keras.initializers.serialize(self.initializer)
        return {**super().get_config(), "vocab_size": self.vocab_size, "dim": self.dim, "pretrained": None,
                "l2": self.l2, "initializer": init}


@keras_serializable
class SequencePooling(tf.keras.layers.Layer):
    """Masked pooling of a padded sequence: ``[(B, L, d) embeddings, (B, L) ids] -> (B, d)``.

    ``mode='mean'`` (default) averages non-padding positions (id != 0); an all-padding row gives
    zeros. ``mode='sum'`` and ``'max'`` are also available.
    """

    def __init__(self, mode: str = "mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("mean", "sum", "max"):
            raise ValueError(f"unknown pooling mode {mode!r}")
        self.mode = mode

    def call(self, inputs):
        emb, ids = inputs
        mask = tf.cast(tf.not_equal(ids, 0), emb.dtype)[..., None]  # (B, L, 1)
        if self.mode == "max":
            return tf.reduce_max(emb * mask + (mask - 1.0) * 1e9, axis=1) * tf.reduce_max(mask, axis=1)
        total = tf.reduce_sum(emb * mask, axis=1)  # (B, d)
        if self.mode == "sum":
            return total
        return total / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras_serializable
class DenseFeatures(tf.keras.layers.Layer):
    """Concatenate dense features: list of ``(B,)`` or ``(B, dim)`` float tensors -> ``(B, D)``."""

    def call(self, tensors):
        cols = [tf.reshape(tf.cast(t, tf.float32), [tf.shape(t)[0], -1]) for t in tensors]
        return tf.concat(cols, axis=1)


@keras_serializable
class Linear(tf.keras.layers.Layer):
    """First-order (logistic-regression) term over every kind of feature: ``packed -> (B, 1)``.

    ``w0 + sum_i w[cat_i] + <w_dense, dense> + sum_s mean_{t in seq_s} w_vocab(s)[t]``: a 1-dim
    fused embedding for categorical fields, a bias-free Dense for the dense matrix, and one 1-dim
    shared-vocabulary table per sequence vocabulary (mean-pooled over non-padding ids).

    Args:
      cat_vocab_sizes: vocab size of each categorical field (empty: no categorical term).
      dense_width: width of the packed dense matrix (0: no dense term).
      seq_vocabs: ``{packed input key: (vocab name, vocab size)}`` of sequence fields.
    """

    def __init__(self, cat_vocab_sizes: Sequence[int], dense_width: int, seq_vocabs: dict[str, tuple[str, int]],
                 l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.cat_vocab_sizes = [int(v) for v in cat_vocab_sizes]
        self.dense_width = int(dense_width)
        self.l2 = float(l2)
        self.cat = FusedEmbedding(cat_vocab_sizes, 1, l2=l2, initializer="zeros", name="cat_w") if cat_vocab_sizes else None
        self.dense = (
            tf.keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros", kernel_regularizer=tf.keras.regularizers.l2(l2) if l2 else None,
                                  name="dense_w") if dense_width else None
        )
        self.seq_keys = dict(seq_vocabs)
        vocabs = {}
        for key, (vocab, size) in seq_vocabs.items():
            vocabs[vocab] = max(vocabs.get(vocab, 0), size)
        self.seq_tables = {v: VocabEmbedding(n, 1, initializer="zeros", l2=l2, name=f"seq_w_{i}")
                           for i, (v, n) in enumerate(sorted(vocabs.items()))}
        self.pool = SequencePooling("mean")

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(1,), initializer="zeros")
        super().build(input_shape)

    def call(self, packed):
        terms = []
        if self.cat is not None:
            terms.append(tf.reduce_sum(self.cat(packed["cat"]), axis=1))  # (B, 1)
        if self.dense is not None:
            terms.append(self.dense(packed["dense"]))  # (B, 1)
        for key, (vocab, _) in self.seq_keys.items():
            ids = packed[key]
            terms.append(self.pool([self.seq_tables[vocab](ids), ids]))  # (B, 1)
        return tf.add_n(terms) + self.bias if terms else tf.zeros_like(packed[next(iter(packed))][:, :1], tf.float32) + self.bias

    def get_config(self):
        return {**super().get_config(), "cat_vocab_sizes": self.cat_vocab_sizes, "dense_width": self.dense_width,
                "seq_vocabs": {k: [v, int(n)] for k, (v, n) in self.seq_keys.items()}, "l2": self.l2}


@keras_serializable
class FM(tf.keras.layers.Layer):
    """Second-order factorisation-machine term (Rendle 2010, sum-square trick).

    ``(B, F, k) -> (B, 1)``: ``0.5 * sum_k[(sum_i v_ik)^2 - sum_i v_ik^2] = sum_{i<j} <v_i, v_j>``.
    """

    def call(self, v):
        square_of_sum = tf.square(tf.reduce_sum(v, axis=1))  # (B, k)
        sum_of_square = tf.reduce_sum(tf.square(v), axis=1)  # (B, k)
        return 0.5 * tf.reduce_sum(square_of_sum - sum_of_square, axis=1, keepdims=True)  # (B, 1)


def gpu_has_bf16() -> bool:
    """True when every visible GPU has compute capability >= 8.0 (native bfloat16)."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return False
    for g in gpus:
        cc = tf.config.experimental.get_device_details(g).get("compute_capability", (0, 0))
        if tuple(cc) < (8, 0):
            return False
    return True


def resolve_precision(precision: str) -> str:
    """``'float32'``, ``'bfloat16'`` or ``'auto'``: bfloat16 where it is native (a GPU with compute
    capability >= 8, or — without GPU — a CPU with AVX512_BF16 / AMX), else float32."""
    if precision == "auto":
        if tf.config.list_physical_devices("GPU"):
            return "bfloat16" if gpu_has_bf16() else "float32"
        return "bfloat16" if cpu_has_bf16() else "float32"
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"precision must be 'float32', 'bfloat16' or 'auto', got {precision!r}")
    return precision


def policy(precision: str):
    """Keras dtype policy for the heavy layers: ``mixed_bfloat16`` keeps float32 variables and
    computes in bfloat16; embeddings, FM, sums and the logit always stay float32."""
    p = resolve_precision(precision)
    return tf.keras.mixed_precision.Policy("mixed_bfloat16" if p == "bfloat16" else "float32")


@keras_serializable
class MLP(tf.keras.layers.Layer):
    """Stack of ``Dense -> [BatchNorm] -> activation -> [Dropout]``: ``(B, d) -> (B, units[-1])``.

    ``precision='bfloat16'`` computes the stack in bfloat16 (float32 weights, float32 output).
    """

    def __init__(self, units: Sequence[int], activation: str = "relu", dropout: float = 0.0,
                 batch_norm: bool = False, l2: float = 0.0, precision: str = "float32", **kwargs):
        super().__init__(**kwargs)
        self.units = [int(u) for u in units]
        self.activation, self.dropout, self.batch_norm = activation, float(dropout), bool(batch_norm)
        self.l2, self.precision = float(l2), precision
        reg = tf.keras.regularizers.l2(l2) if l2 else None
        pol = policy(precision)
        # ONE flat list: Keras' .keras format does not restore layers held in nested lists
        self.stack: list[tf.keras.layers.Layer] = []
        for i, u in enumerate(self.units):
            self.stack.append(tf.keras.layers.Dense(u, use_bias=not batch_norm, kernel_regularizer=reg,
                                                    name=f"dense_{i}", dtype=pol))
            if batch_norm:
                self.stack.append(tf.keras.layers.BatchNormalization(name=f"bn_{i}", dtype=pol))
            self.stack.append(tf.keras.layers.Activation(activation, name=f"act_{i}", dtype=pol))
            if dropout:
                self.stack.append(tf.keras.layers.Dropout(dropout, name=f"dropout_{i}", dtype=pol))

    def call(self, x, training=None):
        for layer in self.stack:
            x = layer(x, training=training) if isinstance(
                layer, (tf.keras.layers.BatchNormalization, tf.keras.layers.Dropout)) else layer(x)
        return tf.cast(x, tf.float32)  # (B, units[-1]) float32 whatever the compute precision

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation, "dropout": self.dropout,
                "batch_norm": self.batch_norm, "l2": self.l2, "precision": self.precision}


@keras_serializable
class InnerProduct(tf.keras.layers.Layer):
    """All pairwise inner products of field vectors (IPNN / FGCNN classifier).

    ``(B, F, k) -> (B, F*(F-1)/2)``, computed as one batched ``V V^T`` and a constant gather of the
    strict upper triangle.
    """

    def build(self, input_shape):
        n = int(input_shape[1])
        rows, cols = np.triu_indices(n, k=1)
        self._n = n
        self._flat_idx = tf.constant((rows * n + cols).astype(np.int32))
        super().build(input_shape)

    def call(self, v):
        gram = tf.matmul(v, v, transpose_b=True)  # (B, F, F)
        flat = tf.reshape(gram, [-1, self._n * self._n])
        return tf.gather(flat, self._flat_idx, axis=1)  # (B, F(F-1)/2)


def _band_index(rows: int, channels: int, filters: int, width: int) -> np.ndarray:
    """Gather index turning a ``(width, 1, channels, filters)`` 'same' convolution over rows into one
    ``(rows * channels, rows * filters)`` banded matrix: entry ``[r_in * c + ci, r_out * f + o]`` is
    ``kernel[r_in - r_out + top, 0, ci, o]`` inside the band and the appended zero (index
    ``width * channels * filters``) outside it."""
    top = (width - 1) // 2  # TF's 'same' padding for a kernel of this width
    r_in, ci, r_out, o = np.meshgrid(np.arange(rows), np.arange(channels), np.arange(rows), np.arange(filters),
                                     indexing="ij")
    t = r_in - r_out + top
    idx = np.where((t >= 0) & (t < width), (t * channels + ci) * filters + o, width * channels * filters)
    return idx.reshape(rows * channels, rows * filters).astype(np.int32)


@keras_serializable
class FGCNNBlock(tf.keras.layers.Layer):
    """FGCNN feature generation (Liu et al. 2019): CNN + pooling + recombination.

    ``(B, F, k) -> (B, sum_i rows_i * new_maps_i, k)`` new feature vectors. Layer ``i`` applies a
    ``(kernel_width_i, 1)`` tanh convolution with ``filters_i`` maps over the field axis, a
    ``(pooling_width_i, 1)`` max-pool (``'same'`` padding, so few fields never pool to zero rows),
    then a tanh Dense *recombination* of the pooled maps into ``rows_i * new_maps_i`` vectors of
    width ``k``. The next layer convolves the pooled maps (not the recombined features).

    Computed, for speed, as the same math in another order: the convolution is one matmul of the
    ``(B k, rows c)`` maps with a banded ``(rows c, rows f)`` matrix gathered from the Conv2D kernel
    (TensorFlow's CPU Conv2D is ~2x slower on these 1-channel, 5x1 shapes), and max-pooling comes
    before the bias and tanh (both monotonic per map, so ``pool(tanh(z + b)) == tanh(pool(z) + b)``)
    so that tanh runs on the pooled maps only. The weights are those of ``Conv2D`` layers
    (``conv_i/kernel (w, 1, c, f)``), so results equal a Conv2D implementation to float rounding.
    """

    def __init__(self, filters: Sequence[int], kernel_width: Sequence[int], new_maps: Sequence[int],
                 pooling_width: Sequence[int], l2: float = 0.0, precision: str = "float32", **kwargs):
        super().__init__(**kwargs)
        self.precision = precision
        if not (len(filters) == len(kernel_width) == len(new_maps) == len(pooling_width)):
            raise ValueError("FGCNN: conv_filters, conv_kernel_width, new_maps and pooling_width need equal lengths")
        self.spec = list(zip(map(int, filters), map(int, kernel_width), map(int, new_maps), map(int, pooling_width)))
        self.l2 = float(l2)

    def build(self, input_shape):
        n_fields, k = int(input_shape[1]), int(input_shape[2])
        reg = tf.keras.regularizers.l2(self.l2) if self.l2 else None
        pol = policy(self.precision)
        self.k = k
        self.convs, self.recombine, self.rows, self.bands = [], [], [], []
        rows, channels = n_fields, 1
        for i, (f, w, m, p) in enumerate(self.spec):
            conv = tf.keras.layers.Conv2D(f, (w, 1), padding="same", activation="tanh", kernel_regularizer=reg,
                                          name=f"conv_{i}", dtype=pol)
            with tf.name_scope(conv.name):
                conv.build((None, rows, k, channels))  # weights only: call() computes the same convolution
            self.convs.append(conv)
            self.bands.append(tf.constant(_band_index(rows, channels, f, w)))
            rows, channels = -(-rows // p), f
            self.rows.append(rows)
            dense = tf.keras.layers.Dense(rows * k * m, activation="tanh", kernel_regularizer=reg,
                                          name=f"recombine_{i}", dtype=pol)
            with tf.name_scope(dense.name):  # built here, in the order a Conv2D version creates them (same seeded init)
                dense.build((None, rows * k * f))
            self.recombine.append(dense)
        super().build(input_shape)

    def call(self, v):
        dtype = tf.as_dtype(self.convs[0].compute_dtype)
        x = tf.reshape(tf.transpose(tf.cast(v, dtype), [0, 2, 1]), [-1, v.shape[1]])  # (B k, F): one channel
        new, rows_in = [], int(v.shape[1])
        for conv, band, dense, rows, (f, _, m, p) in zip(self.convs, self.bands, self.recombine, self.rows, self.spec):
            kernel = tf.concat([tf.reshape(tf.cast(conv.kernel, dtype), [-1]), tf.zeros([1], dtype)], axis=0)
            z = tf.matmul(x, tf.gather(kernel, band))  # (B k, rows_in f): the convolution, bias not yet added
            if rows * p != rows_in:  # 'same' pooling: pad rows with a value no window's max can take
                z = tf.pad(z, [[0, 0], [0, (rows * p - rows_in) * f]], constant_values=dtype.min)
            z = tf.reduce_max(tf.reshape(z, [-1, rows, p, f]), axis=2)  # (B k, rows, f)
            pooled = tf.tanh(z + tf.cast(conv.bias, dtype))  # (B k, rows, f)
            x, rows_in = tf.reshape(pooled, [-1, rows * f]), rows  # (B k, rows f): the next layer's input, f channels
            maps = tf.transpose(tf.reshape(pooled, [-1, self.k, rows, f]), [0, 2, 1, 3])  # (B, rows, k, f)
            flat = tf.reshape(maps, [-1, rows * self.k * f])
            new.append(tf.reshape(dense(flat), [-1, rows * m, self.k]))  # (B, rows*m, k)
        return tf.cast(tf.concat(new, axis=1), tf.float32)

    def get_config(self):
        filters, kernel_width, new_maps, pooling_width = (list(c) for c in zip(*self.spec)) if self.spec else ([],) * 4
        return {**super().get_config(), "filters": filters, "kernel_width": kernel_width, "new_maps": new_maps,
                "pooling_width": pooling_width, "l2": self.l2, "precision": self.precision}


@keras_serializable
class CrossDeep(tf.keras.layers.Layer):
    """DCN tower (K-DCN eqs 10-12 before the logit): cross network and deep network in parallel.

    ``f (B, d) -> concat([x_c^(n_cross), x_d^(n_deep)]) (B, d + units[-1])``. The cross network
    is ``n_cross`` ``tfrs.layers.dcn.Cross`` layers with ``x_0 = f``,
    ``x_{l+1} = x_0 * (W_l x_l + b_l) + x_l`` (DCN-V2; ``projection_dim=1`` gives the low-rank form
    that contains DCN-V1's ``x_0 x_l^T w_l + b_l + x_l`` of eq. 10). The deep network is an
    :class:`MLP` (eq. 11). Feed the output to ``Dense(1)`` for eq. 12.
    """

    def __init__(self, n_cross: int = 4, hidden_units: Sequence[int] = (512, 512), projection_dim: int | None = None,
                 dropout: float = 0.0, batch_norm: bool = False, l2: float = 0.0, precision: str = "float32",
                 **kwargs):
        super().__init__(**kwargs)
        self.n_cross, self.hidden_units = int(n_cross), [int(u) for u in hidden_units]
        self.projection_dim = None if projection_dim is None else int(projection_dim)
        self.dropout, self.batch_norm, self.l2, self.precision = float(dropout), bool(batch_norm), float(l2), precision
        reg = tf.keras.regularizers.l2(l2) if l2 else None
        pol = policy(precision)
        self.crosses = [Cross(projection_dim=projection_dim, kernel_regularizer=reg, name=f"cross_{i}", dtype=pol)
                        for i in range(int(n_cross))]
        self.deep = MLP(hidden_units, dropout=dropout, batch_norm=batch_norm, l2=l2, precision=precision,
                        name="deep") if hidden_units else None

    def call(self, f, training=None):
        parts = []
        if self.crosses:
            x0 = tf.cast(f, self.crosses[0].compute_dtype)
            x = x0
            for cross in self.crosses:
                x = cross(x0, x)  # (B, d)
            parts.append(tf.cast(x, tf.float32))
        if self.deep is not None:
            parts.append(self.deep(f, training=training))  # (B, units[-1])
        return tf.concat(parts, axis=1) if len(parts) > 1 else parts[0]

    def get_config(self):
        return {**super().get_config(), "n_cross": self.n_cross, "hidden_units": self.hidden_units,
                "projection_dim": self.projection_dim, "dropout": self.dropout, "batch_norm": self.batch_norm,
                "l2": self.l2, "precision": self.precision}


@keras_serializable
class UserStateCNN(tf.keras.layers.Layer):
    """Eq. 5: ``(B, k, d)`` behaviour matrix -> ``(B, sum_N (max(k, N) - N + 1) * filters)``.

    One ``Conv2D(filters, (N, d))`` per kernel height ``N``: the kernel spans the full embedding
    width, so it slides over the behaviour axis only. That is a 1-D convolution with ``d`` input
    channels, and ``call`` computes it as one (``tf.nn.conv1d`` on the Conv2D kernel without its
    singleton channel axis): same weights and outputs; one training step 4.8x faster than Conv2D over
    a 1-channel ``(k, d)`` map at k = 4 behaviours, 23x at k = 20 (Intel Xeon, 2 cores,
    ``benchmarks/bench_user_state_cnn.py``).
    """

    def __init__(self, kernel_heights=(2, 4), filters: int = 16, activation: str = "relu", l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.kernel_heights = [int(h) for h in kernel_heights]
        self.filters = int(filters)
        self.activation = activation
        self.l2 = float(l2)

    def build(self, input_shape):
        k, d = int(input_shape[1]), int(input_shape[2])
        self.rows = max([k] + self.kernel_heights)
        reg = tf.keras.regularizers.l2(self.l2) if self.l2 else None
        self.convs = []
        for h in self.kernel_heights:
            conv = tf.keras.layers.Conv2D(self.filters, (h, d), padding="valid", activation=self.activation,
                                          kernel_regularizer=reg, name=f"conv_h{h}")
            with tf.name_scope(conv.name):
                conv.build((None, self.rows, d, 1))  # weights only: call() computes the same convolution
            self.convs.append(conv)
        self.k = k
        self.act = tf.keras.activations.get(self.activation)
        super().build(input_shape)

    def call(self, B):  # (batch, k, d)
        if self.rows > self.k:
            B = tf.pad(B, [[0, 0], [0, self.rows - self.k], [0, 0]])
        outs = []
        for conv, h in zip(self.convs, self.kernel_heights):
            z = tf.nn.conv1d(B, conv.kernel[:, :, 0, :], stride=1, padding="VALID")  # (batch, rows - h + 1, filters)
            outs.append(tf.reshape(self.act(z + conv.bias), [-1, (self.rows - h + 1) * self.filters]))
        return tf.concat(outs, axis=1) if len(outs) > 1 else outs[0]

    def get_config(self):
        return {**super().get_config(), "kernel_heights": self.kernel_heights, "filters": self.filters,
                "activation": self.activation, "l2": self.l2}


@keras_serializable
class DialogueSelfAttention(tf.keras.layers.Layer):
    """Eqs. 6-8: ``[(B, T, d) keyword embeddings, (B, T) ids]`` -> ``(B, T*d)`` (or ``(B, d)`` mean).

    Multi-head self-attention over the concatenated query + title keywords; padding ids (0) are
    masked as keys and their outputs zeroed.
    """

    def __init__(self, heads: int = 4, pooling: str = "flatten", **kwargs):
        super().__init__(**kwargs)
        if pooling not in ("flatten", "mean"):
            raise ValueError(f"dialogue_pooling must be 'flatten' or 'mean', got {pooling!r}")
        self.heads = int(heads)
        self.pooling = pooling

    def build(self, input_shape):
        t, d = int(input_shape[0][1]), int(input_shape[0][2])
        self.t, self.d = t, d
        self.mha = tf.keras.layers.MultiHeadAttention(num_heads=self.heads, key_dim=max(1, d // self.heads),
                                                      output_shape=d, name="mha")
        super().build(input_shape)

    def call(self, inputs, training=None):
        W, ids = inputs
        valid = tf.not_equal(ids, 0)  # (B, T)
        att_mask = tf.logical_and(valid[:, :, None], valid[:, None, :])  # (B, T, T)
        out = self.mha(W, W, attention_mask=att_mask, training=training)  # (B, T, d)
        m = tf.cast(valid, out.dtype)[..., None]
        out = out * m
        if self.pooling == "mean":
            return tf.reduce_sum(out, axis=1) / tf.maximum(tf.reduce_sum(m, axis=1), 1.0)
        return tf.reshape(out, [-1, self.t * self.d])

    def get_config(self):
        return {**super().get_config(), "heads": self.heads, "pooling": self.pooling}


def cross_and_deep(f: tf.Tensor, n_cross: int = 4, hidden_units: Sequence[int] = (512, 512), **kwargs) -> tf.Tensor:
    """Functional shortcut: ``CrossDeep(n_cross, hidden_units, **kwargs)(f)``."""
    return CrossDeep(n_cross, hidden_units, **kwargs)(f)
