"""Chinese text utilities: a jieba tokenizer that knows the product knowledge base.

E-ConvRec's "E-comm dict": brands, categories and attribute values of the knowledge base are
added to jieba as a user dictionary, so "拍照清晰" or "雅川青" stay one token instead of being cut
into characters.
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Iterable

import jieba
import numpy as np
import pandas as pd

jieba.setLogLevel(60)  # jieba prints its dictionary loading to stderr otherwise

# A token is dropped when it is only punctuation / symbols / whitespace.
_PUNCT_ONLY = re.compile(r"^[\s\W_]+$", re.UNICODE)


def normalise_text(text: str) -> str:
    """NFKC (full-width -> half-width) and ASCII lower-case."""
    return unicodedata.normalize("NFKC", text).lower()


@lru_cache(maxsize=1 << 16)
def normalised_value(text: str) -> str:
    """``normalise_text(text).strip()``, memoised: a catalogue's attribute values and categories come
    back with every request that holds its items."""
    return normalise_text(text).strip()


def normalise_series(texts: pd.Series, strip: bool = True) -> pd.Series:
    """``normalise_text`` (and ``str.strip``) of each text of a Series, each distinct text once:
    attribute values, categories and preference words repeat across rows. Missing stays missing."""
    codes, uniq = pd.factorize(texts.astype(str))
    norm = [normalise_text(u).strip() if strip else normalise_text(u) for u in uniq.tolist()]
    table = np.array(norm + [None], dtype=object)  # code -1 (a missing text) takes the last entry: missing
    return pd.Series(table[codes], index=texts.index, dtype="str")


def lexicon_from_items(items: pd.DataFrame, item_attrs: pd.DataFrame) -> list[str]:
    """The E-comm dictionary: categories and attribute values (brands included), normalised."""
    words = pd.concat([items["category"], item_attrs["value"]], ignore_index=True).astype(str)
    words = words.map(normalise_text).str.strip()
    words = words[(words.str.len() >= 2) & (words.str.len() <= 20) & ~words.str.contains(r"\s", regex=True)]
    return sorted(set(words))


class Tokenizer:
    """jieba with a user dictionary; results are memoised per distinct text.

    The same instance tokenises training and scoring texts, so the token sets match.
    """

    def __init__(self, lexicon: Iterable[str] = ()):
        self.lexicon = sorted(set(lexicon))
        self._jieba = jieba.Tokenizer()
        for w in self.lexicon:
            # High frequency so the KB word wins over jieba's own segmentation.
            self._jieba.add_word(w, freq=100000)
        self._cache: dict[str, tuple[str, ...]] = {}
        self._vocab: dict[str, int] = {}  # token -> id, grown as tokens are seen (token_id_sets)
        self._id_sets: dict[str, np.ndarray] = {}

    def tokenize(self, text: str) -> tuple[str, ...]:
        hit = self._cache.get(text)
        if hit is None:
            norm = normalise_text(text or "")
            hit = tuple(t for t in self._jieba.lcut(norm) if t.strip() and not _PUNCT_ONLY.match(t))
            self._cache[text] = hit
        return hit

    def tokenize_series(self, texts: pd.Series) -> pd.Series:
        """Tokenise a Series of texts, each distinct text once."""
        uniq = pd.unique(texts.fillna("").astype(str))
        toks = {t: self.tokenize(t) for t in uniq}
        return texts.fillna("").astype(str).map(toks)

    def token_id_sets(self, texts: pd.Series) -> list[np.ndarray]:
        """Per text, the sorted distinct ids of its tokens, memoised per text. Ids come from a
        vocabulary this tokenizer grows, so equal tokens have equal ids in every call (set
        operations between texts, e.g. a sparse token matrix, without a pandas long table)."""
        out = []
        vocab = self._vocab
        for text in texts.fillna("").astype(str).tolist():  # (a list iterates ~4x faster than Arrow)
            ids = self._id_sets.get(text)
            if ids is None:
                ids = self._id_sets[text] = np.unique(np.fromiter(
                    (vocab.setdefault(t, len(vocab)) for t in self.tokenize(text)), np.int64))
            out.append(ids)
        return out

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)


@lru_cache(maxsize=4)
def tokenizer_for_lexicon(lexicon: tuple[str, ...]) -> Tokenizer:
    """Process-wide Tokenizer per lexicon: building jieba's user dictionary is costly."""
    return Tokenizer(lexicon)


def tokenizer_for(items: pd.DataFrame, item_attrs: pd.DataFrame) -> Tokenizer:
    """A Tokenizer whose user dictionary is the knowledge base of these items (memoised)."""
    return tokenizer_for_lexicon(tuple(lexicon_from_items(items, item_attrs)))
