"""Records -> the ten corpus tables: schema check per record, then the references between records
(unknown ids, duplicates, records that depend on dropped ones) in one pass over the tables.

Both entry points (``load_corpus`` and ``Corpus.from_records``) come through :func:`build_tables`.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas._libs.internals import BlockPlacement
from pandas.api.extensions import ExtensionArray
from pandas.core.construction import extract_array
from pandas.core.internals.blocks import ExtensionBlock, NumpyBlock, get_block_type
from pandas.core.internals.managers import BlockManager
from pydantic import ValidationError

from core.corpus.records import (ADAPTERS, ID_FIELD, LIST_PROFILE_FIELDS, NUMERIC_PROFILE_FIELDS, PROFILE_FIELDS,
                                 SPLIT_RATIOS, CorpusError, Problem, Record, integral, problem_of)
from core.io import write_json

log = logging.getLogger("core.corpus")

SOURCE_TABLES = ("users", "items", "sessions", "behaviors", "samples")
CANDIDATE_COLUMNS = ("sample_id", "position", "item_id", "label")  # the candidates table's
# Columns are built as arrays with dtype objects, not as Series from dtype names: a table of a
# scoring request has a few rows, and Series construction (dtype parsing, the DataFrame's copy of
# each Series) cost 4x the values' conversion (one request's corpus: 5.0 ms -> 2.5 ms, measured);
# tables are made of them by ``frame_of``, without the DataFrame constructor's checks.
_STR = pd.StringDtype(na_value=np.nan)  # pandas' default "str" dtype
_ARROW_STR = pd.arrays.ArrowStringArray


def _str_array(values: pa.ChunkedArray, dtype: pd.StringDtype = _STR) -> pd.arrays.ArrowStringArray:
    """The ``str`` array of Arrow ``large_string`` values, made as pandas' own ``_from_pyarrow_array``
    makes it (these three attributes; tests/test_corpus_fast.py compares the two), without its
    checks and wrapping: 1.3 -> 0.4 us an array, and a request's tables have ~50 of them."""
    out = _ARROW_STR.__new__(_ARROW_STR)
    out._pa_array, out._dtype, out._cache = values, dtype, {}
    return out


@contextlib.contextmanager
def no_gc():
    """Pause the cyclic garbage collector while a corpus is read and validated: the records make
    millions of small objects, no cycles, and collections triggered by them cost several times
    the validation itself."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class RawTable:
    """The records of one source table as read, before validation."""

    file: str  # display name in problems
    records: list[tuple[int, Any]]  # (1-based line, parsed record)
    problems: list[Problem]  # read / parse problems (malformed JSON, invalid UTF-8)
    fmt: str = "records"


class _Findings:
    """Problems and the dropped-records report, in table then line order."""

    def __init__(self):
        self.problems: list[Problem] = []  # primary problems
        self.dropped: list[dict] = []  # report entries (primary and dependent)
        self.n_dropped: dict[str, int] = {}

    def drop(self, table: str, probs: list[Problem]) -> None:
        self.n_dropped[table] = self.n_dropped.get(table, 0) + 1
        self.dropped.extend({"table": table, **p.to_dict(), "kind": "invalid"} for p in probs)
        self.problems.extend(probs)

    def drop_dependent(self, table: str, dep: Problem) -> None:
        self.n_dropped[table] = self.n_dropped.get(table, 0) + 1
        self.dropped.append({"table": table, **dep.to_dict(), "kind": "dependent"})


@dataclass
class _Index:
    """The ids of a table: admitted id -> line; ids only seen on dropped records -> first such line."""

    file: str
    noun: str  # "user", "item", "session"
    key: str  # "user_id" ...
    table: str
    ok: dict[str, int] = field(default_factory=dict)
    bad: dict[str, int] = field(default_factory=dict)

    def reference(self, rid: str) -> tuple[bool, str] | None:
        """None when ``rid`` is admitted; else (dependent?, reason)."""
        if rid in self.ok:
            return None
        if rid in self.bad:
            return True, f"depends on dropped {self.noun} {rid!r} ({self.file} line {self.bad[rid]})"
        return False, f"unknown {self.key} {rid!r} (not in {self.table})"


@dataclass
class _Parsed:
    """One record after the schema check: its model, or the problems that kept it from one."""

    file: str
    line: int
    record: Any  # as read
    rid: str | None  # the id shown in problems
    model: Any  # the Record, None when the record is invalid
    problems: list[Problem]

    def problem(self, fld: str, reason: str) -> Problem:
        return Problem(self.file, self.line, self.rid, fld, reason)


def _parse(name: str, t: RawTable, known: KnownRecords | None = None) -> list[_Parsed]:
    """Schema-check every record of a table with its pydantic record model (one TypeAdapter call
    over the whole list; a second over the valid ones when some fail). A record that is one of the
    ``known`` records keeps its model."""
    recs = [r for _, r in t.records]
    adapter = ADAPTERS[name]
    models: list[Record | None] = [None] * len(recs) if known is None else [known.model(name, r) for r in recs]
    todo = list(range(len(recs))) if known is None else [i for i, m in enumerate(models) if m is None]
    errors: dict[int, list[dict]] = {}
    try:  # (nothing to check: a request's known users, behaviours and items)
        validated = adapter.validate_python(recs if known is None else [recs[i] for i in todo]) if todo else []
    except ValidationError as e:
        for err in e.errors(include_url=False):
            errors.setdefault(todo[err["loc"][0]], []).append(dict(err, loc=err["loc"][1:]))
        todo = [i for i in todo if i not in errors]
        validated = adapter.validate_python([recs[i] for i in todo])
    for i, m in zip(todo, validated):
        models[i] = m
    idf = ID_FIELD[name]
    out = []
    for i, (line, rec) in enumerate(t.records):
        v = rec.get(idf) if isinstance(rec, dict) else None
        rid = v if isinstance(v, str) else None
        probs = [problem_of(name, t.file, line, rid, err) for err in errors.get(i, ())]
        out.append(_Parsed(t.file, line, rec, rid, models[i], probs))
    return out


Refs = Callable[[dict], Iterable[tuple[str, _Index, str]]]  # record -> (field, target index, referenced id)
Check = Callable[[_Parsed], list[Problem]]


def _is_id(v) -> bool:
    return isinstance(v, str) and v != ""


def _admit(name: str, parsed: list[_Parsed], idx: _Index | None, findings: _Findings, refs: Refs | None = None,
           check: Check | None = None, last: Check | None = None) -> list[_Parsed]:
    """Resolve the references of each record, reject repeated ids, admit the rest.

    References are read from the record as given (record models do not coerce), so a record with
    a schema problem still reports its unknown ids. A reference to an id that exists nowhere is a
    problem of the record; one to a dropped record makes it a dependent drop (the first such
    reference is reported). ``check`` adds problems that need admitted records of other tables;
    the first valid record with an id wins and later ones are duplicates; ``last`` runs on a
    record about to be admitted (it is admitted when ``last`` finds nothing). Dropped ids are
    remembered so that records referring to them say why."""
    id_field = ID_FIELD[name]
    kept = []
    for p in parsed:
        probs, dep = list(p.problems), None
        if isinstance(p.record, dict):
            for fld, target, rid in (refs(p.record) if refs else ()):
                found = target.reference(rid)
                if found is None:
                    continue
                if not found[0]:
                    probs.append(p.problem(fld, found[1]))
                elif dep is None:
                    dep = p.problem(fld, found[1])
            if check is not None:
                probs.extend(check(p))
        key = p.record.get(id_field) if isinstance(p.record, dict) else None
        key = key if _is_id(key) else None
        if p.model is not None:
            if idx is not None and not probs and key in idx.ok:
                probs.append(p.problem(id_field, f"duplicate id (first defined on line {idx.ok[key]})"))
            if last is not None and not probs and dep is None:
                probs.extend(last(p))
        if probs or dep is not None:
            if idx is not None and key is not None and key not in idx.ok:
                idx.bad.setdefault(key, p.line)
            if probs:
                findings.drop(name, probs)
            else:
                findings.drop_dependent(name, dep)
            continue
        if idx is not None:
            idx.ok[key] = p.line
        kept.append(p)
    return kept


def frame_of(columns: Mapping[str, np.ndarray | pd.api.extensions.ExtensionArray | pd.Series]) -> pd.DataFrame:
    """``pd.DataFrame(columns)`` (same columns, dtypes, blocks and RangeIndex) for values that are
    1-d numpy arrays, pandas extension arrays or Series with a RangeIndex, all of one length. Numpy
    arrays are copied into their blocks (as the constructor does); extension arrays are stored as
    they are, so pass ones nobody else holds (``.copy()`` an array of another frame: Arrow data is
    shared, not copied). An object ndarray goes through the constructor, which infers its dtype
    (strings become ``str``); an object Series stays object, as there, and so does an object
    ``NumpyExtensionArray`` (which the constructor would infer).

    The blocks are made here as the constructor makes them (numpy columns of one dtype stacked in
    one block, in column order; one block per extension array; blocks in the order of each dtype's
    first column), without its checks: a third of its time for a request's tables (the 10-column
    candidate rows of one request: 31 -> 17 us); anything else goes through ``_from_arrays``."""
    if not columns:
        return pd.DataFrame(columns)
    arrays = list(columns.values())
    n, other = len(arrays[0]), False
    groups: dict[Any, list[int]] = {}  # the constructor's grouping: numpy dtype, or the identity of an extension dtype
    for i, a in enumerate(arrays):
        if type(a) is _ARROW_STR:  # most columns (an ExtensionBlock each), checked in a third of the time
            if len(a._pa_array) != n:
                raise ValueError(f"frame_of: columns of different lengths {[len(a) for a in arrays]}")
            groups.setdefault(id(a.dtype), []).append(i)
            continue
        if isinstance(a, np.ndarray):
            if a.dtype == object:  # (a NumpyExtensionArray as a Series of its dtype: kept object there)
                return pd.DataFrame({c: pd.Series(v.to_numpy(), dtype=v.dtype.numpy_dtype, copy=False)
                                     if isinstance(v, pd.arrays.NumpyExtensionArray) else v for c, v in columns.items()})
        elif not isinstance(a, ExtensionArray) or isinstance(a, pd.arrays.NumpyExtensionArray):  # its numpy array
            a = arrays[i] = extract_array(a, extract_numpy=True)
        if len(a) != n:
            raise ValueError(f"frame_of: columns of different lengths {[len(a) for a in arrays]}")
        kind = _block_of(a)
        if kind is None:
            other = True
        else:
            groups.setdefault(a.dtype if kind is NumpyBlock else id(a.dtype), []).append(i)
    names = column_index(tuple(columns))
    if other:
        return pd.DataFrame._from_arrays(arrays, columns=names, index=pd.RangeIndex(n), verify_integrity=False)
    blocks = []
    for at in groups.values():
        first = arrays[at[0]]
        if isinstance(first, np.ndarray):
            values = np.empty((len(at), n), first.dtype)
            for k, i in enumerate(at):
                values[k] = arrays[i]
            blocks.append(NumpyBlock(values, placement=BlockPlacement(tuple(at)), ndim=2))
        else:
            blocks.extend([ExtensionBlock(arrays[i], placement=BlockPlacement(i), ndim=2) for i in at])
    # (RangeIndex(n) checks its arguments: 1.8 us, 5x _simple_new's, for each of a request's ~11 frames)
    manager = BlockManager(blocks, [names, pd.RangeIndex._simple_new(range(n))], verify_integrity=False)
    # Consolidated, as the constructor leaves it: the numpy blocks have distinct dtypes (one per
    # group), which is what ``_consolidate_check`` would find.
    manager._is_consolidated = manager._known_consolidated = True
    return pd.DataFrame._from_mgr(manager, manager.axes)


# The block of a column's array by the class of its dtype (None: left to pandas): the numpy dtypes
# that the constructor stores as they are (not strings, bytes, dates), and the 1-d-only extension
# dtypes that get an ExtensionBlock (Arrow, masked ...), found on first use.
_BLOCKS: dict[type, type | None] = {type(np.dtype(t)): NumpyBlock for t in (
    bool, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.float32, np.float64, object)}


def _block_of(a) -> type | None:
    kind = _BLOCKS.get(type(a.dtype), _UNSEEN)
    if kind is NumpyBlock:
        return kind if isinstance(a, np.ndarray) and a.ndim == 1 else None
    if kind is _UNSEEN:
        dtype = a.dtype
        kind = _BLOCKS[type(dtype)] = (ExtensionBlock if isinstance(dtype, pd.api.extensions.ExtensionDtype)
                                       and not dtype._supports_2d and get_block_type(dtype) is ExtensionBlock else None)
    return kind if isinstance(a, ExtensionArray) else None


_UNSEEN = object()


@functools.lru_cache(maxsize=1024)
def column_index(names: tuple[str, ...]) -> pd.Index:
    """The (immutable) column index of ``names``, shared by the frames with these columns: the
    ``str`` index built from a list costs as much as the rest of a small frame."""
    return pd.Index(list(names))


def column_array(df: pd.DataFrame, name: str):
    """The array ``df`` stores for column ``name`` (numpy or extension array, not a copy: only read
    it, or ``take_rows`` from it); ``df[name].array`` builds a Series for it (15-20 us)."""
    at = df.columns.get_loc(name)
    return df._get_column_array(at) if isinstance(at, int) else df[name].array


# A request's few samples: their candidates' positions among them, and the rows of their columns,
# are found with Python values: pyarrow's compute calls (index_in, take) cost ~80 us each in a live
# request, their code cold, 10x what they cost in a loop (candidate_rows 0.24 -> 0.11 ms, live flow).
_FEW, _FEW_ROWS = 64, 256  # rows of the table looked in, rows looked up / taken


def take_columns(columns: Mapping[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """``{c: v.take(rows)}`` of a frame's column arrays (numpy or extension arrays of one length) for
    positions ``rows`` known to be valid (0 <= row < len). The Arrow-backed columns are taken together
    by one pyarrow ``Table.take``, without pandas' checks of ``rows``: per column, these cost more
    than the take of a request's rows (its 31 items' 7 string columns: 84 -> 53 us)."""
    arrow = [c for c, v in columns.items() if isinstance(v, pd.arrays.ArrowExtensionArray)]
    taken = {}
    if arrow and len(rows) <= _FEW_ROWS:  # str columns of a few rows: gathered as Python values (below)
        few = [c for c in arrow if type(columns[c]) is _ARROW_STR and len(columns[c]) <= _FEW]
        at = rows.tolist()
        lists = [columns[c]._pa_array.to_pylist() for c in few]
        taken = {c: _str_array(a._pa_array, columns[c].dtype) for c, a in zip(few, _str_cols(*([v[k] for k in at]
                                                                                                 for v in lists)))}
        arrow = [c for c in arrow if c not in taken]
    if arrow:
        table = pa.Table.from_arrays([columns[c]._pa_array for c in arrow], names=[str(k) for k in range(len(arrow))])
        taken = {c: _str_array(v, columns[c].dtype) if type(columns[c]) is _ARROW_STR
                 else columns[c]._from_pyarrow_array(v) for c, v in zip(arrow, table.take(rows).columns)}
    return {c: taken[c] if c in taken else v.take(rows) for c, v in columns.items()}


def positions_in(ids, among) -> np.ndarray | None:
    """The position of each of ``ids`` in ``among`` (two id columns' arrays), or None when an id of
    ``ids`` is not there or ``among`` repeats one. Arrow strings without nulls are looked up by
    pyarrow (a pandas Index of them costs 10x for a request's 31 rows), others by a pandas Index."""
    if (isinstance(ids, pd.arrays.ArrowStringArray) and isinstance(among, pd.arrays.ArrowStringArray)
            and not ids._pa_array.null_count and not among._pa_array.null_count):
        if len(among) <= _FEW and len(ids) <= _FEW_ROWS:  # (a request's: as Python values, see _FEW)
            keys = among._pa_array.to_pylist()
            position = {v: k for k, v in enumerate(keys)}
            at = [position.get(v, -1) for v in ids._pa_array.to_pylist()]
            return None if len(position) != len(keys) or -1 in at else np.array(at, np.int32)  # (index_in's dtype)
        values = among._pa_array.combine_chunks()
        if len(values) > 1 and pc.count_distinct(values).as_py() != len(values):
            return None
        at = pc.index_in(ids._pa_array, value_set=values)
        return None if at.null_count else at.to_numpy()
    index = pd.Index(among)  # (one hash table answers is_unique and get_indexer)
    at = index.get_indexer(ids) if index.is_unique else None
    return None if at is None or (at < 0).any() else at


def _str_col(values):
    # Record models give str or None: an Arrow array of them directly (half the cost of pd.array)
    try:
        return _str_array(pa.chunked_array([pa.array(values, pa.large_string())]))
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # anything else: as pandas converts it
        return pd.array(values, dtype=_STR)


def _str_cols(*columns: list) -> list:
    """``[_str_col(c) for c in columns]``: one Arrow array of all their values, sliced per column
    (a table's columns share its buffers). A pyarrow conversion costs more than a request's few
    values (the 19 string columns of a one-user ``users`` table: 130 -> 50 us)."""
    try:
        values = pa.chunked_array([pa.array([v for c in columns for v in c], pa.large_string())])
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # anything but str and None: column by column
        return [_str_col(c) for c in columns]
    out, start = [], 0
    for c in columns:
        out.append(_str_array(values.slice(start, len(c))))
        start += len(c)
    return out


def _object_col(values: list) -> pd.arrays.NumpyExtensionArray:
    """The values as they are (lists, raw JSON values) in an object column: what an object Series
    holds (``frame_of`` keeps it object), at a tenth of its cost for a request's one user."""
    return pd.arrays.NumpyExtensionArray(np.fromiter(values, object, len(values)))


def _boolean_col(values: list) -> pd.arrays.BooleanArray:
    """``pd.array(values, dtype="boolean")`` of True / False / None, from its two arrays (a tenth of the cost)."""
    n = len(values)
    return pd.arrays.BooleanArray(np.fromiter((v is True for v in values), bool, n),
                                  np.fromiter((v is None for v in values), bool, n))


def _int_col(values, dtype=np.int64) -> np.ndarray:
    return np.asarray(values, dtype=dtype)


# ------------------------------------------------------------------------------------------------
# tables
# ------------------------------------------------------------------------------------------------
def _users_table(kept: list[_Parsed]) -> pd.DataFrame:
    profiles = [p.model.profile for p in kept]
    values = {"user_id": [p.model.user_id for p in kept]}
    values.update((k, [getattr(pr, k) if pr is not None else None for pr in profiles]) for k in PROFILE_FIELDS)
    strings = [k for k in values if k not in NUMERIC_PROFILE_FIELDS and k not in LIST_PROFILE_FIELDS]
    cols: dict[str, Any] = dict(zip(strings, _str_cols(*(values[k] for k in strings))))
    for k in NUMERIC_PROFILE_FIELDS:
        cols[k] = np.array([np.nan if v is None else v for v in values[k]], dtype=np.float64)
    for k in LIST_PROFILE_FIELDS:
        cols[k] = _object_col(values[k])
    cols = {k: cols[k] for k in values}  # the columns in their order
    extras = [pr.extra_fields() if pr is not None else {} for pr in profiles]
    for k in sorted({k for e in extras for k in e}):
        cols[k] = _object_col([e.get(k) for e in extras])
    return frame_of(cols)


def _items_tables(kept: list[_Parsed], known: _KnownItemRows | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``items`` and ``item_attrs`` tables of the admitted item records and of the ``known`` ones
    (rows taken from their ``KnownItems``), in record (line) order."""
    ms = [p.model for p in kept]
    if known is None or not len(known.rows):
        return _validated_items_tables(ms)
    k_items, k_attrs, k_len = known.items.take(known.rows)
    if not ms:
        return k_items, k_attrs
    f_items, f_attrs = _validated_items_tables(ms)
    f_len = np.fromiter((len(m.attributes) for m in ms), np.int64, len(ms))
    # Known rows first, then the validated ones; each item's rows are put back in record order.
    src = np.argsort(np.concatenate([known.lines, np.fromiter((p.line for p in kept), np.int64, len(kept))]),
                     kind="stable")
    n_attrs = np.concatenate([k_len, f_len])[src]
    start = np.concatenate([np.cumsum(k_len) - k_len, len(k_attrs) + np.cumsum(f_len) - f_len])[src]
    attr_rows = np.repeat(start - (np.cumsum(n_attrs) - n_attrs), n_attrs) + np.arange(n_attrs.sum())
    return (pd.concat([k_items, f_items], ignore_index=True).take(src).reset_index(drop=True),
            pd.concat([k_attrs, f_attrs], ignore_index=True).take(attr_rows).reset_index(drop=True))


def _validated_items_tables(ms: list) -> tuple[pd.DataFrame, pd.DataFrame]:
    items = dict(zip(("item_id", "category", "shop_id", "title"), _str_cols(
        [m.item_id for m in ms], [m.category for m in ms], [m.shop_id for m in ms], [m.title for m in ms])))
    items = frame_of({**items, "price": np.asarray([np.nan if m.price is None else m.price for m in ms],
                                                   dtype=np.float64)})
    a_item, a_name, a_val = [], [], []
    for m in ms:
        if m.attributes:
            a_item.extend([m.item_id] * len(m.attributes))
            a_name.extend(n for n, _ in m.attributes)
            a_val.extend(v for _, v in m.attributes)
    item_attrs = frame_of(dict(zip(("item_id", "name", "value"), _str_cols(a_item, a_name, a_val))))
    return items, item_attrs


def _sessions_tables(kept: list[_Parsed]):
    t_sid, t_idx, t_role, t_text, t_intent, t_rec, t_ann = [], [], [], [], [], [], []
    ti_sid, ti_idx, ti_item = [], [], []
    pw_sid, pw_idx, pw_text, pw_type = [], [], [], []
    ms = [p.model for p in kept]
    for m in ms:
        sid = m.session_id
        for j, tr in enumerate(m.turns):
            t_sid.append(sid)
            t_idx.append(j)
            t_role.append(tr.role)
            t_text.append(tr.text)
            t_intent.append(tr.intent)
            t_rec.append(tr.recommend)
            t_ann.append(tr.preference_words is not None)
            if tr.items:
                for it in tr.items:
                    ti_sid.append(sid)
                    ti_idx.append(j)
                    ti_item.append(it)
            if tr.preference_words:
                for pw in tr.preference_words:
                    pw_sid.append(sid)
                    pw_idx.append(j)
                    pw_text.append(pw.text)
                    pw_type.append(pw.type)
    (s_sid, s_uid, s_shop, t_sid, t_role, t_text, t_intent, ti_sid, ti_item, pw_sid, pw_text, pw_type) = _str_cols(
        [m.session_id for m in ms], [m.user_id for m in ms], [m.shop_id for m in ms],
        t_sid, t_role, t_text, t_intent, ti_sid, ti_item, pw_sid, pw_text, pw_type)
    sessions = frame_of({"session_id": s_sid, "user_id": s_uid, "shop_id": s_shop})
    turns = frame_of({"session_id": t_sid, "turn_idx": _int_col(t_idx), "role": t_role, "text": t_text,
                      "intent": t_intent, "recommend": _boolean_col(t_rec), "pref_annotated": _int_col(t_ann, bool)})
    turn_items = frame_of({"session_id": ti_sid, "turn_idx": _int_col(ti_idx), "item_id": ti_item})
    pref_words = frame_of({"session_id": pw_sid, "turn_idx": _int_col(pw_idx), "text": pw_text, "type": pw_type})
    return sessions, turns, turn_items, pref_words


def _behaviors_table(kept: list[_Parsed]) -> pd.DataFrame:
    ms = [p.model for p in kept]
    user_id, kind, item_id = _str_cols([m.user_id for m in ms], [m.type for m in ms], [m.item_id for m in ms])
    return frame_of({"user_id": user_id, "type": kind, "item_id": item_id, "ts": _int_col([m.ts for m in ms])})


def split_for_session(session_id: str, seed: int = 0, ratios: tuple[float, float, float] = SPLIT_RATIOS) -> str:
    """The train:valid:test split (``ratios``, 8:1:1 by default) of a session without an explicit
    one: a seeded hash of its id, so it does not depend on file order or on the other sessions."""
    h = hashlib.blake2b(f"{seed}\x1f{session_id}".encode(), digest_size=8).digest()
    u = int.from_bytes(h, "big") / 2.0 ** 64
    return "train" if u < ratios[0] else ("valid" if u < ratios[0] + ratios[1] else "test")


def _samples_tables(kept: list[_Parsed], session_user: dict[str, str], explicit: dict[str, tuple[str, int]],
                    seed: int, split_ratios: tuple[float, float, float] = SPLIT_RATIOS):
    """Samples without a split take their session's explicit one, else the seeded hash split."""
    n_assigned = 0
    s_split = []
    cache: dict[str, str] = {}
    ms = [p.model for p in kept]
    for m in ms:
        split = m.split
        if split is None:
            n_assigned += 1
            ses = m.session_id
            split = explicit[ses][0] if ses in explicit else cache.get(ses)
            if split is None:
                split = cache[ses] = split_for_session(ses, seed, split_ratios)
        s_split.append(split)
    c_sid, c_pos, c_item, c_lab = [], [], [], []
    for m in ms:
        k = len(m.candidates)
        c_sid.extend([m.sample_id] * k)
        c_pos.extend(range(k))
        c_item.extend(m.candidates)
        c_lab.extend([c == m.label_item for c in m.candidates])
    s_sid, s_ses, s_uid, s_label, s_split, c_sid, c_item = _str_cols(
        [m.sample_id for m in ms], [m.session_id for m in ms], [session_user[m.session_id] for m in ms],
        [m.label_item for m in ms], s_split, c_sid, c_item)
    samples = frame_of({"sample_id": s_sid, "session_id": s_ses, "user_id": s_uid, "turn": _int_col([m.turn for m in ms]),
                        "label_item": s_label, "split": s_split})
    candidates = frame_of(dict(zip(CANDIDATE_COLUMNS, (c_sid, _int_col(c_pos, np.int32), c_item,
                                                       _int_col(c_lab, np.int8)))))
    return samples, candidates, n_assigned


# ------------------------------------------------------------------------------------------------
# the one build path
# ------------------------------------------------------------------------------------------------
class KnownItems:
    """Item records validated once (e.g. a trained run's catalogue) with their rows of the ``items``
    and ``item_attrs`` tables. :func:`build_tables` admits an item record *equal* to one of them
    without checking it again and takes these rows for it: they are the rows its validation gives
    (a function of the record alone). Records that fail validation, or share an id with another,
    are left out (a record equal to one of them is validated, and refused, as usual)."""

    def __init__(self, records: Iterable[Mapping]):
        records = [r for r in records if isinstance(r, dict)]
        ids = [r.get("item_id") for r in records]
        counts: dict = {}
        for i in ids:
            counts[i] = counts.get(i, 0) + 1
        records = [r for r, i in zip(records, ids) if counts[i] == 1]
        raw = {name: RawTable(f"<known>/{name}", list(enumerate(records if name == "items" else [], 1)), [])
               for name in SOURCE_TABLES}
        with no_gc():
            tables, _ = build_tables(raw, policy="skip", seed=0, source="<known>", report_path=None)
        self.items, self.item_attrs = tables["items"], tables["item_attrs"]
        by_id = {r["item_id"]: r for r in records}
        self._row = {iid: (k, by_id[iid]) for k, iid in enumerate(self.items["item_id"].tolist())}
        # item_attrs holds each item's rows together, in item order
        code = pd.Index(self.items["item_id"]).get_indexer(self.item_attrs["item_id"])
        if (np.diff(code) < 0).any():
            raise AssertionError("item_attrs rows are not grouped in item order")
        self._start = np.searchsorted(code, np.arange(len(self.items)))
        self._len = np.searchsorted(code, np.arange(len(self.items)), side="right") - self._start
        # Rows are taken column by column (``table.take(rows).reset_index()`` costs 3x for a request);
        # the str columns of both tables are slices of one Arrow array, taken by one ``take``: its
        # overhead is most of a request's take (31 items' 7 str columns: two takes cost 3x one).
        columns = [column_array(t, c) for t in (self.items, self.item_attrs) for c in t.columns]
        strs = [v for v in columns if type(v) is _ARROW_STR]
        self._strings = pa.chunked_array([pa.concat_arrays([v._pa_array.combine_chunks() for v in strs])],
                                         pa.large_string())
        starts = np.cumsum([len(v) for v in strs], dtype=np.int64) - [len(v) for v in strs]
        at = iter(starts)
        columns = [_str_array(self._strings.slice(next(at), len(v)), v.dtype) if type(v) is _ARROW_STR else v
                   for v in columns]
        n_item = len(self.items.columns)
        self.items = frame_of(dict(zip(self.items.columns, columns[:n_item])))
        self.item_attrs = frame_of(dict(zip(self.item_attrs.columns, columns[n_item:])))
        self._item_columns = {c: column_array(self.items, c) for c in self.items.columns}
        self._attr_columns = {c: column_array(self.item_attrs, c) for c in self.item_attrs.columns}
        # the starts of each table's str columns as a column vector (rows + starts: their rows in _strings)
        n_item_strs = sum(type(v) is _ARROW_STR for v in columns[:n_item])
        self._item_offsets, self._attr_offsets = starts[:n_item_strs, None], starts[n_item_strs:, None]

    def __len__(self) -> int:
        return len(self._row)

    def row(self, record) -> int | None:
        """The row of an item record equal to a known one, else None."""
        iid = record.get("item_id") if isinstance(record, dict) else None
        found = self._row.get(iid) if isinstance(iid, str) else None
        return found[0] if found is not None and (found[1] is record or found[1] == record) else None

    def take(self, rows: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
        """The items rows ``rows``, their item_attrs rows (item by item) and each one's count of them."""
        # (few numpy calls: in a live request each costs several times its cost in a loop, its code cold)
        n = self._len[rows]
        attr_rows = np.repeat(self._start[rows] - (n.cumsum() - n), n) + np.arange(n.sum())
        strings = self._strings.take(pa.array(np.concatenate(((rows + self._item_offsets).ravel(),
                                                              (attr_rows + self._attr_offsets).ravel()))))
        k = len(self._item_offsets) * len(rows)
        return (_rows_of(self._item_columns, rows, strings.slice(0, k)),
                _rows_of(self._attr_columns, attr_rows, strings.slice(k)), n)


def _rows_of(columns: dict[str, Any], rows: np.ndarray, strings: pa.ChunkedArray) -> pd.DataFrame:
    """The table of rows ``rows`` of ``columns``, whose str columns' values are ``strings``, in turn."""
    at = itertools.count(0, len(rows))
    return frame_of({c: _str_array(strings.slice(next(at), len(rows)), v.dtype) if type(v) is _ARROW_STR
                     else v.take(rows) for c, v in columns.items()})


class KnownRecords:
    """Records validated once that never change (a trained run's users and behaviour logs, as
    ``pipelines.score.Reference`` memoises them), by table: in :func:`build_tables` a record that
    *is* one of them (the same object) keeps its record model instead of a second schema check;
    references between records are resolved as usual. Invalid records are not kept (a record
    equal to one is checked, and reported, as usual)."""

    def __init__(self) -> None:
        self._models: dict[str, dict[int, tuple[Any, Record]]] = {name: {} for name in SOURCE_TABLES}

    def add(self, table: str, records: list) -> None:
        """Validate ``records`` of ``table`` (objects the caller never mutates) and keep the valid ones."""
        parsed = _parse(table, RawTable(f"<known>/{table}", list(enumerate(records, 1)), []))
        self._models[table].update((id(p.record), (p.record, p.model)) for p in parsed if p.model is not None)

    def model(self, table: str, record) -> Record | None:
        found = self._models[table].get(id(record))
        return found[1] if found is not None and found[0] is record else None


@dataclass
class _KnownItemRows:
    """The item records of a table equal to known ones (their ``lines``, ``ids`` and ``rows`` in
    ``items``), and the table of the ``rest`` (validated as usual)."""

    items: KnownItems
    lines: np.ndarray
    ids: list[str]
    rows: np.ndarray
    rest: RawTable

    @classmethod
    def split(cls, t: RawTable, known: KnownItems) -> "_KnownItemRows | None":
        """None when some item id appears twice: then every record is validated (the duplicate is
        reported as usual)."""
        lines, ids, rows, rest, seen = [], [], [], [], set()
        for p in t.records:  # (one pass, four before: a request's 37 items 62 -> 36 us, interleaved)
            line, r = p
            iid = r.get("item_id") if isinstance(r, dict) else None
            if isinstance(iid, str):
                if iid in seen:
                    return None
                seen.add(iid)
                row = known.row(r)
                if row is not None:
                    lines.append(line)
                    ids.append(iid)
                    rows.append(row)
                    continue
            rest.append(p)
        return cls(known, np.array(lines, np.int64), ids, np.array(rows, np.int64),
                   RawTable(t.file, rest, t.problems, t.fmt))


def build_tables(raw: dict[str, RawTable], policy: str, seed: int, source: str,
                 report_path: str | Path | None,
                 split_ratios: tuple[float, float, float] = SPLIT_RATIOS,
                 known_items: KnownItems | None = None,
                 known_records: KnownRecords | None = None) -> tuple[dict[str, pd.DataFrame], dict]:
    """Validate the five source tables and normalise them into the ten corpus tables.
    Returns (tables by name, meta); raises :class:`CorpusError` under ``policy="strict"``.
    ``known_items``: item records equal to one of these are not checked again (``KnownItems``);
    ``known_records``: records that are one of these keep their models (``KnownRecords``)."""
    if policy not in ("strict", "skip"):
        raise ValueError(f"policy must be 'strict' or 'skip', not {policy!r}")
    known = _KnownItemRows.split(raw["items"], known_items) if known_items is not None and len(known_items) else None
    if known is not None:
        raw = {**raw, "items": known.rest}
    findings = _Findings()
    for name in SOURCE_TABLES:  # read/parse problems first, in table order
        for p in raw[name].problems:
            findings.drop(name, [p])
    parsed = {name: _parse(name, raw[name], known_records) for name in SOURCE_TABLES}

    users = _Index(raw["users"].file, "user", "user_id", "users")
    items = _Index(raw["items"].file, "item", "item_id", "items")
    sessions = _Index(raw["sessions"].file, "session", "session_id", "sessions")

    def session_refs(rec: dict):
        if _is_id(rec.get("user_id")):
            yield "user_id", users, rec["user_id"]
        turns = rec.get("turns")
        for j, tr in enumerate(turns if isinstance(turns, list) else ()):
            its = tr.get("items") if isinstance(tr, dict) else None
            if its and isinstance(its, list):  # (admitted ids are skipped here: nothing to report)
                yield from ((f"turns[{j}].items[{k}]", items, it) for k, it in enumerate(its)
                            if isinstance(it, str) and it not in items.ok)

    def behavior_refs(rec: dict):
        if _is_id(rec.get("user_id")):
            yield "user_id", users, rec["user_id"]
        if _is_id(rec.get("item_id")):
            yield "item_id", items, rec["item_id"]

    def sample_refs(rec: dict):
        if _is_id(rec.get("session_id")):
            yield "session_id", sessions, rec["session_id"]
        cands = rec.get("candidates")
        seen: set[str] = set()
        for k, c in enumerate(cands if isinstance(cands, list) else ()):
            if isinstance(c, str) and c not in items.ok and c not in seen:
                seen.add(c)
                yield f"candidates[{k}]", items, c

    kept_users = _admit("users", parsed["users"], users, findings)
    kept_items = _admit("items", parsed["items"], items, findings)
    if known is not None:  # admitted as they are (their ids are all distinct from the others)
        items.ok.update(zip(known.ids, known.lines.tolist()))
    kept_sessions = _admit("sessions", parsed["sessions"], sessions, findings, session_refs)
    kept_behaviors = _admit("behaviors", parsed["behaviors"], None, findings, behavior_refs)
    roles = {p.model.session_id: (p.model.user_id, [t.role for t in p.model.turns]) for p in kept_sessions}

    def sample_check(p: _Parsed) -> list[Problem]:
        """The sample's turn and user against its session; its label among its candidates."""
        rec, probs = p.record, []
        info = roles.get(rec.get("session_id")) if isinstance(rec.get("session_id"), str) else None
        turn = integral(rec.get("turn"))
        if info is not None and isinstance(turn, int) and not isinstance(turn, bool):
            uid, r = info
            if not 1 <= turn <= len(r) - 1:
                probs.append(p.problem("turn", f"out of range: must be in 1..{len(r) - 1} (the session has {len(r)} "
                                               f"turns and at least one turn of context), got {turn}"))
            elif r[turn] != "staff":
                probs.append(p.problem("turn", f"must index a staff turn (the recommendation), turns[{turn}] has "
                                               f"role {r[turn]!r}"))
        label, cands = rec.get("label_item"), rec.get("candidates")
        if _is_id(label) and isinstance(cands, list) and cands and label not in cands:
            probs.append(p.problem("label_item", f"label {label!r} is not among the candidates"))
        if info is not None and rec.get("user_id") is not None and rec["user_id"] != info[0]:
            probs.append(p.problem("user_id", f"{rec['user_id']!r} differs from the session's user {info[0]!r}"))
        return probs

    explicit: dict[str, tuple[str, int]] = {}  # session -> (split, line) of its first admitted sample with one

    def one_split_per_session(p: _Parsed) -> list[Problem]:
        m = p.model
        if m.split is None:
            return []
        prev = explicit.get(m.session_id)
        if prev is None:
            explicit[m.session_id] = (m.split, p.line)
        elif prev[0] != m.split:
            return [p.problem("split", f"session {m.session_id!r} already has a sample in split {prev[0]!r} "
                                       f"(line {prev[1]}); a session must not span splits")]
        return []

    samples_idx = _Index(raw["samples"].file, "sample", "sample_id", "samples")
    kept_samples = _admit("samples", parsed["samples"], samples_idx, findings,
                          sample_refs, sample_check, one_split_per_session)

    if findings.problems and policy == "strict":
        raise CorpusError(findings.problems, source=source)
    tables = {"users": _users_table(kept_users)}
    tables["items"], tables["item_attrs"] = _items_tables(kept_items, known)
    tables["sessions"], tables["turns"], tables["turn_items"], tables["pref_words"] = _sessions_tables(kept_sessions)
    tables["behaviors"] = _behaviors_table(kept_behaviors)
    session_user = {k: v[0] for k, v in roles.items()}
    tables["samples"], tables["candidates"], n_assigned = _samples_tables(
        kept_samples, session_user, explicit, seed, split_ratios)
    meta = {
        "source": source,
        "policy": policy,
        "seed": seed,
        "formats": {n: raw[n].fmt for n in SOURCE_TABLES},
        "n_problems": len(findings.problems),
        "n_dropped": dict(findings.n_dropped),
        "dropped": findings.dropped,
        "splits_assigned": n_assigned,
    }
    if findings.dropped:
        log.warning("corpus %s: dropped %s record(s) (%d problem(s))", source,
                    sum(findings.n_dropped.values()), len(findings.problems))
    if report_path is not None:
        rp = write_json(report_path, {k: meta[k] for k in ("source", "policy", "n_problems", "n_dropped", "dropped")})
        meta["report_path"] = str(rp)
    return tables, meta
