"""Probe: does a listwise loss teach DeepFM that a turned-down item is not bought?

    python benchmarks/listwise_probe.py --run RUN_DIR [--weight 0.5] [--out benchmarks/results/listwise_probe.json]

``benchmarks/turned_down.py`` finds that the Keras rankers, trained with a pointwise binary
cross-entropy, keep an item the customer turned down first in ~90% of the requests, while GBDT
does not. The simulator's purchase is a choice among the request's candidates (a softmax over
utilities), so this probe trains the run's DeepFM (BF+IF+CF, same hyperparameters and seed) on
batches of whole training requests with ``(1 - w) * BCE + w * softmax cross-entropy over each
request's candidates``, saves it into a copy of the run directory, and measures both models on the
test split (AUC, Top@1, MRR) and through ``turned_down.py``'s rewritten requests.

A probe, not a ranker option: the listwise batches exist for the in-memory path only.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import format_table, write_results  # noqa: E402

FEATURE_SET = "BF+IF+CF"


def request_batches(groups: np.ndarray, requests_per_batch: int, seed: int):
    """``(dataset, steps, list_size)``: each element the row indices of ``requests_per_batch`` whole
    requests, padded to ``list_size`` rows per request (pad = -1), requests reshuffled every epoch."""
    import tensorflow as tf

    from core.tfdata import without_autotuning

    _, start, size = np.unique(groups, return_index=True, return_counts=True)
    order = np.argsort(start)
    start, size = start[order], size[order]
    if not (np.repeat(groups[start], size) == groups).all():
        raise ValueError("rows of a request must be contiguous (Corpus.candidate_rows order)")
    L = int(size.max())
    idx = np.full((len(start), L), -1, np.int32)
    for r, (s0, n) in enumerate(zip(start, size)):
        idx[r, :n] = np.arange(s0, s0 + n)
    steps = len(idx) // requests_per_batch
    table = tf.constant(idx)

    def epoch(e):
        perm = tf.random.experimental.stateless_shuffle(tf.range(len(idx), dtype=tf.int32),
                                                        seed=tf.stack([tf.constant(seed, tf.int64), e]))
        return tf.data.Dataset.from_tensor_slices(
            tf.reshape(tf.gather(table, perm[: steps * requests_per_batch]), [steps, requests_per_batch * L]))

    return without_autotuning(tf.data.Dataset.range(2**62).flat_map(epoch)), steps, L


def mixed_loss(list_size: int, weight: float):
    """``(1 - weight) * BCE + weight * softmax CE over each request``; y_true columns: label, mask."""
    import tensorflow as tf

    def loss(y_true, y_pred):
        label, mask = y_true[:, 0], y_true[:, 1]
        logit = y_pred[:, 0]
        bce = tf.reduce_sum(mask * tf.nn.sigmoid_cross_entropy_with_logits(labels=label, logits=logit))
        bce /= tf.maximum(tf.reduce_sum(mask), 1.0)
        L = tf.reshape(logit, [-1, list_size])
        M = tf.reshape(mask, [-1, list_size])
        Y = tf.reshape(label, [-1, list_size])
        logp = tf.nn.log_softmax(tf.where(M > 0, L, -1e9), axis=1)
        ce = -tf.reduce_mean(tf.reduce_sum(Y * tf.where(M > 0, logp, 0.0), axis=1))
        return (1.0 - weight) * bce + weight * ce

    return loss


def main() -> None:
    import tensorflow as tf
    import yaml

    from benchmarks.bench_serve import corpus_dir_of
    from benchmarks.turned_down import NEUTRAL, REJECTIONS, requests, shown_item
    from core.corpus import load_corpus
    from core.env import cache_root, shared_cache
    from features.materialize import FeaturePipeline
    from features.spec import load_spec
    from pipelines.score import Scorer
    from rankers import inputs as rin
    from rankers.registry import build, load
    from rankers.training import train_keras

    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--weight", type=float, default=0.5, help="share of the listwise term")
    ap.add_argument("--requests-per-batch", type=int, default=32)
    ap.add_argument("--out", default="benchmarks/results/listwise_probe.json")
    args = ap.parse_args()
    run = Path(args.run)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    corpus = load_corpus(corpus_dir_of(run), seed=cfg.get("seed", 0), split_ratios=tuple(cfg["split"]))
    spec = load_spec(run / "feature_spec.yaml")
    pipe = FeaturePipeline(spec, cache_root() / "features" / corpus.fingerprint(), cache=shared_cache(),
                           show_progress=False)
    table = pipe.fit_transform(corpus)
    space = pipe.feature_space(FEATURE_SET)
    model_dir = next(p for p in (run / "results").iterdir() if p.name.startswith("deepfm__") and
                     p.name.endswith(FEATURE_SET.replace("+", "_"))) / "model"
    pointwise = load(model_dir)

    tr, va, te = (table.mask(s) for s in ("train", "valid", "test"))
    ranker = build("deepfm", space, **{k: v for k, v in pointwise.hparams.items() if k != "name"})
    ranker.build_model()
    packed = rin.pack(space, table.X(space, "train"))
    y = table.labels[tr].astype(np.float32)
    ds_idx, steps, L = request_batches(table.groups[tr], args.requests_per_batch, int(ranker.hparams["seed"]))
    tensors = {k: tf.constant(v) for k, v in packed.items()}
    target = tf.constant(y)

    def gather(idx):
        safe = tf.maximum(idx, 0)
        mask = tf.cast(idx >= 0, tf.float32)
        return ({k: tf.gather(t, safe) for k, t in tensors.items()},
                tf.stack([tf.gather(target, safe) * mask, mask], axis=1))

    ds = ds_idx.map(gather).prefetch(2)
    valid = (rin.pack(space, table.X(space, "valid")), table.labels[va], table.groups[va])
    ranker.history_ = train_keras(ranker.model, ranker.hparams, {}, np.empty(0), valid,
                                  predict_fn=ranker._predict_packed, train_dataset=(ds, steps),
                                  loss=mixed_loss(L, args.weight))
    ranker.fitted_ = True

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        probe_run = Path(tmp) / "run"
        shutil.copytree(run, probe_run, ignore=shutil.ignore_patterns("test_predictions.parquet"))
        ranker.save(probe_run / model_dir.relative_to(run))
        cand = {"pointwise (BCE)": run, f"mixed, listwise share {args.weight}": probe_run}
        neutral_reqs = requests(corpus_dir_of(run), cfg, lambda k: NEUTRAL)
        rejected_reqs = requests(corpus_dir_of(run), cfg, lambda k: REJECTIONS[k % len(REJECTIONS)])
        for name, r in cand.items():
            model = load(r / model_dir.relative_to(run))
            m = model.evaluate(table.X(space, "test"), table.labels[te], table.groups[te])
            scorer = Scorer.load(r, "deepfm", FEATURE_SET)
            scorer.warm_up()
            neutral = shown_item(scorer, neutral_reqs)
            rejected = shown_item(scorer, rejected_reqs)
            rows.append({"training": name, "auc": m["auc"], "top@1": m["top@1"], "mrr": m["mrr"],
                         "turned_down_first": float(rejected[2].mean()),
                         "turned_down_below_half": float((rejected[1] >= 0.5).mean()),
                         "neutral_first": float(neutral[2].mean()),
                         "best_epoch": (model.history_ or {}).get("best_epoch", [None])[0]
                         if hasattr(model, "history_") else None})
    print(format_table(rows, [("training", "training", "<34"), ("AUC", "auc", ".4f"), ("T@1", "top@1", ".4f"),
                              ("MRR", "mrr", ".4f"), ("turned down first", "turned_down_first", ".3f"),
                              ("below half", "turned_down_below_half", ".3f"), ("neutral first", "neutral_first", ".3f")]))
    write_results(args.out, {"run": str(run), "feature_set": FEATURE_SET, "weight": args.weight,
                             "requests_per_batch": args.requests_per_batch, "rows": rows})


if __name__ == "__main__":
    main()
