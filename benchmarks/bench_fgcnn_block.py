#!/usr/bin/env python
"""FGCNN feature generation: ``rankers.layers.FGCNNBlock`` (banded-matmul convolution, pooling before
the tanh) against the same math written the direct way (Keras ``Conv2D`` with tanh, then max-pool),
one training step (forward + gradients) at the default run's shapes, timed in the same process.

    python benchmarks/bench_fgcnn_block.py [--fields 46] [--batch 1024] [--repeat 30]

Both sides share the block's own weights and must agree to float rounding (checked and printed).
Prints a table (p50 / p90 milliseconds per step, ratio) and writes ``benchmarks/results/fgcnn_block.json``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import format_table, training_step_ms, write_results  # noqa: E402

import core  # noqa: E402,F401  (Keras 2, quiet TensorFlow)
import tensorflow as tf  # noqa: E402

from rankers.layers import FGCNNBlock  # noqa: E402
from rankers.config import load_model_config  # noqa: E402


def direct(block: FGCNNBlock, v):
    """The paper's order on the block's weights: Conv2D('same', tanh) -> max-pool -> recombination."""
    x = v[..., None]
    new = []
    for conv, dense, rows, (f, _, m, p) in zip(block.convs, block.recombine, block.rows, block.spec):
        y = conv(x)  # (B, R, k, f)
        pad = rows * p - int(y.shape[1])
        if pad:
            y = tf.pad(y, [[0, 0], [0, pad], [0, 0], [0, 0]], constant_values=-2.0)  # tanh > -2
        x = tf.reduce_max(tf.reshape(y, [-1, rows, p, block.k, f]), axis=2)  # (B, rows, k, f)
        new.append(tf.reshape(dense(tf.reshape(x, [-1, rows * block.k * f])), [-1, rows * m, block.k]))
    return tf.concat(new, axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fields", type=int, default=46, help="field vectors entering the block (default run: 46)")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "fgcnn_block.json"))
    args = ap.parse_args()
    hp = load_model_config("fgcnn")
    tf.random.set_seed(0)
    block = FGCNNBlock(hp["conv_filters"], hp["conv_kernel_width"], hp["new_maps"], hp["pooling_width"])
    v = tf.random.normal([args.batch, args.fields, int(hp["embedding_dim"])])
    ours = block(v)
    diff = float(tf.reduce_max(tf.abs(ours - direct(block, v))))
    rows = []
    for name, fn in (("Conv2D + tanh, then max-pool", lambda x: direct(block, x)), ("FGCNNBlock", block)):
        ms = training_step_ms(fn, block.trainable_variables, v, args.repeat)
        rows.append({"implementation": name, "p50_ms": float(np.percentile(ms, 50)),
                     "p90_ms": float(np.percentile(ms, 90))})
    for r in rows:
        r["speedup"] = rows[0]["p50_ms"] / r["p50_ms"]
    print(format_table(rows, [("implementation", "implementation", "<"), ("p50 ms/step", "p50_ms", ".1f"),
                              ("p90 ms/step", "p90_ms", ".1f"), ("x vs Conv2D", "speedup", ".2f")]))
    print(f"max |difference| of the outputs: {diff:.2e}")
    write_results(args.out, {"meta": {"fields": args.fields, "batch": args.batch, "embedding_dim": hp["embedding_dim"],
                                      "conv_filters": hp["conv_filters"], "pooling_width": hp["pooling_width"],
                                      "repeat": args.repeat, "max_abs_difference": diff},
                             "rows": rows})


if __name__ == "__main__":
    main()
