"""The one training loop shared by every Keras ranker.

* data: the packed numpy arrays (``rankers.inputs.pack``, done once) become constant tensors; a
  ``tf.data`` pipeline yields, per epoch, a seeded stateless permutation cut into full batches
  (the few rows of a partial last batch are different rows every epoch) and gathers each batch
  with one ``tf.gather`` per packed tensor, then prefetches two batches (autotuning off: see
  ``core.tfdata``). No per-row or per-field Python work.
* model: Adam, binary cross-entropy on logits, ``jit_compile`` (XLA) and ``steps_per_execution``
  from the hparams, never run eagerly.
* listwise (``listwise_weight`` w > 0): batches of whole requests (``make_request_dataset``) and the
  loss ``(1 - w) * BCE + w * softmax cross-entropy over each request's candidates`` (``ranking_loss``),
  both per training row. The purchase is a choice among the shown candidates: the softmax term
  learns how much one candidate's evidence (a turned-down item) moves it against the others, which a
  pointwise loss on rare events underestimates; the BCE term keeps scores comparable across
  requests (pooled AUC, logloss).
* validation: after each epoch the validation rows are scored (large fixed-size batches) and AUC,
  logloss (and Top@K/MRR/NDCG when groups are given) go into the history and the Keras logs (so
  TensorBoard sees them). Early stopping on validation AUC with ``patience`` epochs; the best
  epoch's weights are restored at the end.
* reproducibility: ``tf.keras.utils.set_random_seed`` (Python, numpy, TF) plus, with
  ``deterministic: true``, ``tf.config.experimental.enable_op_determinism()`` (process-wide and
  irreversible, as TensorFlow offers it). A CPU rerun with the same seed gives identical metrics.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import numpy as np
import tensorflow as tf

from core.tfdata import without_autotuning
from core.metrics import evaluate

# packed validation arrays -> (n,) probabilities
PredictFn = Callable[[Mapping[str, np.ndarray]], np.ndarray]


def seed_everything(seed: int, deterministic: bool = True) -> None:
    tf.keras.utils.set_random_seed(int(seed))
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def make_train_dataset(packed: Mapping[str, np.ndarray], y: np.ndarray, batch_size: int, seed: int) -> tuple[tf.data.Dataset, int]:
    """Infinite dataset of shuffled full batches; returns ``(dataset, steps_per_epoch)``."""
    n = len(y)
    bs = min(int(batch_size), n)
    steps = n // bs
    tensors = {k: tf.constant(v) for k, v in packed.items()}
    labels = tf.constant(np.asarray(y, np.float32).reshape(-1, 1))

    def epoch_batches(epoch):
        perm = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int32), seed=tf.stack([tf.constant(int(seed), tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(tf.reshape(perm[: steps * bs], [steps, bs]))

    def gather(idx):
        return {k: tf.gather(t, idx) for k, t in tensors.items()}, tf.gather(labels, idx)

    ds = without_autotuning(tf.data.Dataset.range(2**62).flat_map(epoch_batches).map(gather).prefetch(2))
    return ds, steps


def request_index(groups: np.ndarray) -> np.ndarray:
    """``(R, L)`` row indices of each request's rows (in row order), padded with -1; ``L`` = the
    largest request."""
    _, inv, counts = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    order = np.argsort(inv, kind="stable")
    starts = np.cumsum(counts) - counts
    position = np.arange(len(inv)) - np.repeat(starts, counts)
    idx = np.full((len(counts), int(counts.max())), -1, np.int32)
    idx[inv[order], position] = order
    return idx


def make_request_dataset(packed: Mapping[str, np.ndarray], y: np.ndarray, groups: np.ndarray, batch_size: int,
                         seed: int) -> tuple[tf.data.Dataset, int, int]:
    """Infinite dataset of shuffled batches of whole requests: ``batch_size // L`` requests (at least
    one) of ``L`` rows each, padding rows masked out. Yields ``(features, y_true)`` with ``y_true``
    ``(rows, 2)`` = (label, mask). Returns ``(dataset, steps_per_epoch, L)``."""
    idx = request_index(groups)
    n_req, L = idx.shape
    per_batch = min(max(1, int(batch_size) // L), n_req)
    steps = n_req // per_batch
    table = tf.constant(idx)
    tensors = {k: tf.constant(v) for k, v in packed.items()}
    labels = tf.constant(np.asarray(y, np.float32))

    def epoch_batches(epoch):
        perm = tf.random.experimental.stateless_shuffle(
            tf.range(n_req, dtype=tf.int32), seed=tf.stack([tf.constant(int(seed), tf.int64), epoch]))
        rows = tf.gather(table, perm[: steps * per_batch])  # (steps * per_batch, L)
        return tf.data.Dataset.from_tensor_slices(tf.reshape(rows, [steps, per_batch * L]))

    def gather(rows):
        safe = tf.maximum(rows, 0)
        mask = tf.cast(rows >= 0, tf.float32)
        return ({k: tf.gather(t, safe) for k, t in tensors.items()},
                tf.stack([tf.gather(labels, safe) * mask, mask], axis=1))

    ds = without_autotuning(tf.data.Dataset.range(2**62).flat_map(epoch_batches).map(gather).prefetch(2))
    return ds, steps, L


def ranking_loss(list_size: int, listwise_weight: float) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """``(1 - w) * BCE + w * softmax CE`` over batches of ``make_request_dataset``; both terms are
    means per real (unmasked) row, so ``w`` mixes like with like.

    ``y_true``: ``(B * L, 2)`` label, mask; ``y_pred``: ``(B * L, 1)`` logits."""
    w = float(listwise_weight)

    def loss(y_true, y_pred):
        label, mask = y_true[:, 0], y_true[:, 1]
        logit = tf.cast(y_pred[:, 0], tf.float32)
        rows = tf.maximum(tf.reduce_sum(mask), 1.0)
        bce = tf.reduce_sum(mask * tf.nn.sigmoid_cross_entropy_with_logits(labels=label, logits=logit)) / rows
        logits = tf.reshape(logit, [-1, list_size])  # (B, L)
        real = tf.reshape(mask, [-1, list_size]) > 0
        log_p = tf.nn.log_softmax(tf.where(real, logits, -1e9), axis=1)  # padding gets no probability
        ce = -tf.reduce_sum(tf.reshape(label, [-1, list_size]) * tf.where(real, log_p, 0.0)) / rows
        return (1.0 - w) * bce + w * ce

    return loss


class _ValidateAndStop(tf.keras.callbacks.Callback):
    """Per-epoch validation metrics, early stopping on AUC, best weights kept in memory."""

    def __init__(self, predict_fn: PredictFn, valid, patience: int, history: dict, verbose: int):
        super().__init__()
        self.predict_fn, self.valid, self.patience, self.history, self.verbose = predict_fn, valid, int(patience), history, verbose
        self.best_auc, self.best_epoch, self.best_weights, self.wait = -np.inf, -1, None, 0
        self.t0 = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.t_epoch, self.c_epoch = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        h = self.history
        h.setdefault("train_seconds", []).append(time.perf_counter() - self.t_epoch)  # training only, wall
        h.setdefault("train_cpu_seconds", []).append(time.process_time() - self.c_epoch)  # process CPU time
        h.setdefault("epoch", []).append(epoch + 1)
        h.setdefault("loss", []).append(float(logs.get("loss", np.nan)))
        h.setdefault("seconds", []).append(time.perf_counter() - self.t0)
        if self.valid is None:
            return
        packed, y, groups = self.valid
        m = evaluate(y, self.predict_fn(packed), groups)
        for key, value in m.items():
            if key.startswith("n_"):
                continue
            h.setdefault(f"val_{key}", []).append(float(value))
            logs[f"val_{key}"] = float(value)
        if self.verbose:
            print(f"epoch {epoch + 1}: loss={h['loss'][-1]:.4f} " +
                  " ".join(f"val_{k}={v:.4f}" for k, v in m.items() if not k.startswith("n_")), flush=True)
        auc = m["auc"]
        if np.isfinite(auc) and auc > self.best_auc:
            self.best_auc, self.best_epoch, self.wait = auc, epoch + 1, 0
            self.best_weights = [w.copy() for w in self.model.get_weights()]
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
            self.history["best_epoch"] = [self.best_epoch]


def train_keras(model: tf.keras.Model, hparams: Mapping[str, Any], train: Mapping[str, np.ndarray], y: np.ndarray,
                valid=None, *, predict_fn: PredictFn | None = None, verbose: int = 0,
                tensorboard_dir: str | None = None, train_dataset: tuple[tf.data.Dataset, int] | None = None,
                groups: np.ndarray | None = None) -> dict[str, list[float]]:
    """Compile and fit ``model`` on packed arrays; returns the history dict.

    ``hparams``: the Keras ranker hyperparameters (``rankers.hparams.KerasHyperparameters``).
    ``valid``: ``(packed, y, groups or None)`` scored after each epoch with ``predict_fn``
    (packed arrays -> probabilities; required with ``valid``). ``train_dataset``: ``(dataset,
    steps_per_epoch)`` of training batches used instead of ``train``/``y`` (``rankers.streaming``).
    ``groups``: the request of each training row; with ``listwise_weight`` > 0 in the hparams the
    batches are whole requests and the loss is ``ranking_loss``; else binary cross-entropy on logits.
    """
    hp = hparams
    if valid is not None and predict_fn is None:
        raise ValueError("train_keras: validation data needs a predict_fn")
    if tensorboard_dir:
        try:
            import tensorboard  # noqa: F401
        except ImportError as exc:
            raise ImportError("tensorboard_dir needs the 'tensorboard' package (pip install tensorboard); "
                              "it is not a dependency of this project") from exc
    seed_everything(int(hp["seed"]), bool(hp["deterministic"]))
    w = float(hp.get("listwise_weight", 0.0))
    if w > 0 and train_dataset is None:
        if groups is None:
            raise ValueError("listwise_weight > 0 trains on whole requests: pass the request of each training row "
                             "(groups)")
        ds, steps, list_size = make_request_dataset(train, y, groups, int(hp["batch_size"]), int(hp["seed"]))
        loss = ranking_loss(list_size, w)
    else:
        ds, steps = train_dataset or make_train_dataset(train, y, int(hp["batch_size"]), int(hp["seed"]))
        loss = tf.keras.losses.BinaryCrossentropy(from_logits=True)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=float(hp["learning_rate"])),
        loss=loss,
        jit_compile=bool(hp["jit_compile"]),
        steps_per_execution=max(1, min(int(hp["steps_per_execution"]), steps)),
        run_eagerly=False,
    )
    history: dict[str, list[float]] = {}
    callbacks: list[tf.keras.callbacks.Callback] = [_ValidateAndStop(predict_fn, valid, hp["patience"], history, verbose)]
    if tensorboard_dir:
        callbacks.append(tf.keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir), update_freq="epoch"))
    model.fit(ds, epochs=int(hp["epochs"]), steps_per_epoch=steps, callbacks=callbacks,
              verbose=1 if verbose and verbose > 1 else 0)
    return history
