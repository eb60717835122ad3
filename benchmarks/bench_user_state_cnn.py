#!/usr/bin/env python
"""K-DCN's user-state CNN (eq. 5): ``rankers.layers.UserStateCNN`` (a 1-D convolution over the
behaviour axis with the embedding width as channels) against the same layer written the direct way
(Keras ``Conv2D`` with an ``N x d`` kernel over a 1-channel ``(k, d)`` map), one training step
(forward + gradients) per behaviour count, timed in the same process on the layer's own weights.

    python benchmarks/bench_user_state_cnn.py [--behaviours 4,8,20] [--batch 512] [--repeat 50]

Both sides must agree to float rounding (checked and printed). Prints a table (p50 / p90
milliseconds per step, ratio) and writes ``benchmarks/results/user_state_cnn.json``.
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

from rankers.config import load_model_config  # noqa: E402
from rankers.layers import UserStateCNN  # noqa: E402


def direct(layer: UserStateCNN, B):
    """Eq. 5 as written: each ``Conv2D`` called on the zero-padded 1-channel behaviour map."""
    if layer.rows > layer.k:
        B = tf.pad(B, [[0, 0], [0, layer.rows - layer.k], [0, 0]])
    return tf.concat([tf.reshape(conv(B[..., None]), [tf.shape(B)[0], -1]) for conv in layer.convs], axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--behaviours", default="4,8,20", help="behaviour rows k (default run: 4 behaviour types)")
    ap.add_argument("--dim", type=int, default=64, help="entity width d (default run: 64)")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "user_state_cnn.json"))
    args = ap.parse_args()
    hp = load_model_config("kdcn")
    rows, diffs = [], {}
    for k in (int(x) for x in args.behaviours.split(",")):
        tf.random.set_seed(0)
        layer = UserStateCNN(hp["user_state_kernel_heights"], int(hp["user_state_filters"]))
        B = tf.random.normal([args.batch, k, args.dim])
        diffs[k] = float(tf.reduce_max(tf.abs(layer(B) - direct(layer, B))))
        base = None
        for name, fn in (("Conv2D over a 1-channel map", lambda x: direct(layer, x)), ("UserStateCNN (conv1d)", layer)):
            ms = training_step_ms(fn, layer.trainable_variables, B, args.repeat)
            base = base or float(np.percentile(ms, 50))
            rows.append({"behaviours": k, "implementation": name, "p50_ms": float(np.percentile(ms, 50)),
                         "p90_ms": float(np.percentile(ms, 90)), "speedup": base / float(np.percentile(ms, 50))})
    print(format_table(rows, [("k", "behaviours", "d"), ("implementation", "implementation", "<"),
                              ("p50 ms/step", "p50_ms", ".2f"), ("p90 ms/step", "p90_ms", ".2f"),
                              ("x vs Conv2D", "speedup", ".2f")]))
    print("max |difference| of the outputs:", ", ".join(f"k={k}: {d:.1e}" for k, d in diffs.items()))
    write_results(args.out, {"meta": {"batch": args.batch, "dim": args.dim, "repeat": args.repeat,
                                      "kernel_heights": hp["user_state_kernel_heights"],
                                      "filters": hp["user_state_filters"], "max_abs_difference": diffs},
                             "rows": rows})


if __name__ == "__main__":
    main()
