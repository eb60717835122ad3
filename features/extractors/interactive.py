"""Interactive features (IF): the candidate against the items linked earlier in the dialogue.

All three look only at ``ctx.mentions`` (items linked in ``turns[:turn]``), so an item linked at
or after the recommendation turn never counts. Pairs (candidate, mentioned item) are evaluated
with array operations over item-level matrices built once per corpus: an attribute-value code
matrix for ``attr_similarity`` and a sparse title-token matrix for ``title_jaccard``. In a serving
call (``features.frames.ItemKeys``) their rows are kept across calls, one per item key: a call
builds rows only for items it is the first to bring.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.frames import (RowCodes, factorize_values, id_positions, isin, item_keys, join_codes, numeric_frame,
                             object_values, row_codes)
from features.registry import KindParams, OutputColumn, register


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
    ids: np.ndarray
    others: np.ndarray

    @classmethod
    def of(cls, rows: RowCodes, samples: np.ndarray, others: np.ndarray) -> "RowPairs":
        """Each row with every entry of a (``samples``, ``others``) table of its sample (object arrays),
        in row order then table order (an inner join on the sample id)."""
        pos, at = join_codes(rows.sample, id_positions(rows.samples, samples))
        other = id_positions(rows.items, others)
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
        ti, si = ctx.mention_rows  # (the rows of ctx.mentions, without the table)
        slot.update(rows=rows, pairs=RowPairs.of(row_codes(rows, ctx), ctx.column("samples", "sample_id")[si],
                                                 ctx.column("turn_items", "item_id")[ti]))
    return slot["pairs"]


def _average_by_row(n_rows: int, pos: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` per row position (0 where a row has no pairs) and the pair counts."""
    count = np.bincount(pos, minlength=n_rows).astype(np.float64)
    total = np.bincount(pos, weights=values, minlength=n_rows)
    mean = np.divide(total, count, out=np.zeros(n_rows), where=count > 0)
    return mean, count


def _distinct_ids(item_ids: pd.Series) -> np.ndarray:
    """The distinct ``item_ids`` as strings (first seen first), an object array: ``pd.unique`` of the
    column as ``str``, by a dict when they are strings already (a request's index: 60 -> 5 us)."""
    values = object_values(item_ids).tolist()
    if all(type(v) is str for v in values):
        distinct = list(dict.fromkeys(values))
    else:
        distinct = pd.unique(item_ids.astype(str)).tolist()
    out = np.empty(len(distinct), dtype=object)
    out[:] = distinct
    return out


class _ItemIndex:
    """Dense item positions for the items of one corpus, so pairs become integer arrays."""

    def __init__(self, item_ids: pd.Series):
        self.ids = _distinct_ids(item_ids)
        # looked up by dict: a pandas index lookup (its engine, astype(str), factorize) costs ~0.1 ms
        # a call, and a request's IF kinds make several
        self._where = {v: k for k, v in enumerate(self.ids.tolist())}
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    def codes(self, items) -> np.ndarray:
        """Positions of ``items`` (a column or array; ids as strings, a missing one has none); an item
        without a KB record gets the extra last row (all empty)."""
        code, distinct = factorize_values(items)
        at = np.fromiter((self._where.get(v if isinstance(v, str) else None if pd.isna(v) else str(v), -1)
                          for v in distinct.tolist()), np.int64, len(distinct))
        at[at < 0] = len(self.ids)
        return at[code]

    def codes_of_distinct(self, ids: np.ndarray) -> np.ndarray:
        """``codes`` of distinct ids, memoised for the latest ``ids`` object (a call's row item ids,
        which every pair table of the call is coded against)."""
        if self._last is None or self._last[0] is not ids:
            self._last = (ids, self.codes(ids))
        return self._last[1]


class _KeyedItemIndex(_ItemIndex):
    """An ``_ItemIndex`` whose codes are rows of item matrices kept across serving calls: one row
    per item key (``rows``: key -> row, shared by the matrices), row 0 empty: it stands for items
    without a KB record."""

    def __init__(self, item_ids: pd.Series, rows: dict[str, int], key_of):
        super().__init__(item_ids)
        ids = self.ids.tolist()
        self._rows = np.zeros(len(ids) + 1, np.int64)
        self._rows[:-1] = np.fromiter((rows.setdefault(key_of.get(i, i), len(rows) + 1) for i in ids), np.int64,
                                      len(ids))
        self.n_rows = len(rows) + 1

    def unbuilt(self, built: np.ndarray) -> np.ndarray:
        """The ids whose rows are not ``built`` yet (``built``: a flag per row)."""
        return self.ids[~built[self._rows[:-1]]]

    def codes(self, items: pd.Series) -> np.ndarray:
        return self._rows[super().codes(items)]


def _keyed_index(ctx, name: str) -> tuple[_KeyedItemIndex, dict, np.ndarray] | None:
    """In a serving call: the ``_KeyedItemIndex`` of the corpus's items, the memo dict of the item
    matrix ``name`` (kept across calls; ``built``: its rows built so far, flagged) and the ids whose
    rows it lacks (now flagged); else None."""
    keys = item_keys(ctx)
    if keys is None:
        return None
    index = ctx.memo("if.keyed_index",
                     lambda: _KeyedItemIndex(ctx.corpus.items["item_id"], keys.memo("if.item_rows"), keys.key_of))
    memo = keys.memo(name)
    built = memo.get("built", np.zeros(1, bool))
    if len(built) < index.n_rows:
        built = memo["built"] = np.concatenate([built, np.zeros(max(index.n_rows, 2 * len(built)) - len(built), bool)])
    todo = index.unbuilt(built)
    built[index.codes(todo)] = True
    return index, memo, todo


def _item_index(ctx) -> _ItemIndex:
    """The ``_ItemIndex`` of the corpus's items, one per context (the attribute and title matrices)."""
    return ctx.memo("if.item_index", lambda: _ItemIndex(ctx.corpus.items["item_id"]))


def _attr_matrix(ctx) -> tuple[_ItemIndex, np.ndarray]:
    """(items x attribute names) int32 matrix of value codes; 0 = attribute absent. Only equality
    of codes counts (of a name's values; a code > 0 is a present attribute)."""
    return ctx.memo("if.attr_matrix", lambda: _keyed_attr_matrix(ctx) or _build_attr_matrix(ctx))


def _keyed_attr_matrix(ctx) -> tuple[_ItemIndex, np.ndarray] | None:
    """The attribute matrix of a serving call: rows kept across calls, one per item key; names and
    (name, value) pairs coded first seen first across calls."""
    keyed = _keyed_index(ctx, "if.attr_matrix")
    if keyed is None:
        return None
    index, memo, todo = keyed
    cols, codes = memo.setdefault("cols", {}), memo.setdefault("codes", {})
    mat = memo.get("mat", np.zeros((1, 1), np.int32))
    if len(todo):
        attrs = ctx.corpus.item_attrs
        attrs = attrs[isin(attrs["item_id"], todo)].drop_duplicates(["item_id", "name"])
        names, values = attrs["name"].tolist(), attrs["value"].astype(str).tolist()
        col = np.fromiter((cols.setdefault(n, len(cols)) for n in names), np.int64, len(names))
        code = np.fromiter((codes.setdefault(nv, len(codes) + 1) for nv in zip(names, values)), np.int32, len(names))
        if index.n_rows > len(mat) or len(cols) > mat.shape[1]:
            grown = np.zeros((max(index.n_rows, 2 * len(mat)), max(len(cols), mat.shape[1])), np.int32)
            grown[: len(mat), : mat.shape[1]] = mat
            mat = grown
        mat[index.codes(attrs["item_id"]), col] = code
        memo["mat"] = mat
    return index, mat


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


def warm_attr_rows(ctx, params, state: dict, items: pd.DataFrame) -> None:
    """In a serving context: the attribute matrix's rows of the corpus's items, built ahead of
    traffic (a request's items, its user's history included, then only gather rows)."""
    if item_keys(ctx) is not None:
        _attr_matrix(ctx)


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
    return numeric_frame({"": flag}, rows.index)


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
    return numeric_frame({"": mean, "no_mention": (count == 0).astype(float), "others": others}, rows.index)


@register(
    "attr_similarity",
    params=SimilarityParams,
    outputs=[OutputColumn("", "numeric"), OutputColumn("no_mention", "numeric"), OutputColumn("others", "numeric")],
    warm=warm_attr_rows,
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
    return ctx.memo("if.title_matrix", lambda: _keyed_title_matrix(ctx) or _build_title_matrix(ctx))


def _build_title_matrix(ctx) -> tuple[_ItemIndex, sp.csr_matrix, np.ndarray]:
    items = ctx.corpus.items
    index = _item_index(ctx)
    sets = ctx.tokenizer.token_id_sets(items["title"])  # memoised per title: no per-call long table
    mat, sizes = _title_rows(ctx, sets, index.codes(items["item_id"]), len(index.ids) + 1)
    return index, mat, sizes


def _title_rows(ctx, sets: list[np.ndarray], rows: np.ndarray, n_rows: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """The title matrix of ``n_rows`` rows with the token id ``sets`` at ``rows``, and the set sizes."""
    lengths = np.fromiter(map(len, sets), np.int64, len(sets))
    r = np.repeat(rows, lengths)
    tok = np.concatenate(sets) if sets else np.zeros(0, np.int64)
    mat = sp.csr_matrix((np.ones(len(r), np.float32), (r, tok)), shape=(n_rows, max(ctx.tokenizer.vocab_size, 1)))
    mat.data[:] = 1.0  # sets, not counts
    return mat, np.asarray(mat.sum(1)).ravel()


def _keyed_title_matrix(ctx) -> tuple[_ItemIndex, sp.csr_matrix, np.ndarray] | None:
    """The title matrix of a serving call: rows kept across calls, one per item key (``sets``: the
    token id set of each built row)."""
    keyed = _keyed_index(ctx, "if.title_matrix")
    if keyed is None:
        return None
    index, memo, todo = keyed
    sets = memo.setdefault("sets", {})
    n_built = memo["mat"].shape[0] if "mat" in memo else 0
    if len(todo) or index.n_rows > n_built:
        items = ctx.corpus.items
        items = items[isin(items["item_id"], todo)]
        sets.update(zip(index.codes(items["item_id"]).tolist(), ctx.tokenizer.token_id_sets(items["title"])))
        # rows from the first one to (re)build on: new rows, and rows given before but built only now
        lo = min([n_built, *index.codes(items["item_id"]).tolist()])
        rows = [r for r in range(lo, index.n_rows) if r in sets]
        block, sizes = _title_rows(ctx, [sets[r] for r in rows], np.asarray(rows, np.int64) - lo, index.n_rows - lo)
        if lo:
            old = memo["mat"][:lo]
            width = max(old.shape[1], block.shape[1])  # the vocabulary may have grown
            old.resize((lo, width))
            block.resize((block.shape[0], width))
            block, sizes = sp.vstack([old, block], format="csr"), np.concatenate([memo["sizes"][:lo], sizes])
        memo["mat"], memo["sizes"] = block, sizes
    return index, memo["mat"], memo["sizes"]


# A few pairs' shared tokens are counted on a dense block of just their rows and tokens (up to this
# many cells): scipy's row gathers and product cost ~160 us on a request's 62 pairs, this ~30.
_FEW_PAIRS, _DENSE_CELLS_MAX = 4096, 1 << 20


def _shared_tokens(mat: sp.csr_matrix, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per pair, the number of tokens rows ``a`` and ``b`` of the title matrix (binary, canonical
    CSR) share, in its dtype: ``mat[a].multiply(mat[b]).sum(1)`` raveled."""
    if len(a) <= _FEW_PAIRS:
        rows, at = np.unique(np.concatenate([a, b]), return_inverse=True)
        starts = mat.indptr[rows]
        lengths = mat.indptr[rows + 1] - starts
        if len(rows) * min(int(lengths.sum()), mat.shape[1]) <= _DENSE_CELLS_MAX:
            # each row's token ids, gathered from the CSR arrays, coded among the tokens of these rows
            cell = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
            tokens, token = np.unique(mat.indices[cell], return_inverse=True)
            dense = np.zeros((len(rows), len(tokens)), bool)
            dense[np.repeat(np.arange(len(rows)), lengths), token] = True
            return (dense[at[: len(a)]] & dense[at[len(a):]]).sum(1).astype(mat.dtype)
    return np.asarray(mat[a].multiply(mat[b]).sum(1)).ravel()


def warm_title_tokens(ctx, params, state: dict, items: pd.DataFrame) -> None:
    """Tokenise catalogue titles into token id sets ahead of traffic (the tokenizer memoises both
    per text, process-wide), so a request does this only for the titles of items it brings inline;
    in a serving context the title matrix's rows of the corpus's items are built too."""
    ctx.tokenizer.token_id_sets(items["title"])
    if item_keys(ctx) is not None:
        _title_matrix(ctx)


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
            inter = _shared_tokens(mat, a, b)
            return inter, sizes[a] + sizes[b] - inter

        return index, ratio

    return _mean_similarity_to_mentions(rows, ctx, ratio_of, p.chunk_pairs)
