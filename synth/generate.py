"""Embedded synthetic E-ConvRec-like corpus: Chinese pre-sales dialogues, user profiles, a product KB.

``generate_corpus(out_dir, scale, seed)`` writes the JSON Lines format of ``docs/data_format.md``
deterministically from the seed (identical seed => byte-identical files), into a temporary
directory that is renamed when complete. ``default_corpus_dir()`` generates the default corpus
into a cache directory on first use. CLI: ``python -m synth --out DIR --scale default``.

Code: ``world.json`` (categories, brands, attributes, wordings) loaded by ``synth.world``; the
purchase model's constants in ``synth.model``; the simulation in ``synth.simulator`` (shops and
items ``synth.catalogue``, users ``synth.population``, episodes ``synth.episode``, stated
preferences ``synth.preferences``); the table below by ``synth.diagnostics``; files here.

World
-----
* 10 categories (手机 笔记本电脑 冰箱 洗衣机 口红 耳机 运动鞋 空调 电视 面霜), each with a brand list
  (price tier, popularity, series) and its own attribute schema (9-13 KB attributes plus 品牌 and
  型号; 50+ distinct attribute names overall) with Zipf-weighted value vocabularies (long tails of
  colour names such as 雅川青 / 远峰蓝). Prices come from the category base price, the brand tier
  and per-value price effects (more memory, bigger capacity cost more) with log-normal noise.
  JD-style titles: brand, series, key values, marketing words (descriptive words such as 拍照清晰
  appear in titles of items that have the matching attribute value). ~7% of the items have no KB
  attributes (E-ConvRec: "items without the KB").
* Shops sell 1-3 categories (brand flagship stores or multi-brand retailers); a (shop, category)
  catalogue has 10-66 items. Sizes: ``tiny`` 200 sessions / ~1.7k items, ``default`` 2,000 sessions
  / ~10k items / ~2.2k samples / ~68k candidate rows, ``full`` 25,440 sessions / 24,358 users /
  ~118k items / ~28k samples / ~860k candidate rows (E-ConvRec size).
* Users: the 20 E-ConvRec profile fields; ~1.4% have an empty profile, ~4% of fields are missing.
  Latent tastes: a budget multiplier tied to ``avg_pay_monthly`` (log budget = 0.5 log(pay/1500)
  + N(0, 0.25)), a price sensitivity (``price_sensitivity`` shows it with 80% accuracy), a
  favourite brand per category group (数码 / 家电 / 美妆 / 运动; ``brand_preference`` shows the
  one of the user's first session's group 60% of the time) and a favourite colour family
  (``preferred_color`` shows it 75% of the time). Behaviour logs (click / cart / favorite /
  purchase, before the user's first session) pick items by the same taste utility.
* Dialogues: 2..100 exchanges (user block + staff block, 1-2 utterances each), mostly 3-12, mode
  ~7. Greeting, category request, preference statements of the four E-ConvRec kinds (descriptive:
  attribute values, colour families, brands, descriptive words mapped to attribute values;
  category; negative: 不要金色 / 别太贵 / 除了黑色; comparative: 3000以内 / 低于3000 / 便宜一点 /
  大于200G), staff questions and answers, staff recommendations linking items, user feedback,
  logistics / invoice / promotion chatter, the recommendation turn (staff, ``recommend=true``,
  links the purchased item) and post-purchase turns. User utterances carry an intent of
  E-ConvRec table 5 (Inform Preference, Request Attributes, Don't care, Confirmation, Other) and
  ``preference_words`` annotations (text is a substring of the utterance). ~12% of the sessions
  have a second purchase episode (E-ConvRec: 32.6k cases in 25.4k sessions).
* Samples: the purchased item plus up to 30 hard negatives: items of the same shop and category
  (the staff only links those), filled from other shops of the category when the catalogue is
  small; ~5% of samples have fewer candidates (15-30), ~30.6 on average. Candidate order is random.

Purchase model (the "true utility")
-----------------------------------
For a sample of user u in category c with candidate set C, the bought item is
``argmax_{i in C} U_i + G_i`` with ``G_i ~ Gumbel(0, TAU)``, ``TAU = 0.3``, and
``U_i = BF_i + CF_i + IF_i`` (weights are the ``W_*`` constants of ``synth.model``):

* BF, profile fit: ``-a_u |ln(price_i / B_uc)| + 1.2 [brand_i = fav_brand_u(group of c)]
  + 0.8 [colour family_i = fav_colour_u]`` with ``B_uc = median price of c * budget_u`` and
  ``a_u`` = 1.8 / 1.2 / 0.7 for high / medium / low latent price sensitivity. The profile shows
  these tastes only noisily (``avg_pay_monthly`` -> budget up to N(0, 0.25) in log space;
  ``brand_preference`` right 60%, ``preferred_color`` 75%, ``price_sensitivity`` 80%).
* CF, preferences stated in user turns before the recommendation turn: ``+0.7`` per positive
  preference the item matches (an attribute value, a descriptive word's value set such as
  拍照清晰 -> 后摄主像素 in {5000万像素, 1亿像素}, a colour family, a brand), ``-1.6`` per negative
  preference it matches (rejected colour family / brand / value; 别太贵: price above 1.15x the
  shop's median), ``-1.3`` per comparative constraint it violates (price above the stated
  threshold; 便宜一点: not cheaper than the last linked item; attribute thresholds such as
  大于200G). Category words have no effect (all candidates share the category). Users state 0-4
  positive preferences (plus a brand 30% of the time), a negative one in ~25% and a comparative
  one in ~22% of the episodes, drawn from an item they like (``p ~ exp(0.5 BF)``).
* IF, interaction: ``+1.0`` if the item was linked (by the staff or the user) in a turn before the
  recommendation turn, ``+0.6`` more if it was in the last linking staff turn (or linked by the
  user), ``+4.0 x`` its mean attribute overlap (KB attributes incl. 品牌 / 型号) with the other
  linked items. Items of a series (brand + 型号) share most specs, so variants of a linked item
  profit too: the purchase is often a sibling of a linked item rather than the linked item.
  Reactions (``synth.feedback``, generator 3): after a staff turn links items the customer reacts
  (P 0.65) by the item's standing: positive ``+1.0`` (hedged +0.5), negative or a comparative
  request (有没有便宜一点的) ``-4.0`` to the item and ``-1.6 x`` overlap to its siblings (plus ``-1.3``
  to candidates failing the comparative), an attribute question (no effect), or nothing. Since
  generator 5, 30% of the reactions come from private taste (a uniformly drawn standing), so a
  well-fitting item is sometimes turned down, as real customers do.

The staff links items of the shop's own catalogue chosen by a noisy reading of the user
(``0.8 CF so far + 0.5 BF + Gumbel(0, 3)``), 1-3 at a time, in a staff block with probability
0.6 decaying by 0.8 per linking block. So blocks are correlated but complementary.

Measured on ``default`` (seed 0; ``truth_diagnostics``; generator 5; ``full`` not re-measured since the reactions). Top@1 and AUC
come from ``core.metrics``, so a tie at the top counts as a miss: CF alone gives all candidates
matching the same stated preferences one score, hence its low Top@1 next to its AUC.

==========================  =====  ======
ranking by                  Top@1  AUC
==========================  =====  ======
true utility (BF+CF+IF)     0.66   0.83
IF alone                    0.39   0.72
CF alone                    0.06   0.70
BF alone                    0.13   0.68
BF+CF                       0.24   0.77
BF+IF                       0.51   0.78
random (1/#candidates)      0.033  0.50
==========================  =====  ======

(Generator 4, before the private-taste reactions: 0.65 / 0.84, 0.40 / 0.73, 0.07 / 0.70, 0.12 / 0.69,
0.25 / 0.77, 0.51 / 0.79.)

The purchased item is linked before the recommendation turn in ~57% of the samples; a sample has
~4.0 linked candidates (3.4 not bought). A logistic regression on observable proxies of each
block (``truth_diagnostics(learnable=True)``: BF from the profile fields, CF the stated-preference
score, IF linked / recency / attribute overlap) gives the E-ConvRec table 8 ordering:
AUC BF 0.66 < BF+CF 0.75 < BF+IF 0.83 < BF+IF+CF 0.89 (Top@1 0.09 / 0.18 / 0.40 / 0.47; generator 5,
8:1:1 split; IF includes the customer's observable reactions).
``_truth.parquet`` (ignored by the loader) holds, per candidate: sample_id, item_id, bf, cf, if_,
utility (= bf + cf + if_), gumbel (the noise drawn, scale TAU), mentioned, recent, sim and reaction
(the signed reaction the candidate received, ``synth.feedback``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from core import env
from core.io import atomic_dir, write_json, write_jsonl
from synth.model import GENERATOR_VERSION, SCALES
from synth.simulator import Simulator

TRUTH_FILE = "_truth.parquet"
INFO_FILE = "_generator.json"


def generate_corpus(out_dir: str | Path, scale: str = "default", seed: int = 0, return_utilities: bool = False,
                    replace: bool = True):
    """Write a synthetic corpus to ``out_dir`` (JSON Lines, ``docs/data_format.md``) and return the
    path (and, with ``return_utilities=True``, the truth table as a DataFrame). Files are written to
    a temporary sibling directory first and renamed when complete. An existing ``out_dir`` that
    looks like a corpus (or is empty) is replaced; with ``replace=False`` a complete corpus in
    ``out_dir`` (also one that another process finished meanwhile) is kept."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not ((out / "samples.jsonl").exists() or (out / INFO_FILE).exists()):
        raise FileExistsError(f"{out} exists and does not look like a generated corpus; refusing to replace it")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {sorted(SCALES)}, not {scale!r}")
    if not replace and (out / INFO_FILE).is_file():
        return (out, load_truth(out)) if return_utilities else out
    # keep_existing: only a directory that appears while we generate is another process's finished corpus
    with atomic_dir(out, keep_existing=not replace and not out.exists()) as tmp:
        sim = Simulator(scale, seed)
        tables = sim.run()
        for name, recs in tables.items():
            write_jsonl(tmp / f"{name}.jsonl", recs)
        truth = _truth_frame(sim)
        truth.to_parquet(tmp / TRUTH_FILE, index=False)
        counts = {k: len(v) for k, v in sorted(tables.items())}
        write_json(tmp / INFO_FILE, {"candidate_rows": int(len(truth)), "counts": counts,
                                     "generator_version": GENERATOR_VERSION, "scale": scale, "seed": seed})
    return (out, truth) if return_utilities else out


def _truth_frame(sim: Simulator):
    """One row per candidate of every sample, in sample and candidate order."""
    import pandas as pd

    columns = list(zip(*sim.truth)) if sim.truth else [()] * 10
    sample_ids, pools, bf, cf, if_, gumbel, mentioned, recent, overlap, reaction = columns

    def cat(xs, dtype):
        return np.concatenate(xs).astype(dtype) if xs else np.zeros(0, dtype)

    items = cat(pools, np.int64)
    sid = [s for s, pool in zip(sample_ids, pools) for _ in range(len(pool))]
    df = pd.DataFrame({"sample_id": pd.Series(sid, dtype="str"),
                       "item_id": pd.Series([sim.C.item_ids[i] for i in items.tolist()], dtype="str"),
                       "bf": cat(bf, np.float64), "cf": cat(cf, np.float64), "if_": cat(if_, np.float64)})
    df["utility"] = df["bf"] + df["cf"] + df["if_"]
    df["gumbel"] = cat(gumbel, np.float64)
    df["mentioned"] = cat(mentioned, bool)
    df["recent"] = cat(recent, bool)
    df["sim"] = cat(overlap, np.float64)
    df["reaction"] = cat(reaction, np.float64)
    return df


def load_truth(corpus_dir: str | Path):
    """The generator's per-candidate truth table (``_truth.parquet``)."""
    import pandas as pd

    return pd.read_parquet(Path(corpus_dir) / TRUTH_FILE)


def default_corpus_dir(cache_root: str | Path | None = None, scale: str = "default", seed: int = 0) -> Path:
    """The embedded corpus directory, generated on first use: ``<cache>/corpus-<scale>-seed<seed>-v<N>``
    where ``<cache>`` is ``cache_root``, else ``$ECONVREC_CACHE``, else ``~/.cache/econvrec_rank``."""
    root = Path(cache_root) if cache_root is not None else env.cache_root()
    path = root / f"corpus-{scale}-seed{seed}-v{GENERATOR_VERSION}"
    if not (path / INFO_FILE).is_file():
        generate_corpus(path, scale=scale, seed=seed, replace=False)
    return path


def main(argv: list[str] | None = None) -> int:
    from synth.diagnostics import truth_diagnostics

    ap = argparse.ArgumentParser(prog="python -m synth", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (replaced if it holds a generated corpus)")
    ap.add_argument("--scale", default="default", choices=sorted(SCALES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--diagnostics", action="store_true", help="print the truth diagnostics afterwards")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    out = generate_corpus(a.out, scale=a.scale, seed=a.seed)
    info = json.loads((out / INFO_FILE).read_text(encoding="utf-8"))
    print(f"wrote {out} in {time.perf_counter() - t0:.1f}s: " + ", ".join(f"{k}={v:,}" for k, v in
                                                                        info["counts"].items())
          + f", candidate_rows={info['candidate_rows']:,}")
    if a.diagnostics:
        for k, v in truth_diagnostics(out, learnable=True).items():
            print(f"  {k:28s} {v:.4f}" if isinstance(v, float) else f"  {k:28s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
