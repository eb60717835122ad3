"""How much purchase signal the behaviour logs carry in the simulator, beyond the profile (K-DCN's
user-state input), measured with the simulator's own observable proxies.

    python benchmarks/kf_signal.py [--scale default] [--split 0.4,0.1,0.5]

The simulator (``synth/population.py``) draws each behaviour's item by the *same* taste utility as
the purchase model's BF block (price fit to the budget, favourite brand, colour family, plus
Gumbel noise), so behaviours can only repeat BF's signal. Logistic regressions on the train split,
AUC / Top@1 on the test split with 95% request-bootstrap intervals, and paired differences:

* ``BF profile``: ``synth.diagnostics``'s observable profile-fit proxies;
* ``behaviour``: per candidate, the share of the user's logged items with its brand, its colour
  family and its category, and |log(price / median logged price in its category)|;
* ``BF+IF+CF``: the learnable ceiling's proxies of all blocks (truth CF score, IF flags);
* each with ``+ behaviour``. Also the truth ``bf`` block alone (what perfect taste knowledge gives).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import format_table, write_results  # noqa: E402
from core.bootstrap import RequestBootstrap, ci95, paired_difference  # noqa: E402
from core.corpus import load_corpus  # noqa: E402
from core.env import cache_root  # noqa: E402
from core.metrics import evaluate  # noqa: E402
from synth import default_corpus_dir  # noqa: E402
from synth.diagnostics import _observable_bf  # noqa: E402
from synth.generate import load_truth  # noqa: E402
from synth.world import world_data  # noqa: E402


def behaviour_proxies(corpus, df: pd.DataFrame) -> pd.DataFrame:
    world = world_data()
    a = corpus.item_attrs
    brand = a[a["name"] == "品牌"].drop_duplicates("item_id").set_index("item_id")["value"]
    colour = a[a["name"] == "颜色"].drop_duplicates("item_id").set_index("item_id")["value"].map(world.colour_family_of)
    it = corpus.items.set_index("item_id")
    b = corpus.behaviors[["user_id", "item_id"]].copy()
    b["brand"], b["colour"] = b["item_id"].map(brand), b["item_id"].map(colour)
    b["category"], b["lp"] = b["item_id"].map(it["category"]), np.log(b["item_id"].map(it["price"]).astype(float))
    n = b.groupby("user_id").size()
    uid = df["sample_id"].map(corpus.samples.set_index("sample_id")["user_id"])
    cand = pd.DataFrame({"user_id": uid.to_numpy(), "brand": df["item_id"].map(brand).to_numpy(),
                         "colour": df["item_id"].map(colour).to_numpy(),
                         "category": df["item_id"].map(it["category"]).to_numpy(),
                         "lp": np.log(df["item_id"].map(it["price"]).astype(float)).to_numpy()})
    X = pd.DataFrame(index=range(len(df)))
    total = cand["user_id"].map(n).fillna(0).to_numpy()
    for col in ("brand", "colour", "category"):
        hits = b.groupby(["user_id", col]).size().rename("k").reset_index()
        k = cand.merge(hits, on=["user_id", col], how="left")["k"].fillna(0).to_numpy()
        X[f"share_{col}"] = np.where(total > 0, k / np.maximum(total, 1), 0.0)
    med = b.groupby(["user_id", "category"])["lp"].median().rename("med").reset_index()
    m = cand.merge(med, on=["user_id", "category"], how="left")["med"].to_numpy()
    X["price_gap"] = np.where(np.isnan(m), 0.0, np.abs(cand["lp"].to_numpy() - np.nan_to_num(m)))
    X["has_cat_log"] = (~np.isnan(m)).astype(float)
    X["n_logs"] = np.log1p(total)
    return X


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", default="default")
    ap.add_argument("--split", default="0.4,0.1,0.5")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "kf_signal.json"))
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    t0 = time.perf_counter()
    path = default_corpus_dir(scale=args.scale, seed=0, cache_root=cache_root())
    corpus = load_corpus(path, seed=0, split_ratios=tuple(float(x) for x in args.split.split(",")))
    truth = load_truth(path)
    df = corpus.candidates[["sample_id", "item_id", "label"]].merge(truth, on=["sample_id", "item_id"], how="left")
    split = df["sample_id"].map(corpus.samples.set_index("sample_id")["split"]).to_numpy()
    tr, te = split == "train", split == "test"
    y, groups = df["label"].to_numpy(), df["sample_id"].to_numpy()
    blocks = {"BF profile": _observable_bf(corpus, df), "behaviour": behaviour_proxies(corpus, df),
              "IF+CF": df[["cf", "mentioned", "recent", "sim"]].astype(float)}
    designs = {"BF profile": ["BF profile"], "behaviour": ["behaviour"],
               "BF profile + behaviour": ["BF profile", "behaviour"], "BF+IF+CF": ["BF profile", "IF+CF"],
               "BF+IF+CF + behaviour": ["BF profile", "IF+CF", "behaviour"]}
    boot = RequestBootstrap(y[te], groups[te], seed=0)
    scores = {"truth bf block": df["bf"].to_numpy(float)[te]}
    for name, parts in designs.items():
        X = np.nan_to_num(np.column_stack([blocks[p].to_numpy(float) for p in parts]))  # unknown -> 0
        sc = StandardScaler().fit(X[tr])
        m = LogisticRegression(max_iter=1000).fit(sc.transform(X[tr]), y[tr])
        scores[name] = m.predict_proba(sc.transform(X[te]))[:, 1]
    rows, reps, point = [], {}, {}
    for name, s in scores.items():
        point[name] = evaluate(y[te], s, groups[te])
        reps[name] = boot.replicates(s)
        lo, hi = ci95(reps[name]["auc"])
        rows.append({"ranker": name, "auc": point[name]["auc"], "auc_low": lo, "auc_high": hi,
                     "top1": point[name]["top@1"]})
    diffs = []
    for a, b in [("BF profile + behaviour", "BF profile"), ("BF+IF+CF + behaviour", "BF+IF+CF"),
                 ("behaviour", "BF profile")]:
        d = paired_difference(point[a]["auc"], point[b]["auc"], reps[a]["auc"], reps[b]["auc"])
        diffs.append({"comparison": f"{a} − {b}", **{k: v for k, v in d.items()}})
    print(f"test requests {len(np.unique(groups[te]))}, candidate rows {int(te.sum())}")
    print(format_table(rows, [("ranker", "ranker", "<"), ("AUC", "auc", ".4f"), ("low", "auc_low", ".4f"),
                              ("high", "auc_high", ".4f"), ("Top@1", "top1", ".4f")]))
    print(format_table(diffs, [("paired ΔAUC", "comparison", "<"), ("Δ", "diff", "+.4f"), ("low", "low", "+.4f"),
                               ("high", "high", "+.4f"), ("P(Δ<=0)", "p_not_better", ".3f")]))
    write_results(args.out, {"scale": args.scale, "split": args.split, "test_requests": int(len(np.unique(groups[te]))),
                             "rankers": rows, "differences": diffs, "seconds": time.perf_counter() - t0,
                             "load_average": [round(x, 2) for x in os.getloadavg()]})


if __name__ == "__main__":
    main()
