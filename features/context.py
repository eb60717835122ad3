"""What an extractor may look at besides its rows: the corpus, the dialogue context of each
sample, fitted resources and caches.

The dialogue context of a sample is ``turns[:turn]`` of its session: the turn at which the
staff recommends, and everything after it, is never visible (no leakage). All context tables are
long-form DataFrames keyed by ``sample_id`` and built once per corpus with joins, so extractors
stay vectorised.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from features.encoders import embedding_cache
from features.frames import column_values, factorize_values, key_values, turns_before_sample
from features.text import Tokenizer, tokenizer_for_lexicon
from core.corpus import Corpus
from core.io import atomic_dir

if TYPE_CHECKING:
    from features.preferences import ContextPreferences


def stable_hash(obj, n: int = 12) -> str:
    """Short hash of a JSON-serialisable object (cache keys)."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


@dataclass
class FeatureContext:
    corpus: Corpus
    artifacts: Path  # fitted states and resources of one feature pipeline (travel with a run)
    cache: Path  # cross-run cache (e.g. sentence embeddings keyed by encoder and text hash)
    lexicon: list[str] = field(default_factory=list)  # E-comm dictionary, fitted on the training corpus
    show_progress: bool = True
    # False in a service: texts first seen in a request are embedded in memory, not written to disk.
    persist_embeddings: bool = True
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    def memo(self, key: str, build: Callable[[], object]):
        """Per-context memo for corpus-level structures (item matrices, ...) shared by partitions."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def column(self, table: str, name: str) -> np.ndarray:
        """Column ``name`` of the corpus table ``table`` as an array (strings as objects, NaN where
        missing), memoised: a call's extractors read the same id columns again and again."""
        return self.memo(f"column.{table}.{name}", lambda: column_values(getattr(self.corpus, table), name))

    # -- text ------------------------------------------------------------------------------------
    def sentence_embeddings(self, encoder) -> Callable[[list[str]], "np.ndarray"]:
        """``texts -> (n, dim)`` embeddings of ``encoder`` through its cache (each text encoded once,
        shared across runs and extractors; kept on disk unless ``persist_embeddings`` is off)."""
        return partial(embedding_cache(self.cache, encoder, self.show_progress).embed,
                                 persist=self.persist_embeddings)

    @cached_property
    def tokenizer(self) -> Tokenizer:
        # Process-wide per lexicon: building jieba's user dictionary costs more than a request.
        return tokenizer_for_lexicon(tuple(self.lexicon))

    # -- dialogue context --------------------------------------------------------------------------
    def before_sample(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Positions ``(row of table, row of corpus.samples)`` pairing each row of a per-turn table
        (``session_id``, ``turn_idx``) with every sample of its session whose recommendation turn comes
        after it: what each sample's dialogue context holds. In ``table`` order, then sample order, as an
        inner join would give (integer positions: a request's join costs milliseconds). Memoised per
        table object (the context and mentions, price_constraint's last linked items share a table's)."""
        slot = self.memo("context.before_sample", dict)
        hit = slot.get(id(table))
        if hit is None or hit[0] is not table:  # (the table kept with its pairs: its id is not reused)
            hit = slot[id(table)] = (table, turns_before_sample(self.corpus.samples, key_values(table, "session_id"),
                                                                column_values(table, "turn_idx", np.int64)))
        return hit[1]

    @cached_property
    def context_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions ``(row of corpus.turns, row of corpus.samples)`` of the rows of :attr:`context_turns`,
        in its order: by sample_id, then turn_idx (stable). Extractors read its columns through
        :meth:`context_column` (on a request's few turns, building the table costs a millisecond)."""
        ti, si = self.before_sample(self.corpus.turns)
        ids = column_values(self.corpus.samples, "sample_id", object)
        rank = np.empty(len(ids), np.int64)
        rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))  # (ids are distinct strings)
        order = np.lexsort((column_values(self.corpus.turns, "turn_idx", np.int64)[ti], rank[si]))
        return ti[order], si[order]

    def context_column(self, name: str) -> np.ndarray:
        """Column ``name`` of :attr:`context_turns` as an array (strings as objects, NaN where
        missing), memoised; the table itself is not built."""
        def build() -> np.ndarray:
            ti, si = self.context_rows
            if name in _SAMPLE_COLUMNS:
                return column_values(self.corpus.samples, name)[si]
            return column_values(self.corpus.turns, name)[ti]

        return self.memo(f"context_turns.{name}", build)

    @cached_property
    def context_turns(self) -> pd.DataFrame:
        """sample_id, session_id, user_id, turn_idx, role, text, intent, pref_annotated: turns before each sample's turn."""
        ti, si = self.context_rows
        turns, samples = self.corpus.turns, self.corpus.samples
        return pd.DataFrame({**{c: turns[c].array.take(ti) for c in turns.columns},
                             **{c: samples[c].array.take(si) for c in _SAMPLE_COLUMNS}})

    @cached_property
    def mention_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Positions ``(row of corpus.turn_items, row of corpus.samples)`` of the rows of :attr:`mentions`:
        each distinct (sample, item) pair at its first row, in ``before_sample`` order."""
        linked = self.corpus.turn_items
        ti, si = self.before_sample(linked)
        sample, _ = factorize_values(key_values(self.corpus.samples, "sample_id"))
        item, items = factorize_values(key_values(linked, "item_id"))
        _, first = np.unique(sample[si].astype(np.int64) * max(len(items), 1) + item[ti], return_index=True)
        first.sort()
        return ti[first], si[first]

    @cached_property
    def mentions(self) -> pd.DataFrame:
        """sample_id, item_id: distinct items linked in the context."""
        ti, si = self.mention_rows
        return pd.DataFrame({"sample_id": self.corpus.samples["sample_id"].array.take(si),
                             "item_id": self.corpus.turn_items["item_id"].array.take(ti)})

    @cached_property
    def preferences(self) -> pd.DataFrame:
        """sample_id, turn_idx, text, type: preference words of the user turns in the context.

        Annotated turns use the corpus annotation; the others go through the extractor
        (``features.preferences``), so a corpus without annotations still has preferences.
        """
        return self.preference_words.frame(self.context_turns)

    @cached_property
    def preference_words(self) -> "ContextPreferences":
        """The rows of :attr:`preferences` as arrays, each with its row of :attr:`context_turns`
        (what a request's extractors read, without building the table)."""
        from features.preferences import context_preferences

        return context_preferences(self)

    # -- fitted resources ---------------------------------------------------------------------------
    def resource_dir(self, name: str, params: dict, build: Callable[[Path], None]) -> str:
        """Directory (relative to ``artifacts``) holding resource ``name`` built with ``params``.

        Built once: ``build(tmp_dir)`` writes into a temporary directory that is renamed when it
        returns, so a half-built resource is never mistaken for a finished one.
        """
        rel = f"resources/{name}-{stable_hash(params)}"
        final = Path(self.artifacts) / rel
        if not final.exists():
            with atomic_dir(final, keep_existing=True) as tmp:
                build(tmp)
                (tmp / "params.json").write_text(json.dumps(params, sort_keys=True, ensure_ascii=False, default=str))
        return rel

    def path(self, relative: str) -> Path:
        return Path(self.artifacts) / relative

    def load_resource(self, relative: str, loader: Callable[[Path], object]):
        """``loader(path)`` of a fitted, immutable resource file, memoised for the whole process
        (a scoring service handles many small corpora with the same resources)."""
        key = (str(Path(self.artifacts).resolve() / relative), getattr(loader, "__qualname__", repr(loader)))
        if key not in _RESOURCES:
            _RESOURCES[key] = loader(self.path(relative))
        return _RESOURCES[key]


_RESOURCES: dict[tuple[str, str], object] = {}
_SAMPLE_COLUMNS = ("sample_id", "user_id")  # the columns of context_turns that come from corpus.samples
