"""How well the purchase model's blocks rank the bought item (the ``synth.generate`` module doc's table).

Top@1 and AUC come from :mod:`core.metrics`, the project's one definition: ties are ranked
pessimistically for Top@1 (a block that gives many candidates the same score, such as CF = 0 or
"not linked", gets no lucky hits) and averaged for AUC.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from core import metrics
from synth.generate import load_truth
from synth.world import world_data

RANDOM_SEED = 12345  # the random-ranking baseline's scores
BLOCK_COLUMNS = ["utility", "bf", "cf", "if_", "bf_cf", "bf_if", "bf_cf_if", "random"]


def _top1_auc(y: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    return metrics.group_metrics(y, scores, groups, ks=(1,))["top@1"], metrics.auc(y, scores)


def truth_diagnostics(corpus_dir: str | Path, corpus=None, learnable: bool = False) -> dict:
    """Top@1 / AUC of ranking candidates by the true utility and by each block alone, the random
    baseline, and the mention rate of the purchased item (see the module doc). ``learnable`` adds
    the E-ConvRec table 8 ablation (BF, BF+CF, BF+IF, BF+IF+CF) of a logistic regression on
    observable proxies of each block (``lr_top1_*``, ``lr_auc_*``)."""
    from core.corpus import load_corpus

    corpus = corpus if corpus is not None else load_corpus(corpus_dir)
    truth = load_truth(corpus_dir)
    rows = corpus.candidates[["sample_id", "item_id", "label"]]
    df = rows.merge(truth, on=["sample_id", "item_id"], how="left", validate="one_to_one")
    if df["utility"].isna().any():
        raise ValueError("truth table does not cover the corpus's candidates")
    df["random"] = np.random.default_rng(RANDOM_SEED).random(len(df))
    df["bf_cf"] = df["bf"] + df["cf"]
    df["bf_if"] = df["bf"] + df["if_"]
    df["bf_cf_if"] = df["bf"] + df["cf"] + df["if_"]
    n_samples = int(df["sample_id"].nunique())
    out: dict = {"samples": n_samples, "candidate_rows": int(len(df)),
                 "mean_candidates": float(len(df) / max(1, n_samples))}
    y, groups = df["label"].to_numpy(), df["sample_id"].to_numpy()
    for col in BLOCK_COLUMNS:
        out[f"top1_{col}"], out[f"auc_{col}"] = _top1_auc(y, df[col].to_numpy(float), groups)
    out["random_expected_top1"] = float((1.0 / df.groupby("sample_id", sort=False).size()).mean())
    lab = df[df["label"] == 1]
    out["label_mentioned_rate"] = float(lab["mentioned"].mean())
    out["mean_mentioned_per_sample"] = float(df.groupby("sample_id", sort=False)["mentioned"].sum().mean())
    out["mean_mentioned_non_label"] = float(df[df["label"] == 0].groupby("sample_id", sort=False)["mentioned"].sum()
                                            .reindex(df["sample_id"].unique(), fill_value=0).mean())
    if learnable:
        out.update(_learnable_ablation(corpus, df))
    return out


def _observable_bf(corpus, df):
    """Profile-fit proxies a ranker could compute from the files: |log(price / budget proxy)| with
    the budget proxy from avg_pay_monthly and the category's median price (also split by the
    price_sensitivity field), brand == brand_preference, colour family == preferred_color."""
    import pandas as pd

    world = world_data()
    s = corpus.samples.set_index("sample_id")["user_id"]
    it = corpus.items.set_index("item_id")
    a = corpus.item_attrs
    brand = a[a["name"] == "品牌"].drop_duplicates("item_id").set_index("item_id")["value"]
    colour = a[a["name"] == "颜色"].drop_duplicates("item_id").set_index("item_id")["value"].map(world.colour_family_of)
    u = corpus.users.set_index("user_id")
    uid = df["sample_id"].map(s)
    cat = df["item_id"].map(it["category"])
    price = df["item_id"].map(it["price"]).astype(float)
    med = it.groupby("category")["price"].median()
    pay = uid.map(u["avg_pay_monthly"]).astype(float).fillna(float(u["avg_pay_monthly"].median()))
    budget = cat.map(med).astype(float) * np.sqrt(pay / 1500.0)
    gap = np.abs(np.log(price / budget)).fillna(0.0)
    sens = uid.map(u["price_sensitivity"])
    X = {"gap": gap, "lp": np.log(price).fillna(float(np.log(price).median()))}
    for v in world.profile.high_medium_low:
        X[f"gap_{v}"] = gap * (sens == v)
    X["brand"] = (df["item_id"].map(brand) == uid.map(u["brand_preference"])).fillna(False).astype(float)
    X["colour"] = (df["item_id"].map(colour) == uid.map(u["preferred_color"])).fillna(False).astype(float)
    return pd.DataFrame(X)


def _learnable_ablation(corpus, df) -> dict:
    """Logistic regression on observable per-block proxies (BF: profile fit; CF: the stated-preference
    score; IF: linked flag, recency, attribute overlap with linked items), trained on the train
    split, Top@1 / AUC on valid+test: what an ideal simple ranker could get from each block."""
    from sklearn.linear_model import LogisticRegression

    bfx = _observable_bf(corpus, df)
    blocks = {"BF": bfx, "CF": df[["cf"]], "IF": df[["mentioned", "recent", "sim"]].astype(float)}
    if "reaction" in df:  # generator >= 3: the customer's reactions (said in the dialogue) are observable
        blocks["IF"] = blocks["IF"].assign(pos=(df["reaction"] > 0).astype(float), neg=(df["reaction"] < 0).astype(float))
    split = df["sample_id"].map(corpus.samples.set_index("sample_id")["split"])
    tr = (split == "train").to_numpy()
    te = ~tr
    y = df["label"].to_numpy()
    groups = df["sample_id"].to_numpy()
    out = {}
    for name in ["BF", "BF+CF", "BF+IF", "BF+IF+CF"]:
        X = np.column_stack([blocks[b].to_numpy(float) for b in name.split("+")])
        m = LogisticRegression(max_iter=500).fit(X[tr], y[tr])
        out[f"lr_top1_{name}"], out[f"lr_auc_{name}"] = _top1_auc(y[te], m.decision_function(X[te]), groups[te])
    return out
