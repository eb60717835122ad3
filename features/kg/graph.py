"""Conversation knowledge graph (CKG) of K-DCN, section III-A-1, built from a Corpus.

Triple types (the paper's nine, plus two documented additions)::

    relation name                     paper triple                 source
    user.has.user_tag                 (user, has, user_tag)        users: profile fields
    item.belong_to.category           (item, belong_to, category)  items.category
    seller.has.item                   (seller, has, item)          items.shop_id
    item.has.value                    (item, has, value)           item_attrs
    property.has.value                (property, has, value)       item_attrs
    user.created.session              (user, created, session)     sessions
    session.relate_to.seller          (session, relate_to, seller) sessions.shop_id
    session.has.intention             (session, has, intention)    turns.intent (user turns)
    intention.has.keyword             (intention, has, keyword)    user utterances, TF-IDF top-k
    item.has_title_word.keyword       -- addition --               item titles, TF-IDF top-k
    intention.is_a.intent             -- addition --               (only when intention_scope="session")

Entities are typed strings ``"<type>:<name>"``:

* ``user:U1``, ``item:I9``, ``seller:S3``, ``session:D7``, ``category:手机``
* ``user_tag:sex=男``; numeric profile fields are cut into ``numeric_buckets`` quantile buckets,
  ``user_tag:age=q2`` (bucket 2 of 0..n-1); list-valued fields give one tag per element.
* ``property:颜色`` and ``value:颜色=黑色``: values are qualified by their property, so "黑色" of
  colour and of some other property stay apart; (property, has, value) then is the attribute tree.
  Values held by fewer than ``min_value_count`` distinct items are dropped (the paper drops
  attributes rarer than 5000 occurrences at billion scale).
* ``intention:D7|ask_attr``: by default an intention is the (session, intent label) pair, so that
  (session, has, intention) and (intention, has, keyword) keep which keywords the user said with
  which intent in which session; (intention, is_a, intent:ask_attr) keeps the label itself.
  ``intention_scope="global"`` makes intentions the bare labels (``intention:ask_attr``), exactly
  five hub nodes, and drops the is_a triples.
* ``keyword:拍照``: keywords of user utterances (jieba with the E-comm dictionary, the top
  ``keywords_per_session`` tokens of each session by TF-IDF) and of item titles (top
  ``title_keywords`` per title). Title keywords are linked with (item, has_title_word, keyword) so
  every title keyword of the dialogue-interaction representation (eqs. 6-8) has a trained entity
  embedding, and query keywords and title keywords share one entity space.

Only the dialogue context the ranker may see enters the graph (``conversation_turns="context"``):
for a session with samples, user turns before its last sample's recommendation turn; sessions
without samples contribute all their user turns. No label (purchased item) and no linked item of
a turn is used.

Ids: entity 0 = ``<pad>``, 1 = ``<oov>``, real entities from 2 grouped by type (in the order of
``ENTITY_TYPES``) and sorted by name within a type, so entity ids go straight into a FeatureSpace
sequence field and the same corpus always gives the same ids. Relations are numbered from 0.
Triples are distinct and sorted by (relation, head, tail).

Construction is vectorised: names are numbered per type with one factorize each, triples stay
integer arrays, and every distinct text is tokenised once (the full-scale corpus, 3.7M triples,
builds in ~7-14 s once jieba has segmented the texts, ~30 s from cold; see
``benchmarks/bench_kg.py``).

On disk (``CKG.save``): ``triples.parquet`` (head, relation, tail: int32), ``entities.json``,
``relations.json``, ``keywords.json`` (IDF of the utterance and title keywords and the stop lists,
used to pick the most salient keywords at scoring time) and ``meta.json`` (params, counts, build
time). ``python -m features.kg.graph stats DIR`` prints entity and triple counts by type (DIR may
also be a feature-pipeline store: the CKG resource inside is found); ``python -m
features.kg.graph build CORPUS_DIR OUT_DIR`` builds one from a corpus directory.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

PAD, OOV = "<pad>", "<oov>"
PAD_ID, OOV_ID = 0, 1

# Entity types in id order.
ENTITY_TYPES = (
    "user", "user_tag", "item", "category", "seller", "property", "value",
    "session", "intention", "intent", "keyword",
)
RELATIONS = (
    "user.has.user_tag",
    "item.belong_to.category",
    "seller.has.item",
    "item.has.value",
    "property.has.value",
    "user.created.session",
    "session.relate_to.seller",
    "session.has.intention",
    "intention.has.keyword",
    "item.has_title_word.keyword",
    "intention.is_a.intent",
)

# Small Chinese + English function-word list; document-frequency filtering catches the rest.
STOPWORDS = frozenset(
    """
    的 了 吗 呢 吧 啊 呀 哦 嗯 么 和 与 及 或 是 在 有 没有 我 你 他 她 它 我们 你们 他们 这 那 这个 那个 这款 那款
    什么 怎么 怎么样 多少 哪个 哪些 可以 能 能不能 不能 要 想 想要 需要 一下 一个 一款 还 还是 就 都 也 又 很 太 更
    比较 非常 吗? 请问 您好 你好 谢谢 好的 好 嗯嗯 亲 客服 有没有 是不是 会 会不会 不 不是 给 用 让 把 被 从 到 对
    and the a an of to for with in on is are it this that
    """.split()
)
_CJK = re.compile(r"[\u4e00-\u9fff]")
_HAS_ALNUM_OR_CJK = re.compile(r"[0-9a-z\u4e00-\u9fff]")


class GraphParams(BaseModel):
    """CKG construction parameters (part of the shared ``ckg`` parameter block)."""

    model_config = ConfigDict(extra="forbid")

    min_value_count: int = 3  # drop attribute values held by fewer distinct items
    numeric_buckets: int = 5  # quantile buckets of numeric profile fields
    keywords_per_session: int = 10  # TF-IDF top-k keywords of a session's user utterances
    title_keywords: int = 10  # TF-IDF top-k keywords of an item title
    min_keyword_df: int = 2  # a keyword must occur in at least this many documents (sessions + titles)
    max_keyword_df: float = 0.2  # ... and in at most this fraction of sessions (or titles): stop words
    intention_scope: Literal["session", "global"] = "session"
    conversation_turns: Literal["context", "all"] = "context"
    user_roles: list[str] = ["user", "customer", "buyer", "q"]  # turns.role values of the user (lower case)


# -- keyword filtering ------------------------------------------------------------------------------
def is_keyword_token(tok: str) -> bool:
    """Candidate keyword: not a stop word, has a letter/digit/CJK char, CJK tokens of >= 2 chars,
    latin/digit tokens of >= 2 chars."""
    if not tok or tok in STOPWORDS or not _HAS_ALNUM_OR_CJK.search(tok):
        return False
    return len(tok) >= 2


_KW_CACHE: dict[str, bool] = {}


def _keyword_filter(tokens: tuple[str, ...]) -> list[str]:
    cache = _KW_CACHE
    out = []
    for t in tokens:
        ok = cache.get(t)
        if ok is None:
            ok = cache[t] = is_keyword_token(t)
        if ok:
            out.append(t)
    return out


def _token_rows(tokenizer, keys: pd.DataFrame, texts: pd.Series) -> pd.DataFrame:
    """Long table: the columns of ``keys`` repeated per candidate keyword token of ``texts``
    (tokenised and filtered once per distinct text; rows in input order, tokens in text order)."""
    codes, uniq = pd.factorize(texts.fillna("").astype(str).to_numpy(dtype=object))
    filt = [_keyword_filter(tokenizer.tokenize(t)) for t in uniq]
    lens = np.fromiter((len(f) for f in filt), np.int64, len(filt))
    flat = np.array([t for f in filt for t in f], dtype=object)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    rl = lens[codes] if len(codes) else np.zeros(0, np.int64)
    row = np.repeat(np.arange(len(codes)), rl)
    within = np.arange(int(rl.sum())) - np.repeat(np.cumsum(rl) - rl, rl)
    df = keys.iloc[row].reset_index(drop=True)
    df["token"] = pd.Series(flat[np.repeat(starts[codes], rl) + within] if len(row) else np.zeros(0, object),
                            dtype=object).astype(str)
    return df


def _tfidf_topk(doc_tokens: pd.DataFrame, doc: str, k: int, idf: pd.Series) -> pd.DataFrame:
    """(doc, token) pairs of the top-k tokens of each document by tf * idf (ties: token order)."""
    tf = doc_tokens.groupby([doc, "token"], sort=False).size().rename("tf").reset_index()
    tf = tf[tf["token"].isin(idf.index)]
    tf["score"] = tf["tf"].to_numpy() * idf.reindex(tf["token"]).to_numpy()
    tf = tf.sort_values([doc, "score", "token"], ascending=[True, False, True], kind="stable")
    return tf.groupby(doc, sort=False).head(k)[[doc, "token"]].reset_index(drop=True)


def _idf(doc_tokens: pd.DataFrame, doc: str) -> tuple[pd.Series, pd.Series, int]:
    """Document frequency and smoothed IDF (sklearn's formula) of each token."""
    n = int(doc_tokens[doc].nunique())
    df = _distinct(doc_tokens, [doc, "token"])["token"].value_counts()
    idf = np.log((1.0 + n) / (1.0 + df.astype(float))) + 1.0
    return df, idf, n


# -- the graph --------------------------------------------------------------------------------------
@dataclass
class CKG:
    entities: list[str]  # index = entity id; 0/1 = pad/oov
    relations: list[str]  # index = relation id
    triples: pd.DataFrame  # head, relation, tail (int32)
    keyword_idf: dict[str, float] = field(default_factory=dict)  # utterance keyword -> IDF over sessions
    stopwords: list[str] = field(default_factory=list)  # high-document-frequency tokens of utterances
    meta: dict = field(default_factory=dict)
    title_idf: dict[str, float] = field(default_factory=dict)  # title keyword -> IDF over titles
    title_stopwords: list[str] = field(default_factory=list)  # high-document-frequency tokens of titles

    @cached_property
    def entity_index(self) -> dict[str, int]:
        return {e: i for i, e in enumerate(self.entities)}

    @cached_property
    def name_index(self) -> pd.Index:
        return pd.Index(self.entities, dtype=object)

    @property
    def num_entities(self) -> int:
        """Vocabulary size, pad and oov included."""
        return len(self.entities)

    def ids(self, names: Iterable[str]) -> np.ndarray:
        """Entity ids of typed names; unknown names -> OOV (1)."""
        idx = self.entity_index
        return np.fromiter((idx.get(n, OOV_ID) for n in names), dtype=np.int32)

    def lookup(self, names: pd.Series) -> pd.Series:
        """Vectorised ``ids`` for a Series of typed names (unknown/missing -> OOV)."""
        ids = self.name_index.get_indexer(names.astype(object).to_numpy())
        ids[ids < 2] = OOV_ID  # unknown (-1), and never PAD/OOV by name
        return pd.Series(ids.astype(np.int32), index=names.index)

    def entity_types(self) -> np.ndarray:
        """Type name of every entity id (``pad``/``oov`` for 0/1)."""
        return np.array(["pad", "oov"] + [e.split(":", 1)[0] for e in self.entities[2:]], dtype=object)

    def stats(self) -> dict:
        types = pd.Series(self.entity_types()[2:]).value_counts()
        rel = self.triples["relation"].value_counts()
        return {
            "entities": int(self.num_entities - 2),
            "triples": int(len(self.triples)),
            "entities_by_type": {t: int(types.get(t, 0)) for t in ENTITY_TYPES if types.get(t, 0)},
            "triples_by_relation": {self.relations[r]: int(c) for r, c in sorted(rel.items())},
        }

    # -- persistence ------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.triples.astype(np.int32).to_parquet(d / "triples.parquet", index=False)
        (d / "entities.json").write_text(json.dumps(self.entities, ensure_ascii=False))
        (d / "relations.json").write_text(json.dumps(self.relations, ensure_ascii=False))
        (d / "keywords.json").write_text(
            json.dumps({"idf": self.keyword_idf, "stopwords": self.stopwords, "title_idf": self.title_idf,
                        "title_stopwords": self.title_stopwords}, ensure_ascii=False)
        )
        (d / "meta.json").write_text(json.dumps({**self.meta, "stats": self.stats()}, indent=1, ensure_ascii=False))

    @classmethod
    def load(cls, directory: str | Path) -> "CKG":
        d = Path(directory)
        kw = json.loads((d / "keywords.json").read_text()) if (d / "keywords.json").exists() else {}
        meta = json.loads((d / "meta.json").read_text()) if (d / "meta.json").exists() else {}
        return cls(
            entities=json.loads((d / "entities.json").read_text()),
            relations=json.loads((d / "relations.json").read_text()),
            triples=pd.read_parquet(d / "triples.parquet").astype(np.int32),
            keyword_idf=kw.get("idf", {}),
            stopwords=kw.get("stopwords", []),
            meta=meta,
            title_idf=kw.get("title_idf", {}),
            title_stopwords=kw.get("title_stopwords", []),
        )


# -- construction -----------------------------------------------------------------------------------
def _is_missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return False


def _str(col: pd.Series) -> pd.Series:
    return col.astype(str).str.strip()


def _user_tags(users: pd.DataFrame, p: GraphParams) -> tuple[pd.Series, pd.Series]:
    """(user_id, "field=value") pairs of the profile fields."""
    users_s = users["user_id"].astype(str).reset_index(drop=True)
    hs, ts = [], []
    for c in [c for c in users.columns if c != "user_id"]:
        col = users[c].reset_index(drop=True)
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            x = col.astype(float)
            ok = x.notna().to_numpy()
            if not ok.any():
                continue
            edges = np.unique(np.nanquantile(x[ok], np.linspace(0, 1, p.numeric_buckets + 1)[1:-1]))
            b = np.searchsorted(edges, x[ok].to_numpy(), side="right")
            hs.append(users_s[ok])
            ts.append(pd.Series(b).astype(str).radd(f"{c}=q"))
            continue
        if col.dtype == object:  # may hold lists: one tag per element
            df = pd.DataFrame({"h": users_s, "v": col}).explode("v")
            df = df[~df["v"].map(_is_missing)]
            h, v = df["h"], _str(df["v"])
        else:
            ok = col.notna().to_numpy()
            h, v = users_s[ok], _str(col[ok])
        keep = (v.str.len() > 0).to_numpy()
        hs.append(h[keep])
        ts.append(v[keep].radd(f"{c}="))
    if not hs:
        return pd.Series([], dtype=str), pd.Series([], dtype=str)
    return pd.concat(hs, ignore_index=True), pd.concat(ts, ignore_index=True)


def _context_user_turns(corpus, p: GraphParams) -> pd.DataFrame:
    t = corpus.turns
    t = t[t["role"].astype(str).str.lower().isin([r.lower() for r in p.user_roles])]
    if p.conversation_turns == "context" and len(corpus.samples):
        last = corpus.samples.groupby("session_id")["turn"].max()
        lim = t["session_id"].map(last)
        t = t[lim.isna() | (t["turn_idx"] < lim)]
    return t[["session_id", "turn_idx", "text", "intent"]].reset_index(drop=True)


class _Builder:
    """Collects (relation, head type, head names, tail type, tail names) and numbers the entities
    per type (sorted names), so no typed name string is built per triple."""

    def __init__(self):
        self.parts: list[tuple[str, str, pd.Series, str, pd.Series]] = []

    def add(self, rel: str, h, t) -> None:
        htype, _, ttype = rel.split(".")
        h = pd.Series(h).astype(str).reset_index(drop=True)
        t = pd.Series(t).astype(str).reset_index(drop=True)
        if len(h):
            self.parts.append((rel, htype, h, ttype, t))

    def finish(self) -> tuple[list[str], list[str], pd.DataFrame]:
        by_type: dict[str, list[pd.Series]] = {}
        for _, ht, h, tt, t in self.parts:
            by_type.setdefault(ht, []).append(h)
            by_type.setdefault(tt, []).append(t)
        entities = [PAD, OOV]
        codes_of: dict[int, np.ndarray] = {}  # id(series) -> entity ids
        for typ in ENTITY_TYPES:
            if typ not in by_type:
                continue
            series = by_type[typ]
            codes, uniq = pd.factorize(pd.concat(series, ignore_index=True))
            names = np.asarray(uniq, dtype=object)
            order = np.argsort(names, kind="stable")
            rank = np.empty(len(order), np.int64)
            rank[order] = np.arange(len(order))
            ids = rank[codes] + len(entities)
            entities.extend(f"{typ}:{n}" for n in names[order])
            start = 0
            for ser in series:
                codes_of[id(ser)] = ids[start: start + len(ser)]
                start += len(ser)
        rels = [r for r in RELATIONS if any(p[0] == r for p in self.parts)]
        rel_id = {r: i for i, r in enumerate(rels)}
        heads, tails, rids = [], [], []
        for rel, _, h, _, t in self.parts:
            heads.append(codes_of[id(h)])
            tails.append(codes_of[id(t)])
            rids.append(np.full(len(h), rel_id[rel], np.int64))
        if heads:
            h, r, t = (np.concatenate(a) for a in (heads, rids, tails))
            n = max(len(entities), 1)
            key = (r * n + h) * n + t  # < 2^63 for up to ~2M entities x 11 relations
            _, first = np.unique(key, return_index=True)  # sorted by (relation, head, tail)
            triples = pd.DataFrame({"head": h[first].astype(np.int32), "relation": r[first].astype(np.int32),
                                    "tail": t[first].astype(np.int32)})
        else:
            triples = pd.DataFrame({"head": [], "relation": [], "tail": []}, dtype=np.int32)
        return entities, rels, triples


def _distinct(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """``df.drop_duplicates(cols)`` through integer codes (keeps first occurrences, in order)."""
    key = np.zeros(len(df), np.int64)
    for c in cols:
        codes, uniq = pd.factorize(df[c])
        key = key * (len(uniq) + 1) + codes
    _, first = np.unique(key, return_index=True)
    return df.iloc[np.sort(first)]


def build_ckg(corpus, params: GraphParams | dict | None = None, tokenizer=None) -> CKG:
    """Build the CKG of ``corpus`` (vectorised; see the module docstring for the schema)."""
    p = params if isinstance(params, GraphParams) else GraphParams(**(params or {}))
    t0 = time.perf_counter()
    if tokenizer is None:
        from features.text import tokenizer_for

        tokenizer = tokenizer_for(corpus.items, corpus.item_attrs)
    b = _Builder()

    # users
    uh, ut_ = _user_tags(corpus.users, p)
    b.add("user.has.user_tag", uh, ut_)

    # items
    items = corpus.items
    ok = items["category"].notna().to_numpy()
    b.add("item.belong_to.category", items.loc[ok, "item_id"], _str(items.loc[ok, "category"]))
    ok = items["shop_id"].notna().to_numpy()
    b.add("seller.has.item", items.loc[ok, "shop_id"], items.loc[ok, "item_id"])

    attrs = corpus.item_attrs.dropna(subset=["name", "value"])
    name = _str(attrs["name"])
    av = pd.DataFrame({"item": attrs["item_id"].astype(str).to_numpy(), "name": name.to_numpy(),
                       "key": (name + "=" + _str(attrs["value"])).to_numpy()})
    av = _distinct(av, ["item", "key"])
    kcodes, _ = pd.factorize(av["key"])
    av = av[np.bincount(kcodes)[kcodes] >= p.min_value_count]  # distinct items holding the value
    b.add("item.has.value", av["item"], av["key"])
    pv = _distinct(av, ["key"])
    b.add("property.has.value", pv["name"], pv["key"])

    # sessions
    s = corpus.sessions
    ok = s["user_id"].notna().to_numpy()
    b.add("user.created.session", s.loc[ok, "user_id"], s.loc[ok, "session_id"])
    ok = s["shop_id"].notna().to_numpy()
    b.add("session.relate_to.seller", s.loc[ok, "session_id"], s.loc[ok, "shop_id"])

    # conversation: intentions and keywords
    ut = _context_user_turns(corpus, p)
    ut["intent"] = ut["intent"].where(ut["intent"].notna(), "unknown").astype(str)
    ut["session_id"] = ut["session_id"].astype(str)
    ut["intention"] = (ut["session_id"] + "|" + ut["intent"]) if p.intention_scope == "session" else ut["intent"]
    si = _distinct(ut, ["session_id", "intention"])
    b.add("session.has.intention", si["session_id"], si["intention"])
    if p.intention_scope == "session":
        b.add("intention.is_a.intent", si["intention"], si["intent"])

    utok = _token_rows(tokenizer, ut[["session_id", "intention"]], ut["text"])
    titles = items[["item_id", "title"]].dropna(subset=["title"])
    ttok = _token_rows(tokenizer, pd.DataFrame({"item": titles["item_id"].astype(str).to_numpy()}), titles["title"])

    s_df, s_idf, n_sess = _idf(utok, "session_id")
    t_df, t_idf, n_titles = _idf(ttok, "item")
    total_df = s_df.add(t_df, fill_value=0)
    s_stop = set(s_df.index[s_df > p.max_keyword_df * max(n_sess, 1)]) if n_sess >= 20 else set()
    t_stop = set(t_df.index[t_df > p.max_keyword_df * max(n_titles, 1)]) if n_titles >= 20 else set()
    frequent = set(total_df.index[total_df >= p.min_keyword_df])
    s_keep = s_idf[s_idf.index.isin(frequent) & ~s_idf.index.isin(s_stop)]
    t_keep = t_idf[t_idf.index.isin(frequent) & ~t_idf.index.isin(t_stop)]

    top_s = _tfidf_topk(utok, "session_id", p.keywords_per_session, s_keep)
    ik = _distinct(utok.merge(top_s, on=["session_id", "token"], how="inner"), ["intention", "token"])
    b.add("intention.has.keyword", ik["intention"], ik["token"])
    top_t = _tfidf_topk(ttok, "item", p.title_keywords, t_keep)
    b.add("item.has_title_word.keyword", top_t["item"], top_t["token"])

    entities, relations, triples = b.finish()
    kw_entities = {e[8:] for e in entities if e.startswith("keyword:")}
    kidf = {k: float(v) for k, v in s_keep.items() if k in kw_entities}
    tidf = {k: float(v) for k, v in t_keep.items() if k in kw_entities}
    meta = {
        "params": p.model_dump(mode="json"),
        "build_seconds": round(time.perf_counter() - t0, 3),
        "n_sessions_with_keywords": n_sess,
        "n_titles": n_titles,
    }
    return CKG(entities, relations, triples, kidf, sorted(s_stop), meta, tidf, sorted(t_stop))


# -- CLI --------------------------------------------------------------------------------------------
def format_stats(st: dict) -> str:
    lines = [f"entities: {st['entities']:,}   triples: {st['triples']:,}", "", "entities by type:"]
    lines += [f"  {k:<12} {v:>12,}" for k, v in st["entities_by_type"].items()]
    lines += ["", "triples by relation:"]
    lines += [f"  {k:<30} {v:>12,}" for k, v in st["triples_by_relation"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m features.kg.graph", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("stats", help="entity and triple counts by type of a saved CKG")
    a.add_argument("dir")
    a.add_argument("--json", action="store_true")
    b = sub.add_parser("build", help="build the CKG of a corpus directory into OUT")
    b.add_argument("corpus")
    b.add_argument("out")
    b.add_argument("--min-value-count", type=int, default=GraphParams().min_value_count)
    args = ap.parse_args(argv)
    if args.cmd == "stats":
        d = Path(args.dir)
        if not (d / "triples.parquet").exists():  # a feature artefact dir: find the ckg resource in it
            found = sorted(d.glob("**/triples.parquet"))
            if not found:
                print(f"no CKG (triples.parquet) under {d}", file=sys.stderr)
                return 2
            d = found[-1].parent
        st = CKG.load(d).stats()
        print(json.dumps(st, indent=1, ensure_ascii=False) if args.json else format_stats(st))
        return 0
    from core.corpus import load_corpus  # type: ignore[attr-defined]

    corpus = load_corpus(args.corpus)
    g = build_ckg(corpus, GraphParams(min_value_count=args.min_value_count))
    g.save(args.out)
    print(format_stats(g.stats()))
    print(f"built in {g.meta['build_seconds']:.1f}s -> {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
