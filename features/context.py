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
from features.frames import join_positions
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

    # -- text ------------------------------------------------------------------------------------
    def sentence_embeddings(self, encoder) -> Callable[[list[str]], "np.ndarray"]:
        """``texts -> (n, dim)`` embeddings of ``encoder`` through its cache (each text encoded once,
        shared across runs and extractors; kept on disk unless ``persist_embeddings`` is off)."""
        return partial(embedding_cache(self.cache, encoder, self.show_progress).embed,
                                 persist=self.persist_embeddings)

    def prefetch_sentence_embeddings(self, encoder, texts) -> int:
        """Start encoding ``texts`` not yet cached in the background (a scoring call's new
        utterances); :meth:`sentence_embeddings` collects them. Returns how many were started."""
        return embedding_cache(self.cache, encoder, self.show_progress).prefetch(texts)

    @cached_property
    def tokenizer(self) -> Tokenizer:
        # Process-wide per lexicon: building jieba's user dictionary costs more than a request.
        return tokenizer_for_lexicon(tuple(self.lexicon))

    # -- dialogue context --------------------------------------------------------------------------
    def before_sample(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Positions ``(row of table, row of corpus.samples)`` pairing each row of a per-turn table
        (``session_id``, ``turn_idx``) with every sample of its session whose recommendation turn
        comes after it: what each sample's dialogue context holds. In ``table`` order, then sample
        order, as an inner join would give (integer positions: a request's join costs milliseconds)."""
        samples = self.corpus.samples
        ti, si = join_positions(table["session_id"], samples["session_id"])
        before = table["turn_idx"].to_numpy(np.int64)[ti] < samples["turn"].to_numpy(np.int64)[si]
        return ti[before], si[before]

    @cached_property
    def context_turns(self) -> pd.DataFrame:
        """sample_id, session_id, user_id, turn_idx, role, text, intent, pref_annotated: turns before each sample's turn."""
        ti, si = self.before_sample(self.corpus.turns)
        t = pd.concat([self.corpus.turns.take(ti).reset_index(drop=True),
                       self.corpus.samples[["sample_id", "user_id"]].take(si).reset_index(drop=True)], axis=1)
        return t.sort_values(["sample_id", "turn_idx"], kind="stable").reset_index(drop=True)

    @cached_property
    def mentions(self) -> pd.DataFrame:
        """sample_id, item_id: distinct items linked in the context."""
        ti, si = self.before_sample(self.corpus.turn_items)
        m = pd.DataFrame({"sample_id": self.corpus.samples["sample_id"].take(si).reset_index(drop=True),
                          "item_id": self.corpus.turn_items["item_id"].take(ti).reset_index(drop=True)})
        return m.drop_duplicates().reset_index(drop=True)

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
