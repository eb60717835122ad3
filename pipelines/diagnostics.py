"""What a trained ranker relies on, and how far it is from what the data allows.

``permutation_importance(ranker, table, space)``
    Per feature group (the ``group`` of each field: BF / IF / CF / KF, or any named list of
    fields), the drop of test AUC and Top@1 when all the group's columns are shuffled *together*
    across the rows of the split (one row permutation applied to every column of the group, so
    the group's internal correlations survive and only its link to the label is cut). Seeded;
    ``repeats`` permutations are averaged and their standard deviation reported.

``learnable_ceiling(corpus_dir)``
    For a corpus written by the simulator: Top@1 / AUC of the true utility on the test split (what
    no model can beat in expectation), and the simulator's learnable ceiling, a logistic regression
    on observable proxies of every block (``synth.truth_diagnostics(learnable=True)``, trained on
    the train split and measured on valid+test).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from core import metrics
from core.space import FeatureSpace
from core.table import FeatureTable


def _top1_auc(y: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    return metrics.group_metrics(y, scores, groups, ks=(1,))["top@1"], metrics.auc(y, scores)


def feature_groups(space: FeatureSpace) -> dict[str, list[str]]:
    """group -> the space's field names of that group, in field order."""
    out: dict[str, list[str]] = {}
    for f in space.fields:
        out.setdefault(f.group or "?", []).append(f.name)
    return out


def permutation_importance(ranker, table: FeatureTable, space: FeatureSpace,
                           groups: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
                           split: str = "test", repeats: int = 3, seed: int = 0) -> pd.DataFrame:
    """One row per group: ``group, n_fields, auc, top1`` (unshuffled), ``auc_drop``, ``top1_drop``
    (means over ``repeats`` shuffles) and ``auc_drop_std``, ``top1_drop_std``.

    ``groups``: ``None`` = every field group of ``space``; a list of group names; or a mapping
    name -> field names (e.g. ``{"reaction": ["item_reaction__polarity", ...]}``).
    """
    all_groups = feature_groups(space)
    if groups is None:
        chosen = all_groups
    elif isinstance(groups, Mapping):
        chosen = {k: list(v) for k, v in groups.items()}
    else:
        chosen = {g: all_groups.get(g, []) for g in groups}
    names = set(space.names) if hasattr(space, "names") else {f.name for f in space.fields}
    for g, fields in chosen.items():
        unknown = [f for f in fields if f not in names]
        if not fields or unknown:
            raise ValueError(f"permutation_importance: group {g!r} has no fields of the space"
                             + (f" (unknown: {unknown})" if unknown else ""))
    X, y, grp = table.part(split, space)
    if len(y) == 0:
        raise ValueError(f"permutation_importance: the table has no {split!r} rows")
    base_top1, base_auc = _top1_auc(y, ranker.predict(X), grp)
    rng = np.random.default_rng(seed)
    rows = []
    for g, fields in chosen.items():
        drops = []
        for _ in range(repeats):
            perm = rng.permutation(len(y))
            Xp = {k: (v[perm] if k in fields else v) for k, v in X.items()}
            top1, auc = _top1_auc(y, ranker.predict(Xp), grp)
            drops.append((base_auc - auc, base_top1 - top1))
        d = np.asarray(drops)
        rows.append({"group": g, "n_fields": len(fields), "auc": base_auc, "top1": base_top1,
                     "auc_drop": float(d[:, 0].mean()), "top1_drop": float(d[:, 1].mean()),
                     "auc_drop_std": float(d[:, 0].std()), "top1_drop_std": float(d[:, 1].std())})
    return pd.DataFrame(rows)


def learnable_ceiling(corpus_dir: str | Path, corpus=None, split: str = "test") -> dict[str, float]:
    """``true_top1`` / ``true_auc``: ranking ``split``'s candidates by the simulator's true utility;
    ``learnable_top1`` / ``learnable_auc``: the simulator's learnable ceiling (BF+IF+CF logistic
    regression on observable proxies, valid+test); ``samples``: the number of ``split`` samples."""
    from core.corpus import load_corpus
    from synth import load_truth, truth_diagnostics

    corpus = corpus if corpus is not None else load_corpus(corpus_dir)
    diag = truth_diagnostics(corpus_dir, corpus=corpus, learnable=True)
    rows = corpus.candidates[["sample_id", "item_id", "label"]]
    split_of = corpus.samples.set_index("sample_id")["split"]
    rows = rows[rows["sample_id"].map(split_of) == split]
    df = rows.merge(load_truth(corpus_dir), on=["sample_id", "item_id"], how="left", validate="one_to_one")
    if df.empty or df["utility"].isna().any():
        raise ValueError(f"learnable_ceiling: no simulator truth for the {split!r} candidates of {corpus_dir}")
    top1, auc = _top1_auc(df["label"].to_numpy(), df["utility"].to_numpy(float), df["sample_id"].to_numpy())
    return {"samples": int(df["sample_id"].nunique()), "true_top1": top1, "true_auc": auc,
            "learnable_top1": diag["lr_top1_BF+IF+CF"], "learnable_auc": diag["lr_auc_BF+IF+CF"]}
