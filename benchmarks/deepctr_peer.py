#!/usr/bin/env python
"""DeepCTR side of ``benchmarks/bench_rankers.py``; runs in its OWN virtual environment.

    <peer-venv>/bin/python benchmarks/deepctr_peer.py DATA_DIR HPARAMS.json OUT.json

``DATA_DIR`` holds ``feature_space.json`` + ``features.npz`` (format: ``rankers/data.py``);
``HPARAMS.json``: ``{"model": "deepfm"|"dcn"|"fgcnn", "embedding_dim", "dnn_hidden_units",
"batch_size", "epochs", "learning_rate", "seed", "n_cross", "conv_filters", "conv_kernel_width",
"new_maps", "pooling_width", "predict_batch_size"}``. Writes test AUC / logloss, per-epoch
training seconds, validation AUC and scoring time to ``OUT.json``.

Never imported by the project (DeepCTR is not a project dependency). Compatibility notes for
deepctr 0.9.4 on TensorFlow 2.21: DeepCTR imports ``tensorflow.keras`` and Keras-2-only internals
(``tensorflow.python.keras``-era layers, ``Layer.add_weight`` positional use), so
``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is imported (done below) and ``tf-keras``
must be installed; with that, ``deepctr.models`` imports and trains unpatched. Its protocol here
mirrors ours: Adam, binary cross-entropy, fixed epochs, sklearn-style AUC on the validation rows
after each epoch, the best epoch's weights restored, then the test rows scored.
"""
from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney with average ranks for ties), numpy only."""
    y = np.asarray(y).astype(bool)
    s = np.asarray(s, np.float64)
    order = np.argsort(s, kind="mergesort")
    ss = s[order]
    _, first, counts = np.unique(ss, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0  # 1-based average rank of each distinct value
    ranks = np.empty(len(s))
    ranks[order] = np.repeat(avg, counts)
    n1 = y.sum()
    n0 = len(y) - n1
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def logloss(y, p) -> float:
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def main(data_dir: str, hparams_path: str, out_path: str) -> None:
    import tensorflow as tf
    from deepctr.feature_column import DenseFeat, SparseFeat, VarLenSparseFeat
    from deepctr.models import DCN, FGCNN, DeepFM

    hp = json.loads(open(hparams_path).read())
    space = json.loads(open(os.path.join(data_dir, "feature_space.json")).read())
    with np.load(os.path.join(data_dir, "features.npz"), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    tf.keras.utils.set_random_seed(int(hp["seed"]))
    k = int(hp["embedding_dim"])
    columns = []
    for f in space["fields"]:
        if f["kind"] == "categorical":
            columns.append(SparseFeat(f["name"], vocabulary_size=f["vocab_size"], embedding_dim=k))
        elif f["kind"] == "dense":
            columns.append(DenseFeat(f["name"], f["dim"]))
        else:  # sequence: shared vocabulary via embedding_name, mean pooling over non-padding ids
            vocab_size = max(g["vocab_size"] for g in space["fields"]
                             if g["kind"] == "sequence" and (g["vocab"] or g["name"]) == (f["vocab"] or f["name"]))
            columns.append(VarLenSparseFeat(SparseFeat(f["name"], vocabulary_size=vocab_size, embedding_dim=k,
                                                       embedding_name=f["vocab"] or f["name"]),
                                            maxlen=f["dim"], combiner="mean"))
    names = [f["name"] for f in space["fields"]]
    split = arrays["split"].astype(str)
    y = arrays["label"].astype(np.float32)

    def part(which):
        m = split == which
        return {n: arrays[n][m] for n in names}, y[m]

    (Xtr, ytr), (Xva, yva), (Xte, yte) = part("train"), part("valid"), part("test")
    common = dict(dnn_hidden_units=tuple(hp["dnn_hidden_units"]), l2_reg_linear=0.0, l2_reg_embedding=0.0,
                  l2_reg_dnn=0.0, seed=int(hp["seed"]), dnn_dropout=0.0, task="binary")
    model_name = hp["model"]
    if model_name == "deepfm":
        model = DeepFM(columns, columns, **common)
    elif model_name == "dcn":
        model = DCN(columns, columns, cross_num=int(hp["n_cross"]), cross_parameterization="matrix",
                    l2_reg_cross=0.0, **common)
    elif model_name == "fgcnn":
        common.pop("dnn_dropout")
        model = FGCNN(columns, columns, conv_kernel_width=tuple(hp["conv_kernel_width"]),
                      conv_filters=tuple(hp["conv_filters"]), new_maps=tuple(hp["new_maps"]),
                      pooling_width=tuple(hp["pooling_width"]), **common)
    else:
        raise SystemExit(f"unknown model {model_name}")
    model.compile(tf.keras.optimizers.Adam(float(hp["learning_rate"])), "binary_crossentropy")
    pbs = int(hp.get("predict_batch_size", 16384))

    class Track(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.train_seconds, self.train_cpu_seconds, self.val_auc = [], [], []
            self.best, self.best_w = -1.0, None

        def on_epoch_begin(self, epoch, logs=None):
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.train_seconds.append(time.perf_counter() - self.t0)
            self.train_cpu_seconds.append(time.process_time() - self.c0)
            a = auc(yva, model.predict(Xva, batch_size=pbs, verbose=0).ravel())
            self.val_auc.append(a)
            if a > self.best:
                self.best, self.best_w = a, model.get_weights()

    track = Track()
    t = time.perf_counter()
    model.fit(Xtr, ytr, batch_size=int(hp["batch_size"]), epochs=int(hp["epochs"]), shuffle=True, verbose=0,
              callbacks=[track])
    fit_seconds = time.perf_counter() - t
    model.set_weights(track.best_w)
    model.predict({n: v[:pbs] for n, v in Xte.items()}, batch_size=pbs, verbose=0)  # warm-up
    t = time.perf_counter()
    p = model.predict(Xte, batch_size=pbs, verbose=0).ravel()
    score_seconds = time.perf_counter() - t
    out = {
        "impl": "deepctr", "deepctr_version": __import__("deepctr").__version__, "tf_version": tf.__version__,
        "model": model_name, "n_train": int(len(ytr)), "n_test": int(len(yte)),
        "train_seconds": track.train_seconds, "train_cpu_seconds": track.train_cpu_seconds, "val_auc": track.val_auc, "fit_seconds": fit_seconds,
        "test_auc": auc(yte, p), "test_logloss": logloss(yte, p), "score_seconds": score_seconds,
        "n_params": int(model.count_params()),
    }
    with open(out_path, "w") as fh:
        json.dump(out, fh, indent=1)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
