"""Interactive features (IF): the candidate against the items linked earlier in the dialogue.

All three look only at ``ctx.mentions`` (items linked in ``turns[:turn]``), so an item linked at
or after the recommendation turn never counts. Pairs (candidate, mentioned item) are evaluated
with array operations over item-level matrices built once per corpus: an attribute-value code
matrix for ``attr_similarity`` and a sparse title-token matrix for ``title_jaccard``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.frames import join_codes, positions
from features.registry import KindParams, OutputColumn, register


@dataclass(frozen=True)
class RowCodes:
    """Candidate rows' sample and item ids as integer codes (``sample``, ``item``) into their
    distinct ids (``samples``, ``items``; first seen first)."""

    sample: np.ndarray
    samples: pd.Index
    item: np.ndarray
    items: pd.Index

    @classmethod
    def of(cls, rows: pd.DataFrame) -> "RowCodes":
        sample, samples = pd.factorize(rows["sample_id"], use_na_sentinel=False)
        item, items = pd.factorize(rows["item_id"], use_na_sentinel=False)
        return cls(sample, pd.Index(samples), item, pd.Index(items))


def row_codes(rows: pd.DataFrame, ctx) -> RowCodes:
    """The ``RowCodes`` of ``rows``: memoised for the latest ``rows`` object of the context, which
    every kind of a call gets (the IF kinds and item_reaction share them)."""
    slot = ctx.memo("if.row_codes", dict)
    if slot.get("rows") is not rows:
        slot.update(rows=rows, codes=RowCodes.of(rows))
    return slot["codes"]


@dataclass(frozen=True)
class RowPairs:
    """Pairs of a candidate row and another item (one mentioned, or reacted to, in its context), as
    integer codes: ``pos`` (position in the rows), ``item`` (the candidate: its code among the rows'
    distinct item ids ``ids``), ``other`` (the other item's code among ``ids``; -1 when no row has it
    as candidate, so it equals no candidate), ``at`` (the other item's position in ``others``, the
    item ids of the table the pairs come from)."""

    pos: np.ndarray
    item: np.ndarray
    other: np.ndarray
    at: np.ndarray
    ids: pd.Index
    others: pd.Series

    @classmethod
    def of(cls, rows: RowCodes, samples: pd.Series, others: pd.Series) -> "RowPairs":
        """Each row with every entry of a (``samples``, ``others``) table of its sample, in row order
        then table order (an inner join on the sample id)."""
        pos, at = join_codes(rows.sample, positions(rows.samples, samples))
        other = positions(rows.items, others)
        return cls(pos, rows.item[pos], other[at], at, rows.items, others)

    def same(self) -> np.ndarray:
        """Per pair: the other item is the candidate itself."""
        return self.item == self.other

    def matrix_rows(self, index: "_ItemIndex") -> tuple[np.ndarray, np.ndarray]:
        """The rows of the candidate and of the other item in an item-level matrix of ``index``."""
        return index.codes_of_distinct(self.ids)[self.item], index.codes(self.others)[self.at]


def _mention_pairs(rows: pd.DataFrame, ctx) -> RowPairs:
    """Each row with the items mentioned in its context (``ctx.mentions``). The three IF kinds of
    a call share them: memoised for the latest ``rows`` object of the context."""
    slot = ctx.memo("if.mention_pairs", dict)
    if slot.get("rows") is not rows:
        m = ctx.mentions
        slot.update(rows=rows, pairs=RowPairs.of(row_codes(rows, ctx), m["sample_id"], m["item_id"]))
    return slot["pairs"]


def _average_by_row(n_rows: int, pos: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` per row position (0 where a row has no pairs) and the pair counts."""
    count = np.bincount(pos, minlength=n_rows).astype(np.float64)
    total = np.bincount(pos, weights=values, minlength=n_rows)
    mean = np.divide(total, count, out=np.zeros(n_rows), where=count > 0)
    return mean, count


class _ItemIndex:
    """Dense item positions for the items of one corpus, so pairs become integer arrays."""

    def __init__(self, item_ids: pd.Series):
        self.ids = pd.Index(pd.unique(item_ids.astype(str)))
        self._last: tuple[pd.Index, np.ndarray] | None = None

    def codes(self, items: pd.Series) -> np.ndarray:
        """Positions; an item without a KB record gets the extra last row (all empty)."""
        c = positions(self.ids, items.astype(str))
        c[c < 0] = len(self.ids)
        return c

    def codes_of_distinct(self, ids: pd.Index) -> np.ndarray:
        """``codes`` of distinct ids, memoised for the latest ``ids`` object (a call's row item ids,
        which every pair table of the call is coded against)."""
        if self._last is None or self._last[0] is not ids:
            self._last = (ids, self.codes(pd.Series(np.asarray(ids, dtype=object))))
        return self._last[1]


def _item_index(ctx) -> _ItemIndex:
    """The ``_ItemIndex`` of the corpus's items, one per context (the attribute and title matrices)."""
    return ctx.memo("if.item_index", lambda: _ItemIndex(ctx.corpus.items["item_id"]))


def _attr_matrix(ctx) -> tuple[_ItemIndex, np.ndarray]:
    """(items x attribute names) int32 matrix of value codes; 0 = attribute absent."""
    return ctx.memo("if.attr_matrix", lambda: _build_attr_matrix(ctx))


def _build_attr_matrix(ctx) -> tuple[_ItemIndex, np.ndarray]:
    attrs = ctx.corpus.item_attrs.drop_duplicates(["item_id", "name"])
    index = _item_index(ctx)
    name_code, _ = pd.factorize(attrs["name"])
    # (name, value) pairs coded as integers, not as concatenated strings (same first-seen codes)
    value_of, values = pd.factorize(attrs["value"].astype(str))
    value_code, _ = pd.factorize(name_code.astype(np.int64) * max(len(values), 1) + value_of)
    mat = np.zeros((len(index.ids) + 1, name_code.max() + 1 if len(name_code) else 1), np.int32)
    mat[index.codes(attrs["item_id"]), name_code] = value_code + 1
    mat[-1] = 0  # the extra last row stands for items without a KB record
    return index, mat


@register(
    "mention_flag",
    params=KindParams,
    outputs=[OutputColumn("", "numeric")],
)
def mention_flag(rows: pd.DataFrame, ctx, p: KindParams, state: dict) -> pd.DataFrame:
    """1 if the candidate was linked in the dialogue before the recommendation turn, else 0."""
    pairs = _mention_pairs(rows, ctx)
    flag = np.zeros(len(rows))
    flag[pairs.pos[pairs.same()]] = 1.0
    return pd.DataFrame({"": flag}, index=rows.index)


class SimilarityParams(KindParams):
    transform: str = "none"  # already in [0, 1]
    chunk_pairs: int = 1_000_000  # bounds the temporary arrays


def _mean_similarity_to_mentions(rows, ctx, ratio_of, chunk: int) -> pd.DataFrame:
    """Mean over each row's mentioned items of ``ratio(a, b) -> (numerator, denominator)``
    (item positions in, arrays out; 0 where the denominator is 0), the no-mention indicator, and
    ``others``: the mean over the mentioned items other than the candidate itself (0 when none). A
    shown item's similarity to itself only repeats ``mention_flag``; ``others`` is how close the
    candidate is to what else was shown: a variant of a shown item, or a shown item among variants.
    ``ratio_of() -> (index, ratio)`` builds the item-level matrices: only when some row has a mention
    (a live chat's first turns have none, and the matrices cost more than the rest)."""
    pairs = _mention_pairs(rows, ctx)
    n = len(pairs.pos)
    sims = np.empty(n)
    if n:
        index, ratio = ratio_of()
        a, b = pairs.matrix_rows(index)
        for s in range(0, n, chunk):
            num, den = ratio(a[s : s + chunk], b[s : s + chunk])
            sims[s : s + chunk] = np.divide(num, den, out=np.zeros(len(num)), where=den > 0)
    pos = pairs.pos
    mean, count = _average_by_row(len(rows), pos, sims)
    other = ~pairs.same()
    others, _ = _average_by_row(len(rows), pos[other], sims[other])
    return pd.DataFrame({"": mean, "no_mention": (count == 0).astype(float), "others": others}, index=rows.index)


@register(
    "attr_similarity",
    params=SimilarityParams,
    outputs=[OutputColumn("", "numeric"), OutputColumn("no_mention", "numeric"), OutputColumn("others", "numeric")],
    version="2",
)
def attr_similarity(rows: pd.DataFrame, ctx, p: SimilarityParams, state: dict) -> pd.DataFrame:
    """Mean over mentioned items of (#attributes with equal values) / (#distinct attribute names of both)."""

    def ratio_of():
        index, mat = _attr_matrix(ctx)

        def ratio(a, b):
            va, vb = mat[a], mat[b]
            return ((va == vb) & (va > 0)).sum(1), ((va > 0) | (vb > 0)).sum(1)

        return index, ratio

    return _mean_similarity_to_mentions(rows, ctx, ratio_of, p.chunk_pairs)


def _title_matrix(ctx) -> tuple[_ItemIndex, sp.csr_matrix, np.ndarray]:
    """Binary (items x tokens) CSR matrix of title token sets, and the set sizes."""
    return ctx.memo("if.title_matrix", lambda: _build_title_matrix(ctx))


def _build_title_matrix(ctx) -> tuple[_ItemIndex, sp.csr_matrix, np.ndarray]:
    items = ctx.corpus.items
    index = _item_index(ctx)
    sets = ctx.tokenizer.token_id_sets(items["title"])  # memoised per title: no per-call long table
    lengths = np.fromiter(map(len, sets), np.int64, len(sets))
    r = np.repeat(index.codes(items["item_id"]), lengths)
    tok = np.concatenate(sets) if sets else np.zeros(0, np.int64)
    mat = sp.csr_matrix(
        (np.ones(len(r), np.float32), (r, tok)), shape=(len(index.ids) + 1, max(ctx.tokenizer.vocab_size, 1))
    )
    mat.data[:] = 1.0  # sets, not counts
    sizes = np.asarray(mat.sum(1)).ravel()
    return index, mat, sizes


def warm_title_tokens(ctx, params, state: dict, items: pd.DataFrame) -> None:
    """Tokenise catalogue titles into token id sets ahead of traffic (the tokenizer memoises both
    per text, process-wide), so a request does this only for the titles of items it brings inline."""
    ctx.tokenizer.token_id_sets(items["title"])


@register(
    "title_jaccard",
    params=SimilarityParams,
    outputs=[OutputColumn("", "numeric"), OutputColumn("no_mention", "numeric"), OutputColumn("others", "numeric")],
    warm=warm_title_tokens,
    version="2",
)
def title_jaccard(rows: pd.DataFrame, ctx, p: SimilarityParams, state: dict) -> pd.DataFrame:
    """Mean over mentioned items of the Jaccard similarity of the two titles' jieba token sets."""

    def ratio_of():
        index, mat, sizes = _title_matrix(ctx)

        def ratio(a, b):
            inter = np.asarray(mat[a].multiply(mat[b]).sum(1)).ravel()
            return inter, sizes[a] + sizes[b] - inter

        return index, ratio

    return _mean_similarity_to_mentions(rows, ctx, ratio_of, p.chunk_pairs)
