"""Price constraints stated in the dialogue (CF, beyond E-ConvRec).

E-ConvRec's context features are similarities (GloVe, BERT); a similarity cannot read a number,
so "3000以内", "低于3000", "便宜一点" or "别太贵" carry no signal through them. This kind parses
those comparative and negative preference words and compares them with the candidate's price:

* ``""`` (``price_constraint``): ``log(price / bound)`` for the tightest stated upper bound, 0 when
  the user stated none; ``violates``: 1 when the price is above it.
* ``cheaper``: after "便宜一点/便宜些/实惠", ``log(price / price of the last linked item)``.
* ``too_expensive``: after "别太贵/不要太贵", ``log(price / median price of the candidates)``.
* ``has_constraint``: 1 when any of the three applies.

All per-sample quantities come from joins over ``ctx.preferences`` and ``ctx.mentions``-style
tables (turns before the recommendation turn only).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from features.frames import lookup
from features.registry import KindParams, OutputColumn, register
from features.text import normalise_series

# An upper bound on price: "低于3000", "不超过3000", "3000以内", "3000元以内" (not "200g以内").
_UPPER = (r"(?:低于|不超过|小于|不高于|不要超过)\s*(?P<a>\d+(?:\.\d+)?)\s*(?:元|块)?(?![a-z0-9])"
          r"|(?P<b>\d+(?:\.\d+)?)\s*(?:元|块)?\s*(?:以内|以下|之内)")
_CHEAPER = r"便宜|实惠|划算"
_TOO_EXPENSIVE = r"太贵|贵了|别.*贵"


class ConstraintParams(KindParams):
    transform: str = "none"  # log ratios and flags, already on a small scale


def _per_sample(ctx) -> pd.DataFrame:
    """sample_id -> bound, wants_cheaper, rejects_expensive, ref_price."""
    pref = ctx.preferences
    text = normalise_series(pref["text"], strip=False)
    comp = pref["type"] == "comparative"
    ub = text.str.extract(_UPPER)
    bound = pd.to_numeric(ub["a"].fillna(ub["b"]), errors="coerce").where(comp)
    g = pd.DataFrame({
        "sample_id": pref["sample_id"],
        "bound": bound,
        "cheaper": (comp & text.str.contains(_CHEAPER, regex=True)).astype(float),
        "expensive": ((pref["type"] == "negative") & text.str.contains(_TOO_EXPENSIVE, regex=True)).astype(float),
    }).groupby("sample_id")
    # (one reduction per column: half the cost of a named .agg on a request's few rows)
    out = pd.DataFrame({"bound": g["bound"].min(), "cheaper": g["cheaper"].max(), "expensive": g["expensive"].max()})
    # Price of the item(s) linked in the last linking turn before the recommendation turn.
    ti, si = ctx.before_sample(ctx.corpus.turn_items)
    turn_idx = ctx.corpus.turn_items["turn_idx"].to_numpy(np.int64)[ti]
    last = np.full(len(ctx.corpus.samples), -1, np.int64)
    np.maximum.at(last, si, turn_idx)
    in_last = turn_idx == last[si]
    ti, si = ti[in_last], si[in_last]
    items = ctx.corpus.items
    at = pd.Index(items["item_id"]).get_indexer(ctx.corpus.turn_items["item_id"].to_numpy()[ti])
    price = np.where(at >= 0, items["price"].to_numpy(float)[at], np.nan)
    known = ~np.isnan(price)
    n = np.bincount(si[known], minlength=len(last))
    total = np.bincount(si[known], weights=price[known], minlength=len(last))
    linked = np.unique(si)  # samples with a linking turn (their mean is NaN when no price is known)
    ref = pd.Series(np.divide(total[linked], n[linked], out=np.full(len(linked), np.nan), where=n[linked] > 0),
                    index=pd.Index(ctx.corpus.samples["sample_id"].to_numpy()[linked], name="sample_id"))
    return out.join(ref.sort_index().rename("ref_price"), how="outer")


@register(
    "price_constraint",
    params=ConstraintParams,
    outputs=[OutputColumn(k, "numeric") for k in ("", "violates", "cheaper", "too_expensive", "has_constraint")],
)
def price_constraint(rows: pd.DataFrame, ctx, p: ConstraintParams, state: dict) -> pd.DataFrame:
    """CF: the candidate's price against price bounds stated in the dialogue (以内/低于, 便宜一点, 别太贵)."""
    per = ctx.memo("cf.price_constraint", lambda: _per_sample(ctx))
    items = ctx.corpus.items
    price = lookup(items["item_id"], items["price"], rows["item_id"]).to_numpy(float)
    # per-sample values looked up once per sample, then spread over its rows by integer code
    sample_of, samples = pd.factorize(rows["sample_id"], use_na_sentinel=False)
    per = per.reindex(samples)
    bound = per["bound"].to_numpy(float)[sample_of]
    cheaper = per["cheaper"].fillna(0).to_numpy(float)[sample_of] > 0
    expensive = per["expensive"].fillna(0).to_numpy(float)[sample_of] > 0
    ref = per["ref_price"].to_numpy(float)[sample_of]
    median = pd.Series(price).groupby(sample_of).transform("median").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        to_bound = np.log(price / bound)
        to_ref = np.log(price / ref)
        to_median = np.log(price / median)
    has_bound = np.isfinite(to_bound)
    out = {
        "": np.where(has_bound, to_bound, 0.0),
        "violates": (has_bound & (to_bound > 0)).astype(float),
        "cheaper": np.where(cheaper & np.isfinite(to_ref), to_ref, 0.0),
        "too_expensive": np.where(expensive & np.isfinite(to_median), to_median, 0.0),
    }
    out["has_constraint"] = (has_bound | cheaper | expensive).astype(float)
    return pd.DataFrame(out, index=rows.index)
