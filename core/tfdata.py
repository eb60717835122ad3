"""tf.data pipelines of this project run without autotuning.

Our pipelines are simple (a gather or a numpy generator feeding a few prefetched batches), so
autotuning buys nothing, and with it on, destroying an iterator (the end of ``fit``, a loop that
stops early) blocked until tf.data's model-optimisation thread woke up: measured 25-40 s of idle
wall time after some trainings in the main job, none without it.
"""
from __future__ import annotations

import tensorflow as tf


def without_autotuning(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``ds`` with ``options.autotune.enabled = False`` (fixed parallelism and buffer sizes)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)
