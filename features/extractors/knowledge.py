"""Knowledge features (KF) of K-DCN: entity-id sequences into the pretrained conversation
knowledge graph (CKG), for the user-state (eqs. 4-5) and dialogue-interaction (eqs. 6-8)
representations of the ``kdcn`` ranker.

Both kinds share one fitted resource: ``fit`` builds and pretrains the CKG once through
``ctx.resource_dir("ckg", ckg_params, build)``; two features with the same ``ckg`` block (the
defaults, or one YAML anchor ``ckg: &ckg {...}`` reused as ``ckg: *ckg``) land in the same
directory. The state is::

    {"ckg": "resources/ckg-<hash>",                       # graph + embeddings, relative to artifacts
     "vocab_sizes": {"ckg_entity": N},                      # pad + oov + entities
     "pretrained": {"ckg_entity": "resources/ckg-<hash>/entity_embeddings.npy"}}

Outputs (ragged id lists; the materialiser pads/truncates them to ``maxlen``):

* ``user_state``: one output per behaviour type (``behaviors``, default click / cart / favorite /
  purchase), e.g. ``user_state__click``: the CKG ids of the user's ``maxlen`` (20) most recent
  items of that type, most recent first (the behaviour log precedes the sessions).
* ``dialogue_keywords``: ``__query``, the ``query_len`` (m = 10) most salient keywords of the
  user's utterances before the recommendation turn (CKG keywords first, by tf in the context x
  IDF over sessions, then the most recent; tokens the graph does not know follow as OOV ids;
  ``query_source: preferences|both`` uses the preference words instead / as well) and ``__title``,
  the ``title_len`` (n = 10) top TF-IDF keywords of the candidate's title, known ones first.

Every output is of kind ``ids`` in the shared vocabulary ``ckg_entity`` (0 = pad, 1 = OOV), so
the materialiser attaches the pretrained matrix as ``FeatureSpace.pretrained["ckg_entity"]``
(``load_pretrained`` reads it for callers outside the pipeline). Users, items and keywords that
the graph has not seen map to the OOV id; a user without behaviours gets an all-padding row.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field

from features.extractors.interactive import warm_title_tokens
from features.kg.graph import CKG, OOV_ID, _token_rows
from features.kg.pretrain import ENTITY_FILE, CKGParams, build_and_pretrain
from features.registry import KindParams, OutputColumn, register

VOCAB = "ckg_entity"
DEFAULT_BEHAVIORS = ["click", "cart", "favorite", "purchase"]


# -- the shared CKG resource ------------------------------------------------------------------------------
class _KFParams(KindParams):
    ckg: CKGParams = Field(default_factory=CKGParams)  # graph construction + pretraining (shared resource)


def fit_ckg(ctx, ckg: CKGParams) -> dict:
    """Build + pretrain the CKG of ``ctx.corpus`` once (shared resource); returns the KF state."""
    params = ckg.model_dump(mode="json")
    log = print if getattr(ctx, "show_progress", False) else None

    def build(tmp: Path) -> None:
        build_and_pretrain(ctx.corpus, tmp, ckg, tokenizer=ctx.tokenizer, log=log)

    rel = ctx.resource_dir("ckg", params, build)
    g = load_ckg(ctx.path(rel))
    return {"ckg": rel, "vocab_sizes": {VOCAB: g.num_entities}, "pretrained": {VOCAB: f"{rel}/{ENTITY_FILE}"}}


def _ckg_dir(ctx_or_artifacts, state: dict) -> Path:
    base = getattr(ctx_or_artifacts, "artifacts", ctx_or_artifacts)
    return Path(base) / state["ckg"]


@lru_cache(maxsize=4)
def _load_ckg_cached(path: str, mtime: float) -> CKG:
    return CKG.load(path)


def load_ckg(path: str | Path) -> CKG:
    """The saved CKG at ``path`` (memoised per directory and modification time)."""
    p = Path(path)
    return _load_ckg_cached(str(p.resolve()), (p / "entities.json").stat().st_mtime)


def load_pretrained(ctx_or_artifacts_dir, state: dict) -> np.ndarray:
    """Pretrained ``ckg_entity`` matrix ``(vocab_size, dim)`` float32 of a fitted KF state (rows 0/1
    zero). ``ctx_or_artifacts_dir``: a FeatureContext or the artifacts directory the state's
    relative paths start from."""
    return np.load(_ckg_dir(ctx_or_artifacts_dir, state) / ENTITY_FILE).astype(np.float32)


def _graph(ctx, state: dict) -> CKG:
    return load_ckg(_ckg_dir(ctx, state))


def _lists_for(keys: pd.Series, table: pd.DataFrame, key: str, value: str) -> pd.Series:
    """Per row of ``keys``: the list of ``value`` of ``table`` rows with that key (table order), [] if none."""
    if len(table):
        grouped = table.groupby(key, sort=False)[value].agg(list)
        out = keys.map(grouped)
    else:
        out = pd.Series([None] * len(keys), index=keys.index, dtype=object)
    return out.map(lambda v: v if isinstance(v, list) else [])


# -- user_state ----------------------------------------------------------------------------------------------
class UserStateParams(_KFParams):
    behaviors: list[str] = Field(default_factory=lambda: list(DEFAULT_BEHAVIORS))  # the k behaviour types
    maxlen: int = 20  # most recent items per behaviour type


def _user_state_outputs(p: UserStateParams, state: dict) -> list[OutputColumn]:
    return [OutputColumn(b, "ids", vocab=VOCAB, maxlen=p.maxlen) for b in p.behaviors]


def _fit_user_state(ctx, p: UserStateParams) -> dict:
    return fit_ckg(ctx, p.ckg)


@register("user_state", params=UserStateParams, outputs=_user_state_outputs, fit=_fit_user_state)
def user_state(rows: pd.DataFrame, ctx, p: UserStateParams, state: dict) -> pd.DataFrame:
    """K-DCN user state: CKG entity ids of the user's most recent items per behaviour type (eq. 4)."""
    g = _graph(ctx, state)
    b = ctx.corpus.behaviors
    users = pd.unique(rows["user_id"])
    wanted = {x.lower(): x for x in p.behaviors}
    b = b[b["user_id"].isin(users)].assign(btype=lambda d: d["type"].astype(str).str.lower())
    b = b[b["btype"].isin(list(wanted))]
    b = b.sort_values(["user_id", "btype", "ts"], ascending=[True, True, False], kind="stable")
    b = b.groupby(["user_id", "btype"], sort=False).head(p.maxlen)
    b = b.assign(eid=g.lookup("item:" + b["item_id"].astype(str)).to_numpy())
    out = pd.DataFrame(index=rows.index)
    for low, name in wanted.items():
        out[name] = _lists_for(rows["user_id"], b[b["btype"] == low], "user_id", "eid")
    return out


# -- dialogue_keywords -------------------------------------------------------------------------------------------
class DialogueKeywordsParams(_KFParams):
    query_len: int = 10  # m: keywords of the user's utterances before the recommendation turn
    title_len: int = 10  # n: keywords of the candidate's title
    query_source: Literal["utterances", "preferences", "both"] = "utterances"


def _dialogue_outputs(p: DialogueKeywordsParams, state: dict) -> list[OutputColumn]:
    return [OutputColumn("query", "ids", vocab=VOCAB, maxlen=p.query_len),
            OutputColumn("title", "ids", vocab=VOCAB, maxlen=p.title_len)]


def _fit_dialogue(ctx, p: DialogueKeywordsParams) -> dict:
    return fit_ckg(ctx, p.ckg)


def _rank_keywords(tok: pd.DataFrame, doc: str, g: CKG, idf: dict[str, float], stop: set[str], k: int,
                   order_col: str | None = None) -> pd.DataFrame:
    """Top-k keywords per document: CKG keywords first, by tf * idf, then recency/position, then the
    token itself; tokens the graph does not know follow (they become OOV ids)."""
    tok = tok[~tok["token"].isin(stop)]
    if not len(tok):
        return pd.DataFrame({doc: [], "eid": []})
    agg = {"tf": ("token", "size")}
    if order_col:
        agg["recent"] = (order_col, "max")
    a = tok.groupby([doc, "token"], sort=False).agg(**agg).reset_index()
    default_idf = max(idf.values()) if idf else 1.0
    a["eid"] = g.lookup("keyword:" + a["token"]).to_numpy()
    a["known"] = a["eid"] != OOV_ID
    a["score"] = a["tf"].to_numpy() * a["token"].map(idf).fillna(default_idf).to_numpy()
    keys = [doc, "known", "score"] + (["recent"] if order_col else []) + ["token"]
    asc = [True, False, False] + ([False] if order_col else []) + [True]
    a = a.sort_values(keys, ascending=asc, kind="stable")
    return a.groupby(doc, sort=False).head(k)[[doc, "eid"]]


@register("dialogue_keywords", params=DialogueKeywordsParams, outputs=_dialogue_outputs, fit=_fit_dialogue,
          warm=warm_title_tokens)
def dialogue_keywords(rows: pd.DataFrame, ctx, p: DialogueKeywordsParams, state: dict) -> pd.DataFrame:
    """K-DCN dialogue interaction: CKG keyword ids of the user's query and of the candidate title (eqs. 6-8)."""
    g = _graph(ctx, state)
    tokenizer = ctx.tokenizer
    samples = pd.unique(rows["sample_id"])
    parts = []
    if p.query_source in ("utterances", "both"):
        ct = ctx.context_turns
        roles = {r.lower() for r in p.ckg.user_roles}
        ct = ct[ct["sample_id"].isin(samples) & ct["role"].astype(str).str.lower().isin(roles)]
        parts.append(_token_rows(tokenizer, ct[["sample_id", "turn_idx"]], ct["text"]))
    if p.query_source in ("preferences", "both"):
        pr = ctx.preferences
        pr = pr[pr["sample_id"].isin(samples)]
        parts.append(_token_rows(tokenizer, pr[["sample_id", "turn_idx"]], pr["text"]))
    qtok = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"sample_id": [], "turn_idx": [], "token": []})
    q = _rank_keywords(qtok, "sample_id", g, g.keyword_idf, set(g.stopwords), p.query_len, order_col="turn_idx")

    items = ctx.corpus.items
    cand = pd.unique(rows["item_id"])
    it = items[items["item_id"].isin(cand)].dropna(subset=["title"]).drop_duplicates("item_id")
    ttok = _token_rows(tokenizer, it[["item_id"]], it["title"])
    ttok["pos"] = -ttok.groupby("item_id").cumcount()  # earlier in the title = more recent rank
    t = _rank_keywords(ttok, "item_id", g, g.title_idf, set(g.title_stopwords), p.title_len, order_col="pos")

    out = pd.DataFrame(index=rows.index)
    out["query"] = _lists_for(rows["sample_id"], q, "sample_id", "eid")
    out["title"] = _lists_for(rows["item_id"], t, "item_id", "eid")
    return out
