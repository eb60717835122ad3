"""Packing a feature dict into one tensor per feature kind (done ONCE, in numpy, before training).

A Keras ranker never sees one input per field. Its model takes the *packed* dict:

* ``"cat"``   int32   ``(n, n_cat)``  raw ids of all categorical fields, in space order
                                       (per-field offsets are added inside ``FusedEmbedding``);
* ``"dense"`` float32 ``(n, D)``      all dense fields concatenated, in space order;
* ``"seq_<name>"`` int32 ``(n, L)``  one entry per sequence field (see :func:`seq_key`).

Keys of kinds absent from the space are left out. :func:`pack` does this for numpy input,
:func:`pack_tf` for named feature tensors (the serving signature).
"""
from __future__ import annotations

import re
from typing import Mapping

import numpy as np
import tensorflow as tf

from core.space import FeatureSpace

CAT, DENSE = "cat", "dense"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def seq_key(name: str) -> str:
    """Packed key of a sequence field (``seq_`` + the name with non ``[A-Za-z0-9_]`` as ``_``)."""
    return "seq_" + _safe(name)


def packed_keys(space: FeatureSpace) -> list[str]:
    keys = []
    if space.categorical:
        keys.append(CAT)
    if space.dense:
        keys.append(DENSE)
    seq = [seq_key(f.name) for f in space.sequence]
    if len(set(seq)) != len(seq):
        raise ValueError(f"sequence field names collide after sanitising: {[f.name for f in space.sequence]}")
    return keys + seq


def pack(space: FeatureSpace, X: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Validate ``X`` against ``space`` and pack it (see module docstring). Returns numpy arrays."""
    n = space.validate(X)
    out: dict[str, np.ndarray] = {}
    if space.categorical:
        cat = np.empty((n, len(space.categorical)), np.int32)
        for j, f in enumerate(space.categorical):
            cat[:, j] = X[f.name]
        out[CAT] = cat
    if space.dense:
        dense = np.empty((n, space.dense_width), np.float32)
        j = 0
        for f in space.dense:
            dense[:, j: j + f.dim] = np.asarray(X[f.name], np.float32).reshape(n, f.dim)
            j += f.dim
        out[DENSE] = dense
    for f in space.sequence:
        out[seq_key(f.name)] = np.ascontiguousarray(X[f.name], dtype=np.int32)
    return out


def n_rows(packed: Mapping[str, np.ndarray]) -> int:
    return int(next(iter(packed.values())).shape[0]) if packed else 0


def pack_tf(space: FeatureSpace, features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """Same packing for a dict of feature tensors (named like the space's fields)."""
    out: dict[str, tf.Tensor] = {}
    if space.categorical:
        out[CAT] = tf.stack([tf.cast(features[f.name], tf.int32) for f in space.categorical], axis=1)
    if space.dense:
        cols = [tf.reshape(tf.cast(features[f.name], tf.float32), [-1, f.dim]) for f in space.dense]
        out[DENSE] = tf.concat(cols, axis=1)
    for f in space.sequence:
        out[seq_key(f.name)] = tf.cast(features[f.name], tf.int32)
    return out


def keras_inputs(space: FeatureSpace) -> dict[str, tf.Tensor]:
    """``tf.keras.Input`` placeholders for the packed dict (keyed like it; the Input *layers* are
    named ``input_<key>`` so they never clash with auto-named layers such as a first ``dense``)."""
    inputs: dict[str, tf.Tensor] = {}
    if space.categorical:
        inputs[CAT] = tf.keras.Input((len(space.categorical),), dtype=tf.int32, name=f"input_{CAT}")
    if space.dense:
        inputs[DENSE] = tf.keras.Input((space.dense_width,), dtype=tf.float32, name=f"input_{DENSE}")
    for f in space.sequence:
        k = seq_key(f.name)
        inputs[k] = tf.keras.Input((f.dim,), dtype=tf.int32, name=f"input_{k}")
    return inputs


def signature_specs(space: FeatureSpace) -> dict[str, tf.TensorSpec]:
    """Serving-signature inputs: one tensor per feature, named like the field."""
    specs = {}
    for f in space.fields:
        dtype = tf.float32 if f.kind == "dense" else tf.int32
        specs[f.name] = tf.TensorSpec((None,) + f.shape, dtype, name=_safe(f.name))
    return specs
