"""The serving path: a request's features computed incrementally, with the extractors of training.

A ranking request touches three kinds of feature:

* **item-side** (kinds in ``ITEM_KINDS``: item fields, attribute ids, popularity) depend on the
  candidate's record only: computed once per item, ahead of traffic (:meth:`ServingFeatures.prepare`,
  the run's catalogue at service start, ``PUT /items``) or on first sight, and cached under the key
  the caller gives the item (the catalogue id for an item of the run, a content hash for an inline one);
* **user-side** (``USER_KINDS``: profile fields, behaviour sequences) depend on the user's profile and
  behaviour log only: cached under the user's key;
* **dialogue-side** (every other kind: price against budget, mentions, similarities, preferences,
  price constraints, keywords, ``kind: python``) are computed per call over the candidate rows,
  vectorised, by the kind's own ``transform``; their text work is cached by text in the extractors'
  own caches (tokens per text in ``Tokenizer``, phrase vectors per phrase, sentence embeddings per
  text in ``EmbeddingCache``), so a turn encodes only its new utterances.

Every value comes from ``FeaturePipeline.raw_arrays`` (the kind's transform) and the fitted encoders of
``FeaturePipeline.encode``: the code of training, so a request scores exactly as in evaluation. The
caches hold encoded arrays, one row per key.
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from core.corpus import Corpus
from core.table import FeatureTable
from features.frames import ITEM_KEYS, ItemKeys, distinct_keys, isin, key_values, keys_of
from features.materialize import FeaturePipeline
from features.registry import get_kind
from features.spec import FeatureEntry

# Kinds whose outputs are a function of the candidate item's record alone ...
ITEM_KINDS = frozenset({"item_field", "item_attributes", "item_popularity"})
# ... and of the user's profile and behaviour log alone.
USER_KINDS = frozenset({"user_profile", "user_state"})


class KeyedArrays:
    """Encoded feature arrays with one row per key (an item or a user), grown as keys arrive."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self._arrays: dict[str, np.ndarray] = {}  # column -> (capacity, ...) array; rows [0, len) are used

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, key: str) -> bool:
        return key in self.index

    def add(self, keys: list[str], arrays: Mapping[str, np.ndarray]) -> None:
        """Store (or replace) the rows of ``keys``; ``arrays[col][i]`` belongs to ``keys[i]``."""
        new = [k for k in dict.fromkeys(keys) if k not in self.index]
        for k in new:
            self.index[k] = len(self.index)
        pos = np.fromiter((self.index[k] for k in keys), np.int64, len(keys))
        for col, values in arrays.items():
            buf = self._arrays.get(col)
            if buf is None or len(buf) < len(self.index):
                grown = np.zeros((max(2 * len(self.index), 64),) + values.shape[1:], values.dtype)
                if buf is not None:
                    grown[: len(buf)] = buf
                buf = self._arrays[col] = grown
            buf[pos] = values

    def gather(self, keys: Iterable[str]) -> dict[str, np.ndarray]:
        """The stored rows of ``keys`` (every key must be present), one array per column."""
        keys = keys if isinstance(keys, np.ndarray) else np.array(list(keys), dtype=object)
        codes, uniq = pd.factorize(keys, use_na_sentinel=False)  # one dict lookup per distinct key
        return self.take(self.positions(uniq)[codes])

    def positions(self, keys: Iterable[str]) -> np.ndarray:
        """The row of each key, -1 for a key not stored."""
        get = self.index.get
        return np.fromiter((get(k, -1) for k in keys), np.int64)

    def take(self, pos: np.ndarray) -> dict[str, np.ndarray]:
        """The rows ``pos``, one array per column."""
        return {col: buf[pos] for col, buf in self._arrays.items()}


class ServingFeatures:
    """The ranker-ready arrays of a corpus of requests, item and user sides from per-key caches.

    ``entries``: the features the model consumes (default: all of the pipeline's spec); the others
    are never computed.
    """

    def __init__(self, pipeline: FeaturePipeline, entries: Iterable[FeatureEntry] | None = None):
        entries = list(pipeline.spec.features if entries is None else entries)
        self.pipeline = pipeline
        self.item_entries = [e for e in entries if e.kind in ITEM_KINDS]
        self.user_entries = [e for e in entries if e.kind in USER_KINDS]
        self.dialogue_entries = [e for e in entries if e.kind not in ITEM_KINDS | USER_KINDS]
        self.items = KeyedArrays()
        self.users = KeyedArrays()
        self._item_memos: dict = {}  # extractors' item-level structures by item key (``ItemKeys``)
        self._encoders = {id(group): _restricted(pipeline, group)
                          for group in (self.item_entries, self.user_entries, self.dialogue_entries)}

    @classmethod
    def for_columns(cls, pipeline: FeaturePipeline, columns: Iterable[str]) -> "ServingFeatures":
        """Only the features that have an output among ``columns`` (a model's field names)."""
        wanted = set(columns)
        entries = [e for e in pipeline.spec.features
                   if any(o.column(e.name) in wanted for o in pipeline.outputs(e))]
        return cls(pipeline, entries)

    # -- the per-key sides -----------------------------------------------------------------------------
    def prepare(self, corpus: Corpus, item_keys: Mapping[str, str], user_keys: Mapping[str, str],
                refresh: bool = False) -> None:
        """Compute and cache the item and user sides of every candidate row of ``corpus`` not yet
        cached (all of them with ``refresh``: an item's record changed under the same key)."""
        if refresh:  # records changed under their keys: item-level structures are recomputed too
            self._item_memos.clear()
        rows = corpus.candidate_rows()
        ctx = self._context(corpus, item_keys)
        self._fill(self.items, self.item_entries, ctx, rows, keys_of(rows["item_id"], item_keys), refresh)
        self._fill(self.users, self.user_entries, ctx, rows, keys_of(rows["user_id"], user_keys), refresh)
        # The item-side work of dialogue features (title embeddings, ...) goes to their caches now.
        items = corpus.items[isin(corpus.items["item_id"], rows["item_id"])]
        for e in self.dialogue_entries:
            kind = get_kind(e.kind)
            if kind.warm is not None:
                kind.warm(ctx, e.params, self.pipeline.state["features"][e.name]["state"], items)

    def _context(self, corpus: Corpus, item_keys: Mapping[str, str]):
        ctx = self.pipeline.context(corpus)
        ctx.memo(ITEM_KEYS, lambda: ItemKeys(item_keys, self._item_memos))
        return ctx

    def _fill(self, store: KeyedArrays, entries: list[FeatureEntry], ctx, rows: pd.DataFrame, keys: np.ndarray,
              refresh: bool) -> None:
        if not entries:
            return
        codes, uniq = pd.factorize(keys, use_na_sentinel=False)
        first = np.zeros(len(keys), bool)
        first[np.unique(codes, return_index=True)[1]] = True  # each key's first row
        if refresh:
            todo = first
        else:  # membership once per distinct key, not per row
            missing = np.fromiter((k not in store for k in uniq), bool, len(uniq))
            todo = first & missing[codes]
        if not todo.any():
            return
        part = rows[todo]
        store.add(list(keys[todo]), self._encoded(ctx, part, entries))

    def _encoded(self, ctx, rows: pd.DataFrame, entries: list[FeatureEntry]) -> dict[str, np.ndarray]:
        """The encoded columns of ``entries`` (one of the three groups) over ``rows``: each feature's
        raw columns as arrays (``raw_arrays``; no frame per feature), then the group's encoders."""
        raw = {col: v for e in entries for col, v in self.pipeline.raw_arrays(ctx, rows, e).items()}
        return self._encoders[id(entries)].encode(raw)

    # -- a whole request corpus ------------------------------------------------------------------------
    def prefetch(self, utterances: list[str]) -> None:
        """Start the dialogue kinds' background work for a call's user utterances (``Kind.prefetch``:
        ``bert_cosine`` encodes the ones not cached), so that it overlaps building the call's corpus
        and the other extractors. Changes no value; texts already cached or in flight cost a lookup."""
        for e in self.dialogue_entries:
            kind = get_kind(e.kind)
            if kind.prefetch is not None:
                kind.prefetch(self.pipeline.cache, e.params, self.pipeline.state["features"][e.name]["state"], utterances)

    def transform(self, corpus: Corpus, item_keys: Mapping[str, str], user_keys: Mapping[str, str]) -> FeatureTable:
        """The ``FeatureTable`` of ``corpus``'s candidate rows (what ``FeaturePipeline.transform`` gives
        for these features). ``item_keys``/``user_keys``: the cache key of each item/user id of the
        corpus (an id without one is its own key). A caller that has the requests' user utterances
        before their corpus (a scorer) hands them to :meth:`prefetch` first; without that, new
        utterances are encoded in line, with the same values."""
        rows = corpus.candidate_rows()
        ctx = self._context(corpus, item_keys)
        ctx.persist_embeddings = False  # a request's new utterances: in memory, not a disk shard each
        arrays: dict[str, np.ndarray] = {}
        for store, entries, col, key_of in ((self.items, self.item_entries, "item_id", item_keys),
                                            (self.users, self.user_entries, "user_id", user_keys)):
            if entries:
                # one dict lookup per distinct id, then per distinct key; rows computed for the missing
                codes, keys = distinct_keys(key_values(rows, col), key_of)  # (no Series: ~9 us each)
                pos = store.positions(keys)
                if (pos < 0).any():
                    self._fill(store, entries, ctx, rows, keys[codes], refresh=False)
                    pos = store.positions(keys)
                arrays.update(store.take(pos[codes]))
        if self.dialogue_entries:
            arrays.update(self._encoded(ctx, rows, self.dialogue_entries))
        return FeatureTable(rows, arrays)


def _restricted(pipeline: FeaturePipeline, entries: list[FeatureEntry]) -> FeaturePipeline:
    """The fitted pipeline seen through a spec of ``entries`` only (its ``encode`` covers just them)."""
    view = copy.copy(pipeline)
    view.spec = dataclasses.replace(pipeline.spec, features=tuple(entries))
    return view
