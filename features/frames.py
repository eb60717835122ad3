"""Small DataFrame helpers the extractors share."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import repeat

import numpy as np
import pandas as pd
from pandas._libs.internals import BlockPlacement
from pandas.core.internals.blocks import NumpyBlock
from pandas.core.internals.managers import BlockManager

from core.corpus.validate import column_index

# ``FeatureContext.memo`` slot of a serving call's ``ItemKeys`` (absent when computing a corpus).
ITEM_KEYS = "serving.item_keys"

# Up to this many values a column is hashed as Python objects: Arrow's fixed cost per call (~15-25 us)
# is most of a request's factorize; beyond it Arrow hashes natively (no Python string per value).
_OBJECT_HASHING_MAX = 2048
# Up to this many values, strings are coded by a Python dict and tiny joins matched by one: pandas'
# and numpy's fixed costs per call (10-20 us) are most of a request's work, a dict costs ~60 ns a value.
_DICT_MAX = 256


class ItemKeys:
    """The cache key of each item of a serving call's corpus (``features.serving``: the catalogue id
    of a run's item, the content hash of an inline one; the record is a function of the key), and
    memos kept across calls, so that an extractor computes an item-level structure (a row of an
    item matrix) once per key and a call only gathers rows."""

    def __init__(self, key_of: Mapping[str, str], memos: dict):
        self.key_of = key_of
        self._memos = memos

    def of(self, ids: pd.Series) -> np.ndarray:
        """The key of each id (an id without one is its own key)."""
        return keys_of(ids, self.key_of)

    def memo(self, name: str) -> dict:
        """A dict kept across calls (one per ``name``)."""
        return self._memos.setdefault(name, {})


def item_keys(ctx) -> ItemKeys | None:
    """The ``ItemKeys`` of a serving call's context; None for a corpus (training, evaluation)."""
    return ctx.memo(ITEM_KEYS, lambda: None)


def keys_of(ids: pd.Series, key_of: Mapping[str, str]) -> np.ndarray:
    """The key of each id (``key_of``, else the id itself), looked up once per distinct id."""
    codes, keys = distinct_keys(ids, key_of)
    return keys[codes]


def distinct_keys(ids, key_of: Mapping[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, keys)``: the code of each id (a Series, or an object array: ``key_values``) among
    the distinct ids (first seen first) and the key of each distinct id (``key_of``, else the id)."""
    values = object_values(ids).tolist() if len(ids) <= _DICT_MAX else None
    if values is not None and set(map(type, values)) <= {str}:
        # A request's ids, all strings: coded by a dict (``astype(str)`` and Arrow's factorize cost
        # ~100 us a call on 31 ids, twice a request: items and users), the same codes and order.
        codes, uniq = _factorize_strings(values)
    else:
        ids = ids if isinstance(ids, pd.Series) else pd.Series(ids, dtype=object, copy=False)
        codes, uniq = pd.factorize(ids.astype(str), use_na_sentinel=False)
    keys = np.empty(len(uniq), dtype=object)
    keys[:] = [key_of.get(i, i) for i in uniq.tolist()]  # (a list iterates ~4x faster than Arrow)
    return codes, keys


def column_values(frame: pd.DataFrame, name: str, dtype=None) -> np.ndarray:
    """``frame[name].to_numpy(dtype)`` (strings as objects, NaN where missing) without building the
    Series: on a request's small tables ``frame[name]`` alone costs ~10 us, this ~2 (``array_values``)."""
    return array_values(frame._get_column_array(frame.columns.get_loc(name)), dtype)


def key_values(frame: pd.DataFrame, name: str):
    """Key column ``name`` as ``join_positions`` and ``factorize_values`` hash it fastest: its values
    (``column_values``) for a small frame, the Series itself for a large one (Arrow hashes it natively)."""
    return column_values(frame, name) if len(frame) <= _OBJECT_HASHING_MAX else frame[name]


def array_values(values, dtype=None) -> np.ndarray:
    """``np.asarray(values, dtype)`` of a column's stored values (a numpy array or pandas extension
    array), as ``Series.to_numpy(dtype)`` gives it: a read-only view of a numpy column of that dtype;
    an Arrow string array without missing values converted by Arrow directly (``to_numpy``'s own path
    costs ~6 us more on a few values, for the same strings)."""
    if isinstance(values, pd.Series):
        values = values.array
    if isinstance(values, np.ndarray):
        if dtype is not None and values.dtype != dtype:
            return values.astype(dtype)
        view = values.view()
        view.flags.writeable = False  # (the frame's own data, as pandas hands it out)
        return view
    if isinstance(values, pd.arrays.ArrowStringArray) and dtype in (None, object):
        chunked = values.__arrow_array__()
        if not chunked.null_count:
            return chunked.to_numpy(zero_copy_only=False)
    return np.asarray(values.to_numpy(dtype=dtype))


def isin(column: pd.Series, values) -> np.ndarray:
    """``column.isin(values)`` as a boolean array, by a hash-index lookup.

    pandas' ``isin`` on Arrow-backed strings builds one pyarrow scalar per wanted value: 46 ms for
    50k rows against 9k item ids, where this takes 8 ms (measured, pandas 3.1; batch scoring filters
    the request corpus's attribute and title tables by its candidates this way)."""
    wanted = pd.Index(pd.unique(_values(values)))
    return positions(wanted, column) >= 0


def lookup(ids: pd.Series, values: pd.Series, wanted: pd.Series) -> pd.Series:
    """``wanted.map(values.set_axis(ids))`` (ids unique): the value at each wanted id, NaN where the id
    is not among ``ids``; by position (one hash lookup per distinct wanted id), index of ``wanted``."""
    at = positions(pd.Index(ids), wanted)
    found = pd.Series(values.to_numpy()[np.maximum(at, 0)] if len(values) else np.full(len(at), np.nan),
                      index=wanted.index)
    return found.where(at >= 0) if (at < 0).any() else found


def positions(index: pd.Index, column) -> np.ndarray:
    """``index.get_indexer(column)`` (``index`` unique), each distinct value of ``column`` looked up
    once: a table column repeats its ids (77k attribute rows of 6.6k items in batch scoring: 1.9 ms
    instead of 5.8, measured)."""
    code, distinct = pd.factorize(column, use_na_sentinel=False)
    return index.get_indexer(distinct)[code]


def join_positions(left, right) -> tuple[np.ndarray, np.ndarray]:
    """Row positions ``(left_pos, right_pos)`` of the inner join of two key columns: in ``left``
    order, each left row's matches in ``right`` order (the rows ``pd.merge(how="inner")`` gives).

    Integer positions instead of a joined frame: on a scoring request's few rows a pandas merge
    costs 1.5-5 ms, this a tenth of that; the caller gathers only the columns it needs."""
    if len(left) + len(right) <= _OBJECT_HASHING_MAX:  # both sides coded in one pass of Python hashing
        codes, _ = factorize_values(np.concatenate([object_values(left), object_values(right)]))
        return join_codes(codes[: len(left)], codes[len(left):])
    r_code, keys = pd.factorize(_values(right), use_na_sentinel=False)  # keys: first seen first
    return join_codes(positions(pd.Index(keys), _values(left)), r_code)


def turns_before_sample(samples: pd.DataFrame, session_ids, turn_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(turn, row of samples)`` pairing each turn of a per-turn table (its ``session_ids``, a
    column or array, and ``turn_idx``) with every sample of its session whose recommendation turn comes
    after it: what each sample's dialogue context holds. In table order, then sample order, as an
    inner join would give."""
    ti, si = join_positions(session_ids, key_values(samples, "session_id"))
    before = turn_idx[ti] < column_values(samples, "turn", np.int64)[si]
    return ti[before], si[before]


def _values(column):
    """A Series or array as is (pandas hashes Arrow strings natively), anything else as an array."""
    return column if isinstance(column, (pd.Series, pd.Index, np.ndarray)) else np.asarray(column, dtype=object)


def join_codes(l_code: np.ndarray, r_code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``join_positions`` of integer key codes (a negative left code matches nothing)."""
    if len(l_code) + len(r_code) <= _DICT_MAX:
        return _join_small(l_code, r_code)
    by_key = np.argsort(r_code, kind="stable")
    sorted_code = r_code[by_key]
    lo = np.searchsorted(sorted_code, l_code, "left")
    n = np.where(l_code >= 0, np.searchsorted(sorted_code, l_code, "right") - lo, 0)
    left_pos = np.repeat(np.arange(len(l_code)), n)
    right_pos = by_key[np.repeat(lo, n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)]
    return left_pos, right_pos


def _join_small(l_code: np.ndarray, r_code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``join_codes`` of a few codes by a dict of each right code's positions (numpy's sort and
    searches cost ~20 us on a request's rows)."""
    where: dict[int, list[int]] = {}
    for k, c in enumerate(r_code.tolist()):
        where.setdefault(c, []).append(k)
    left_pos: list[int] = []
    right_pos: list[int] = []
    for k, c in enumerate(l_code.tolist()):
        found = where.get(c) if c >= 0 else None
        if found:
            left_pos += [k] * len(found)
            right_pos += found
    return np.array(left_pos, dtype=np.intp), np.array(right_pos, dtype=np.intp)


def object_values(column) -> np.ndarray:
    """``np.asarray(column, dtype=object)`` of a Series, array or sequence (``array_values`` for a
    Series' or Index's stored values)."""
    if isinstance(column, np.ndarray) and column.dtype == object:
        return column
    if isinstance(column, (pd.Series, pd.Index)):
        return array_values(column.array, object)
    return np.asarray(column, dtype=object)


def factorize_values(column, use_na_sentinel: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(column, use_na_sentinel=...)`` with the distinct values as an object array
    (first seen first; by default a missing value is one of them, else its code is -1)."""
    if len(column) <= _DICT_MAX:
        values = object_values(column).tolist()
        if set(map(type, values)) <= {str}:  # (a missing value: pandas decides how it is coded)
            return _factorize_strings(values)
    if len(column) <= _OBJECT_HASHING_MAX:
        return pd.factorize(object_values(column), use_na_sentinel=use_na_sentinel)
    codes, distinct = pd.factorize(column, use_na_sentinel=use_na_sentinel)
    return codes, np.asarray(distinct, dtype=object)


def _factorize_strings(values: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize`` of a few strings by a dict (its fixed cost is ~14 us a call)."""
    first_seen = list(dict.fromkeys(values))
    code_of = dict(zip(first_seen, range(len(first_seen))))
    distinct = np.empty(len(first_seen), dtype=object)
    distinct[:] = first_seen
    return np.array(list(map(code_of.__getitem__, values)), dtype=np.intp), distinct


def id_positions(ids: np.ndarray, wanted) -> np.ndarray:
    """Position of each ``wanted`` id (a column or array) in the unique ``ids`` (an object array; -1
    where absent): each distinct wanted id looked up once (``positions_among``)."""
    code, distinct = factorize_values(wanted)
    return positions_among(ids, distinct)[code]


def positions_among(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Position of each of ``wanted`` (an array) among the distinct ``ids`` (-1: absent), by a dict: on a
    request's 31 item ids a pandas index (``positions``: its hash engine built each call) costs
    40-100 us, this 4 us."""
    ids = ids.tolist()
    where = dict(zip(ids, range(len(ids))))  # (an id given twice: its last position)
    wanted = wanted.tolist()
    return np.array(list(map(where.get, wanted, repeat(-1, len(wanted)))), dtype=np.int64)


@dataclass(frozen=True)
class RowCodes:
    """Candidate rows' sample and item ids as integer codes (``sample``, ``item``) into their
    distinct ids (``samples``, ``items``: object arrays, first seen first)."""

    sample: np.ndarray
    samples: np.ndarray
    item: np.ndarray
    items: np.ndarray

    @classmethod
    def of(cls, rows: pd.DataFrame) -> "RowCodes":
        return cls(*factorize_values(key_values(rows, "sample_id")), *factorize_values(key_values(rows, "item_id")))


def row_codes(rows: pd.DataFrame, ctx) -> RowCodes:
    """The ``RowCodes`` of ``rows``: memoised for the latest ``rows`` object of the context, which
    every kind of a call gets (the IF and CF kinds, price and item_reaction share them)."""
    slot = ctx.memo("frames.row_codes", dict)
    if slot.get("rows") is not rows:
        slot.update(rows=rows, codes=RowCodes.of(rows))
    return slot["codes"]


def numeric_frame(columns: Mapping[str, np.ndarray], index: pd.Index) -> pd.DataFrame:
    """A kind's numeric outputs (arrays of one length) as a frame of one float64 block on ``index``:
    ``pd.DataFrame(columns, index=index)`` with every column as float64. The block is made here as
    ``pd.DataFrame(values.T, index=index, columns=..., copy=False)`` makes it (the stacked values, one
    placement), without its checks: 15 -> 4 us for a request's frame (the dict constructor: 60)."""
    if not columns:
        return pd.DataFrame(np.zeros((len(index), 0)), index=index, columns=column_index(()), copy=False)
    values = np.array(list(columns.values()), dtype=np.float64)  # (np.stack of each as float64: 4 -> 1 us)
    block = NumpyBlock(values, placement=BlockPlacement(slice(0, len(values))), ndim=2)
    manager = BlockManager([block], [column_index(tuple(columns)), index], verify_integrity=False)
    manager._consolidate_inplace()  # (one block: marks it consolidated, as the constructor does)
    return pd.DataFrame._from_mgr(manager, manager.axes)
