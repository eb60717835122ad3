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


def _checked_rows(space: FeatureSpace, X: Mapping[str, np.ndarray]) -> int | None:
    """``space.validate``'s checks but the id ranges, done without touching the values: the rows of
    ``X`` if its keys are the space's names and each value is a numpy array of its field's dtype kind
    and per-row shape, all of one length, categorical ids at most 32 bits wide (so that their range
    can be checked once the int32 matrix is packed); None otherwise (``space.validate`` then names
    the problem, or checks what this does not)."""
    if len(X) != len(space.fields):
        return None
    n = None
    for f in space.fields:
        a = X.get(f.name)
        if not isinstance(a, np.ndarray) or a.ndim == 0 or a.shape[1:] != f.shape or (n is not None and len(a) != n):
            return None
        kind = a.dtype.kind
        if (kind != "f") if f.kind == "dense" else (kind not in "iu" or a.dtype.itemsize > 4):
            return None
        n = len(a)
    return n or 0


def pack(space: FeatureSpace, X: Mapping[str, np.ndarray], rows: int | None = None) -> dict[str, np.ndarray]:
    """Validate ``X`` against ``space`` and pack it (see module docstring). Returns numpy arrays.

    ``rows``: the length of every packed array (at least ``X``'s rows), the rows past ``X``'s zeros
    (a model's padded batch, packed without a second copy)."""
    n = _checked_rows(space, X)
    check_ids = n is not None and n > 0  # (else space.validate checks them all now)
    if n is None:
        n = space.validate(X)
    if rows is None:
        rows = n
    elif rows < n:
        raise ValueError(f"cannot pack {n} rows into {rows}")
    out: dict[str, np.ndarray] = {}
    if space.categorical:
        cat = (np.empty if rows == n else np.zeros)((rows, len(space.categorical)), np.int32)
        for j, f in enumerate(space.categorical):
            cat[:n, j] = X[f.name]
        # Every field's id range at once (int32 holds any id of at most 32 bits, a uint32 one past
        # its range as a negative); one out of range: space.validate names its field.
        vocab = np.array([f.vocab_size for f in space.categorical])
        if check_ids and (cat[:n].min() < 0 or (cat[:n].max(axis=0) >= vocab).any()):
            space.validate(X)
        out[CAT] = cat
    if space.dense:
        dense = (np.empty if rows == n else np.zeros)((rows, space.dense_width), np.float32)
        j = 0
        for f in space.dense:
            dense[:n, j: j + f.dim] = np.asarray(X[f.name], np.float32).reshape(n, f.dim)
            j += f.dim
        out[DENSE] = dense
    for f in space.sequence:
        a = np.asarray(X[f.name])
        if check_ids and (a.min() < 0 or a.max() >= f.vocab_size):
            space.validate(X)
        if rows == n:
            out[seq_key(f.name)] = np.ascontiguousarray(a, dtype=np.int32)
        else:
            out[seq_key(f.name)] = np.zeros((rows,) + a.shape[1:], np.int32)
            out[seq_key(f.name)][:n] = a
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
