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

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.extractors.basic import row_prices
from features.frames import column_values, factorize_values, id_positions, numeric_frame, row_codes
from features.registry import KindParams, OutputColumn, register
from features.text import normalise_text

# An upper bound on price: "低于3000", "不超过3000", "3000以内", "3000元以内" (not "200g以内").
_UPPER = re.compile(r"(?:低于|不超过|小于|不高于|不要超过)\s*(?P<a>\d+(?:\.\d+)?)\s*(?:元|块)?(?![a-z0-9])"
                    r"|(?P<b>\d+(?:\.\d+)?)\s*(?:元|块)?\s*(?:以内|以下|之内)")
_CHEAPER = re.compile(r"便宜|实惠|划算")
_TOO_EXPENSIVE = re.compile(r"太贵|贵了|别.*贵")


class ConstraintParams(KindParams):
    transform: str = "none"  # log ratios and flags, already on a small scale


@dataclass(frozen=True)
class _PerSample:
    """Per sample of ``ctx.corpus.samples`` (its order) plus a last entry for a sample it lacks
    (position -1): ``bound`` (tightest stated upper bound, NaN = none), ``cheaper`` / ``expensive``
    (a 便宜一点 / 别太贵 was said), ``ref_price`` (mean price of the items of the last linking turn)."""

    ids: np.ndarray
    bound: np.ndarray
    cheaper: np.ndarray
    expensive: np.ndarray
    ref_price: np.ndarray


def _text_matches(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per text: ``code`` of its distinct text (-1 = missing), and per distinct text (normalised) the
    upper bound it states (NaN = none), whether it asks for cheaper, whether it says too expensive.
    Each distinct text is read once per process (``_READINGS``: a live chat re-sends its earlier turns,
    and a sample's context repeats its earlier turns' words)."""
    code, uniq = factorize_values(texts, use_na_sentinel=True)
    uniq = [str(t) for t in uniq.tolist()]
    new = [t for t in uniq if t not in _READINGS]
    if new:
        if len(_READINGS) + len(new) > _READINGS_MAX:
            _READINGS.clear()
        _READINGS.update(zip(new, _read_texts(new)))
    readings = [_READINGS[t] for t in uniq]
    bound = np.fromiter((r[0] for r in readings), float, len(uniq))
    cheaper = np.fromiter((r[1] for r in readings), bool, len(uniq))
    expensive = np.fromiter((r[2] for r in readings), bool, len(uniq))
    return code, bound, cheaper, expensive


def _read_texts(texts: list[str]) -> list[tuple[float, bool, bool]]:
    """Per text (normalised): the upper bound it states (NaN = none), whether it asks for cheaper,
    whether it says too expensive."""
    norm = [normalise_text(t) for t in texts]
    ub = [_UPPER.search(t) for t in norm]
    bound = np.full(len(norm), np.nan)
    said = [k for k, m in enumerate(ub) if m is not None]
    if said:  # numbers as pd.to_numeric reads them
        bound[said] = pd.to_numeric(np.array([ub[k]["a"] or ub[k]["b"] for k in said], dtype=object),
                                    errors="coerce").astype(float)
    return [(b, _CHEAPER.search(t) is not None, _TOO_EXPENSIVE.search(t) is not None)
            for b, t in zip(bound.tolist(), norm)]


_READINGS: dict[str, tuple[float, bool, bool]] = {}  # ``_read_texts`` of each text read so far
_READINGS_MAX = 200_000


def _per_sample(ctx) -> _PerSample:
    ids = ctx.column("samples", "sample_id")
    n = len(ids) + 1  # the last entry: a sample not in the corpus
    words = ctx.preference_words  # (the rows of ctx.preferences, without the table)
    at = ctx.context_rows[1][words.turn]  # each word's sample
    code, text_bound, text_cheaper, text_expensive = _text_matches(words.text)
    said = code >= 0
    at, code = at[said], code[said]
    kind = words.type[said]
    comp, neg = kind == "comparative", kind == "negative"
    stated = comp & ~np.isnan(text_bound[code])
    bound = np.full(n, np.inf)
    np.minimum.at(bound, at[stated], text_bound[code[stated]])
    bound[bound == np.inf] = np.nan  # (an infinite bound reads as none either way: log(price / inf) is not finite)
    cheaper, expensive = np.zeros(n, bool), np.zeros(n, bool)
    cheaper[at[comp & text_cheaper[code]]] = True
    expensive[at[neg & text_expensive[code]]] = True
    # Price of the item(s) linked in the last linking turn before the recommendation turn.
    ti, si = ctx.before_sample(ctx.corpus.turn_items)
    turn_idx = ctx.column("turn_items", "turn_idx").astype(np.int64, copy=False)[ti]
    last = np.full(n, -1, np.int64)
    np.maximum.at(last, si, turn_idx)
    in_last = turn_idx == last[si]
    ti, si = ti[in_last], si[in_last]
    item_at = id_positions(ctx.column("items", "item_id"), ctx.column("turn_items", "item_id")[ti])
    price = np.where(item_at >= 0, column_values(ctx.corpus.items, "price", float)[item_at], np.nan)
    known = ~np.isnan(price)
    count = np.bincount(si[known], minlength=n)
    total = np.bincount(si[known], weights=price[known], minlength=n)
    ref = np.full(n, np.nan)
    has_link = np.zeros(n, bool)
    has_link[si] = True  # samples with a linking turn (their mean is NaN when no price is known)
    np.divide(total, count, out=ref, where=has_link & (count > 0))
    return _PerSample(ids, bound, cheaper, expensive, ref)


def _group_median(values: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Per element, the median of the non-NaN ``values`` of its group (NaN when none), as pandas'
    ``groupby(...).transform("median")``: the middle value, or the mean of the two middle ones."""
    if not len(values):
        return np.zeros(0)
    order = np.lexsort((values, group))  # NaN last within each group
    g, v = group[order], values[order]
    starts = np.flatnonzero(np.concatenate(([True], g[1:] != g[:-1])))
    valid = np.add.reduceat((~np.isnan(v)).astype(np.int64), starts)
    mid = starts + valid // 2
    median = np.where(valid % 2 == 1, v[mid], (v[mid - 1] + v[mid]) / 2)
    out = np.empty(len(values))
    out[order] = np.where(valid > 0, median, np.nan).repeat(np.diff(starts, append=len(v)))
    return out


@register(
    "price_constraint",
    params=ConstraintParams,
    outputs=[OutputColumn(k, "numeric") for k in ("", "violates", "cheaper", "too_expensive", "has_constraint")],
)
def price_constraint(rows: pd.DataFrame, ctx, p: ConstraintParams, state: dict) -> pd.DataFrame:
    """CF: the candidate's price against price bounds stated in the dialogue (以内/低于, 便宜一点, 别太贵)."""
    per = ctx.memo("cf.price_constraint", lambda: _per_sample(ctx))
    price = row_prices(rows, ctx)
    # per-sample values looked up once per sample, then spread over its rows by integer code
    codes = row_codes(rows, ctx)
    at = id_positions(per.ids, codes.samples)[codes.sample]  # -1: the last entry
    bound, cheaper, expensive, ref = per.bound[at], per.cheaper[at], per.expensive[at], per.ref_price[at]
    median = _group_median(price, codes.sample)
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
    return numeric_frame(out, rows.index)
