"""The in-memory corpus: E-ConvRec-format tables as pandas DataFrames.

File format: ``docs/data_format.md``. Every table is in long form so that feature extractors can
work with joins and group-bys instead of per-row Python loops.

CONTRACT (other modules rely on these names and columns):

* ``users``       user_id, then one column per profile field (lists stay Python lists; missing = None/NaN)
* ``items``       item_id, category, shop_id, title, price (float64, NaN when null)
* ``item_attrs``  item_id, name, value        -- items.attributes in long form, values as str
* ``sessions``    session_id, user_id, shop_id
* ``turns``       session_id, turn_idx, role, text, intent, recommend, pref_annotated (bool: the turn
                  carried a ``preference_words`` list, possibly empty)
* ``turn_items``  session_id, turn_idx, item_id                -- items linked (mentioned) in a turn
* ``pref_words``  session_id, turn_idx, text, type             -- preference-word annotations
* ``behaviors``   user_id, type, item_id, ts
* ``samples``     sample_id, session_id, user_id, turn, label_item, split ("train"|"valid"|"test")
* ``candidates``  sample_id, position, item_id, label (int8; 1 for the label item)

``candidate_rows()`` is the row set every feature is computed for.

Loading
-------
:func:`load_corpus` (a directory of ``*.jsonl`` or ``*.parquet`` tables) and
:meth:`Corpus.from_records` (Python dicts, e.g. the records of a scoring request) share one
validation / normalisation path (:func:`_build`): every record is checked up front (JSON, UTF-8,
field presence and types, enum values, id uniqueness, references between tables, sample turn and
label sanity); problems carry the file, the 1-based line (record / row) number, the record id,
the field (a dotted path such as ``turns[3].items[0]``) and a reason. With ``policy="strict"``
any problem raises :class:`CorpusError`; with ``policy="skip"`` offending records, and the
records that depend on them (a session of a dropped user, the samples of a dropped session ...),
are dropped and listed in ``corpus.meta["dropped"]`` (and written to ``report_path`` as JSON).

Column dtypes: id and text columns use pandas' ``str`` dtype (NaN for missing), ``turn_idx``,
``turn`` and ``ts`` int64, ``position`` int32, ``label`` int8, ``recommend`` the nullable
``boolean`` dtype, ``pref_annotated`` bool, ``price`` and the numeric profile fields float64, the
list profile field and unknown profile fields object (raw JSON values). The 20 known profile
fields (:data:`PROFILE_FIELDS`) are always columns, in that order; unknown ones follow, sorted.

Splits: a sample's ``split`` is taken from the file when given. Samples without one get the
split of their session if another sample of it has one, otherwise one drawn per session from a
seeded hash of the session id (8:1:1, independent of file order and of other sessions), so a
session never spans two splits.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

TABLE_NAMES = ("users", "items", "item_attrs", "sessions", "turns", "turn_items", "pref_words", "behaviors",
               "samples", "candidates")
SOURCE_TABLES = ("users", "items", "sessions", "behaviors", "samples")
REQUIRED_TABLES = ("users", "items", "sessions", "samples")

PROFILE_FIELDS = (
    "user_level", "sex", "age", "marital_status", "education", "profession", "has_children", "city_level",
    "province", "brand_preference", "avg_pay_monthly", "purchasing_power", "top3_categories_recent",
    "price_sensitivity", "promotion_sensitivity", "preferred_color", "membership_years", "active_hours",
    "device_type", "shopping_frequency",
)
NUMERIC_PROFILE_FIELDS = frozenset({"avg_pay_monthly", "membership_years"})
LIST_PROFILE_FIELDS = frozenset({"top3_categories_recent"})
ROLES = ("user", "staff")
PREF_TYPES = ("descriptive", "category", "negative", "comparative")
BEHAVIOR_TYPES = ("click", "cart", "favorite", "purchase")
SPLITS = ("train", "valid", "test")
SPLIT_RATIOS = (0.8, 0.1, 0.1)
# E-ConvRec table 5; documented, not enforced (any string is a valid intent).
INTENTS = ("Inform Preference", "Request Attributes", "Don't care", "Confirmation", "Other")
MAX_LISTED_PROBLEMS = 20

_STR = "str"


# ------------------------------------------------------------------------------------------------
# problems
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One validation finding. ``line`` is 1-based (the line of a JSON Lines file, the row of a
    parquet file, the position of a record passed to ``from_records``); 0 = the whole file."""

    file: str
    line: int
    id: str | None
    field: str
    reason: str

    def __str__(self) -> str:
        rid = f" (id {self.id!r})" if self.id is not None else ""
        return f"{self.file}:{self.line}: field {self.field!r}: {self.reason}{rid}"

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "id": self.id, "field": self.field, "reason": self.reason}


class CorpusError(ValueError):
    """The corpus does not satisfy the data contract. ``problems`` lists every finding."""

    def __init__(self, problems: list[Problem], source: str = ""):
        self.problems = list(problems)
        self.source = source
        n = len(self.problems)
        head = f"corpus {source!s} is invalid: {n} problem(s)" if source else f"corpus is invalid: {n} problem(s)"
        shown = "\n".join(f"  - {p}" for p in self.problems[:MAX_LISTED_PROBLEMS])
        more = f"\n  ... and {n - MAX_LISTED_PROBLEMS} more" if n > MAX_LISTED_PROBLEMS else ""
        hint = "\n(load with policy='skip' to drop offending records and get a report)" if n else ""
        super().__init__(f"{head}\n{shown}{more}{hint}")


# ------------------------------------------------------------------------------------------------
# the corpus
# ------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Corpus:
    users: pd.DataFrame
    items: pd.DataFrame
    item_attrs: pd.DataFrame
    sessions: pd.DataFrame
    turns: pd.DataFrame
    turn_items: pd.DataFrame
    pref_words: pd.DataFrame
    behaviors: pd.DataFrame
    samples: pd.DataFrame
    candidates: pd.DataFrame
    root: Path | None = None
    meta: dict = field(default_factory=dict)
    _fingerprint: tuple | None = field(default=None, init=False, repr=False, compare=False)

    def candidate_rows(self) -> pd.DataFrame:
        """One row per (sample, candidate): row_id, sample_id, session_id, user_id, turn, item_id,
        position, label, split. Ordered by sample then candidate position; ``row_id`` is 0..n-1."""
        rows = self.candidates.merge(
            self.samples[["sample_id", "session_id", "user_id", "turn", "split"]], on="sample_id", how="left",
            sort=False,
        )
        rows.insert(0, "row_id", range(len(rows)))
        return rows

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_records(
        cls,
        users: Iterable[Mapping] | None = None,
        items: Iterable[Mapping] | None = None,
        sessions: Iterable[Mapping] | None = None,
        behaviors: Iterable[Mapping] | None = None,
        samples: Iterable[Mapping] | None = None,
        policy: str = "strict",
        source: str = "<requests>",
        seed: int = 0,
        report_path: str | Path | None = None,
    ) -> "Corpus":
        """Build a corpus from records shaped like the JSON Lines format (``docs/data_format.md``),
        with exactly the validation of :func:`load_corpus`. Problems name ``<source>/<table>`` as
        file and the 1-based position of the record as line."""
        raw = {}
        given = {"users": users, "items": items, "sessions": sessions, "behaviors": behaviors, "samples": samples}
        for name, recs in given.items():
            recs = [] if recs is None else recs
            raw[name] = _Table(f"{source}/{name}", [(i + 1, r) for i, r in enumerate(recs)], [])
        return _build(raw, policy=policy, seed=seed, source=source, root=None, report_path=report_path)

    # -- identity ----------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Stable content hash (sha256 hex) of the ten tables: column names, dtypes and values.
        ``root`` and ``meta`` do not count. Cached per set of table objects (assigning a new table
        invalidates it; mutating a table in place does not, so treat tables as immutable)."""
        key = tuple(id(getattr(self, n)) for n in TABLE_NAMES)
        if self._fingerprint is None or self._fingerprint[0] != key:
            h = hashlib.sha256()
            for name in TABLE_NAMES:
                df = getattr(self, name)
                h.update(name.encode())
                h.update(json.dumps([[str(c) for c in df.columns], [str(t) for t in df.dtypes], len(df)]).encode())
                if len(df) and len(df.columns):
                    h.update(pd.util.hash_pandas_object(_hashable(df), index=False).to_numpy().tobytes())
            self._fingerprint = (key, h.hexdigest())
        return self._fingerprint[1]

    def equals(self, other: object) -> bool:
        """Same tables (values, dtypes, column order); ``root`` and ``meta`` are ignored."""
        if not isinstance(other, Corpus):
            return False
        return all(getattr(self, n).equals(getattr(other, n)) for n in TABLE_NAMES)

    def __eq__(self, other: object) -> bool:  # dataclass eq would compare DataFrames elementwise
        if not isinstance(other, Corpus):
            return NotImplemented
        return self.equals(other)

    __hash__ = None  # mutable

    # -- persistence -------------------------------------------------------------------------------
    def save(self, out_dir: str | Path) -> Path:
        """Write the corpus as JSON Lines (``users.jsonl`` ... ``samples.jsonl``) into ``out_dir``
        (created if needed). ``load_corpus(c.save(d)) == c`` for any loaded corpus ``c``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, lines in (("users", _users_records(self)), ("items", _items_records(self)),
                            ("sessions", _sessions_records(self)), ("behaviors", _behaviors_records(self)),
                            ("samples", _samples_records(self))):
            _write_jsonl(out / f"{name}.jsonl", lines)
        return out

    # -- summaries ---------------------------------------------------------------------------------
    def __repr__(self) -> str:
        sizes = ", ".join(f"{n}={len(getattr(self, n))}" for n in TABLE_NAMES)
        return f"Corpus({sizes}, root={str(self.root) if self.root else None!r})"


def _hashable(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns (lists, mixed raw values) as canonical JSON strings for hashing."""
    out = {}
    for c in df.columns:
        col = df[c]
        if col.dtype == object:
            col = col.map(lambda v: json.dumps(v, ensure_ascii=False, sort_keys=True, default=str)
                          if not _is_missing(v) else "\x00null")
        out[str(c)] = col
    return pd.DataFrame(out)


# ------------------------------------------------------------------------------------------------
# loading
# ------------------------------------------------------------------------------------------------
@dataclass
class _Table:
    file: str  # display name in problems
    records: list[tuple[int, Any]]  # (1-based line, parsed record)
    problems: list[Problem]  # read / parse problems (malformed JSON, invalid UTF-8)
    fmt: str = "records"


def load_corpus(
    path: str | Path,
    policy: str = "strict",
    seed: int = 0,
    report_path: str | Path | None = None,
) -> Corpus:
    """Load and validate a corpus directory (``docs/data_format.md``).

    Each table is read from ``<name>.jsonl`` or, failing that, ``<name>.parquet``;
    ``behaviors`` is optional, the others are required. Files whose names start with ``_`` (e.g. the
    generator's ``_truth.parquet``) are ignored. ``policy``: ``"strict"`` raises
    :class:`CorpusError` listing the problems; ``"skip"`` drops offending and dependent records,
    records them in ``corpus.meta["dropped"]`` and, when ``report_path`` is given, writes them there
    as JSON. ``seed`` drives the 8:1:1 session split of samples without a ``split``.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus directory not found: {root}")
    raw: dict[str, _Table] = {}
    missing = []
    for name in SOURCE_TABLES:
        jl, pq = root / f"{name}.jsonl", root / f"{name}.parquet"
        if jl.is_file():
            raw[name] = _read_jsonl(jl)
        elif pq.is_file():
            raw[name] = _read_parquet(pq, name)
        elif name in REQUIRED_TABLES:
            missing.append(Problem(f"{name}.jsonl", 0, None, "<file>",
                                   f"required table missing: neither {name}.jsonl nor {name}.parquet exists"))
        else:
            raw[name] = _Table(f"{name}.jsonl", [], [])
    if missing:
        raise CorpusError(missing, source=str(root))
    return _build(raw, policy=policy, seed=seed, source=str(root), root=root, report_path=report_path)


def _read_jsonl(path: Path) -> _Table:
    name = path.name
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    records: list[tuple[int, Any]] = []
    problems: list[Problem] = []
    try:
        lines: list = data.decode("utf-8").split("\n")
        decoded = True
    except UnicodeDecodeError:
        lines = data.split(b"\n")
        decoded = False
    loads = json.loads
    for i, line in enumerate(lines, 1):
        if not decoded:
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as e:
                problems.append(Problem(name, i, None, "<line>", f"invalid UTF-8 (byte {e.start} of the line)"))
                continue
        if not line.strip():
            continue
        try:
            rec = loads(line)
        except (ValueError, RecursionError) as e:
            msg = getattr(e, "msg", str(e))
            col = getattr(e, "colno", None)
            problems.append(Problem(name, i, None, "<line>",
                                    f"malformed JSON: {msg}" + (f" (column {col})" if col else "")))
            continue
        records.append((i, rec))
    return _Table(name, records, problems, "jsonl")


def _read_parquet(path: Path, table: str) -> _Table:
    name = path.name
    try:
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    except Exception as e:  # noqa: BLE001 - any reader failure is a corpus problem
        return _Table(name, [], [Problem(name, 0, None, "<file>", f"cannot read parquet: {type(e).__name__}: {e}")],
                      "parquet")
    nested = {"users": "profile", "items": "attributes", "sessions": "turns"}.get(table)
    out = []
    for i, r in enumerate(rows, 1):
        r = {k: _from_arrow(v) for k, v in r.items()}
        if table == "users" and "profile" not in r:  # flat form: every other column is a profile field
            r = {"user_id": r.get("user_id"), "profile": {k: v for k, v in r.items() if k != "user_id"}}
        if nested and isinstance(r.get(nested), str):  # nested column stored as JSON text
            try:
                r[nested] = json.loads(r[nested])
            except ValueError:
                pass  # reported as a type problem by the validator
        if table == "users" and isinstance(r.get("profile"), dict):
            r["profile"] = {k: v for k, v in r["profile"].items() if v is not None}
        if table == "items" and isinstance(r.get("attributes"), dict):
            r["attributes"] = {k: v for k, v in r["attributes"].items() if v is not None}
        out.append((i, r))
    return _Table(name, out, [], "parquet")


def _from_arrow(v):
    """pyarrow to_pylist values -> JSON-like values (map columns come as lists of pairs)."""
    if isinstance(v, list):
        if v and all(isinstance(x, tuple) and len(x) == 2 for x in v):
            return {str(k): _from_arrow(x) for k, x in v}
        return [_from_arrow(x) for x in v]
    if isinstance(v, dict):
        return {k: _from_arrow(x) for k, x in v.items()}
    if isinstance(v, float) and math.isnan(v):
        return None  # parquet has no distinction we can rely on between null and NaN
    return v


# ------------------------------------------------------------------------------------------------
# validation + normalisation (the one code path)
# ------------------------------------------------------------------------------------------------
def _is_missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, float) and v != v:
        return True
    return False


def _is_num(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _is_int(v) -> bool:
    if isinstance(v, (bool, np.bool_)):
        return False
    if isinstance(v, (int, np.integer)):
        return True
    return isinstance(v, (float, np.floating)) and math.isfinite(v) and float(v).is_integer()


def _tname(v) -> str:
    if v is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(v), type(v).__name__)


class _Ctx:
    def __init__(self, policy: str):
        self.policy = policy
        self.problems: list[Problem] = []  # primary problems
        self.dropped: list[dict] = []  # report entries (primary and dependent)
        self.n_dropped: dict[str, int] = {}

    def drop(self, table: str, probs: list[Problem]) -> None:
        self.n_dropped[table] = self.n_dropped.get(table, 0) + 1
        for p in probs:
            self.dropped.append({"table": table, **p.to_dict(), "kind": "invalid"})
        self.problems.extend(probs)

    def drop_dependent(self, table: str, file: str, line: int, rid, fld: str, reason: str) -> None:
        self.n_dropped[table] = self.n_dropped.get(table, 0) + 1
        self.dropped.append({"table": table, "file": file, "line": line, "id": rid, "field": fld, "reason": reason,
                             "kind": "dependent"})


def _need_id(rec: dict, key: str, probs: list, mk) -> str | None:
    v = rec.get(key)
    if key not in rec or v is None:
        probs.append(mk(key, "missing required field"))
        return None
    if not isinstance(v, str):
        probs.append(mk(key, f"expected a string, got {_tname(v)}"))
        return None
    if not v:
        probs.append(mk(key, "must be a non-empty string"))
        return None
    return v


def _opt_str(rec: dict, key: str, probs: list, mk, required: bool = False) -> str | None:
    if key not in rec:
        if required:
            probs.append(mk(key, "missing required field"))
        return None
    v = rec[key]
    if v is None:
        return None
    if not isinstance(v, str):
        probs.append(mk(key, f"expected a string or null, got {_tname(v)}"))
        return None
    return v


def _attr_value(v) -> str | None:
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if _is_num(v):
        if isinstance(v, (float, np.floating)) and not math.isfinite(v):
            return None
        return str(v.item() if isinstance(v, np.generic) else v)
    return None


class _IdIndex:
    """ids of a table: first valid occurrence -> line; ids of dropped records -> (line, why)."""

    def __init__(self, file: str):
        self.file = file
        self.ok: dict[str, int] = {}
        self.bad: dict[str, int] = {}

    def admit(self, rid, line: int, probs: list, mk, field: str) -> bool:
        """Accept ``rid`` at ``line`` unless the record has problems or repeats an id (a duplicate
        adds its problem); a rejected id is remembered so dependants can say why they go too."""
        if rid is not None and not probs and rid in self.ok:
            probs.append(mk(field, f"duplicate id (first defined on line {self.ok[rid]})"))
        if probs:
            if rid is not None and rid not in self.ok:
                self.bad.setdefault(rid, line)
            return False
        self.ok[rid] = line
        return True

    def why(self, rid: str) -> str:
        return f"{self.file} line {self.bad[rid]}"


def _build(raw: dict[str, _Table], policy: str, seed: int, source: str, root: Path | None,
           report_path: str | Path | None) -> Corpus:
    if policy not in ("strict", "skip"):
        raise ValueError(f"policy must be 'strict' or 'skip', not {policy!r}")
    ctx = _Ctx(policy)
    for name in SOURCE_TABLES:  # read/parse problems first, in table order
        t = raw[name]
        for p in t.problems:
            ctx.drop(name, [p])

    uidx = _IdIndex(raw["users"].file)
    iidx = _IdIndex(raw["items"].file)
    sidx = _IdIndex(raw["sessions"].file)
    users = _check_users(raw["users"], ctx, uidx)
    items, item_attrs = _check_items(raw["items"], ctx, iidx)
    sessions, turns, turn_items, pref_words, sess_info = _check_sessions(raw["sessions"], ctx, sidx, uidx, iidx)
    behaviors = _check_behaviors(raw["behaviors"], ctx, uidx, iidx)
    samples, candidates, n_assigned = _check_samples(raw["samples"], ctx, sidx, iidx, sess_info, seed)

    if ctx.problems and policy == "strict":
        raise CorpusError(ctx.problems, source=source)
    meta = {
        "source": source,
        "policy": policy,
        "seed": seed,
        "formats": {n: raw[n].fmt for n in SOURCE_TABLES},
        "n_problems": len(ctx.problems),
        "n_dropped": dict(ctx.n_dropped),
        "dropped": ctx.dropped,
        "splits_assigned": n_assigned,
    }
    if ctx.dropped:
        log.warning("corpus %s: dropped %s record(s) (%d problem(s))", source,
                    sum(ctx.n_dropped.values()), len(ctx.problems))
    if report_path is not None:
        rp = Path(report_path)
        rp.parent.mkdir(parents=True, exist_ok=True)
        rp.write_text(json.dumps({k: meta[k] for k in ("source", "policy", "n_problems", "n_dropped", "dropped")},
                                 ensure_ascii=False, indent=1), encoding="utf-8")
        meta["report_path"] = str(rp)
    return Corpus(users, items, item_attrs, sessions, turns, turn_items, pref_words, behaviors, samples,
                  candidates, root=root, meta=meta)


def _mk(file: str, line: int, rid):
    return lambda fld, reason: Problem(file, line, rid, fld, reason)


def _record(rec, file, line, probs) -> bool:
    if not isinstance(rec, dict):
        probs.append(Problem(file, line, None, "<record>", f"expected a JSON object, got {_tname(rec)}"))
        return False
    return True


# -- users ---------------------------------------------------------------------------------------
def _check_users(t: _Table, ctx: _Ctx, idx: _IdIndex) -> pd.DataFrame:
    ids: list[str] = []
    profiles: list[dict] = []
    extra: set[str] = set()
    for line, rec in t.records:
        probs: list[Problem] = []
        if not _record(rec, t.file, line, probs):
            ctx.drop("users", probs)
            continue
        rid = rec.get("user_id") if isinstance(rec.get("user_id"), str) else None
        mk = _mk(t.file, line, rid)
        uid = _need_id(rec, "user_id", probs, mk)
        prof_in = rec.get("profile")
        prof: dict = {}
        if prof_in is None:
            pass
        elif not isinstance(prof_in, dict):
            probs.append(mk("profile", f"expected an object or null, got {_tname(prof_in)}"))
        else:
            for k, v in prof_in.items():
                if _is_missing(v) and not (isinstance(v, float) and k in NUMERIC_PROFILE_FIELDS):
                    continue
                f = f"profile.{k}"
                if k == "user_id":
                    probs.append(mk(f, "'user_id' is reserved and cannot be a profile field"))
                elif k in NUMERIC_PROFILE_FIELDS:
                    if not _is_num(v):
                        probs.append(mk(f, f"expected a number, got {_tname(v)}"))
                    elif not math.isfinite(v):
                        probs.append(mk(f, "must be finite, got NaN/inf"))
                    elif v < 0:
                        probs.append(mk(f, f"must be >= 0, got {v}"))
                    else:
                        prof[k] = float(v)
                elif k in LIST_PROFILE_FIELDS:
                    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                        probs.append(mk(f, f"expected an array of strings, got {_tname(v)}"))
                    else:
                        prof[k] = list(v)
                elif k in _PROFILE_SET:
                    if isinstance(v, str):
                        prof[k] = v
                    elif _is_num(v) or isinstance(v, bool):
                        prof[k] = _attr_value(v)
                    else:
                        probs.append(mk(f, f"expected a string, got {_tname(v)}"))
                else:
                    prof[k] = v
                    extra.add(k)
        if not idx.admit(uid, line, probs, mk, "user_id"):
            ctx.drop("users", probs)
            continue
        ids.append(uid)
        profiles.append(prof)
    cols: dict[str, Any] = {"user_id": pd.Series(ids, dtype=_STR)}
    for k in PROFILE_FIELDS:
        vals = [p.get(k) for p in profiles]
        if k in NUMERIC_PROFILE_FIELDS:
            cols[k] = pd.Series(np.array([np.nan if v is None else v for v in vals], dtype=np.float64))
        elif k in LIST_PROFILE_FIELDS:
            cols[k] = pd.Series(vals, dtype=object)
        else:
            cols[k] = pd.Series(vals, dtype=_STR)
    for k in sorted(extra):
        vals = [p.get(k) for p in profiles]
        if any(v is not None for v in vals):
            cols[k] = pd.Series(vals, dtype=object)
    return pd.DataFrame(cols)


_PROFILE_SET = frozenset(PROFILE_FIELDS)


# -- items ---------------------------------------------------------------------------------------
def _check_items(t: _Table, ctx: _Ctx, idx: _IdIndex) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids, cats, shops, titles, prices = [], [], [], [], []
    a_item, a_name, a_val = [], [], []
    for line, rec in t.records:
        probs: list[Problem] = []
        if not _record(rec, t.file, line, probs):
            ctx.drop("items", probs)
            continue
        rid = rec.get("item_id") if isinstance(rec.get("item_id"), str) else None
        mk = _mk(t.file, line, rid)
        iid = _need_id(rec, "item_id", probs, mk)
        cat = _need_id(rec, "category", probs, mk)
        shop = _opt_str(rec, "shop_id", probs, mk)
        title = _opt_str(rec, "title", probs, mk)
        price = rec.get("price")
        if price is not None:
            if not _is_num(price):
                probs.append(mk("price", f"expected a number or null, got {_tname(price)}"))
            elif not math.isfinite(price):
                probs.append(mk("price", "must be finite, got NaN/inf (use null for an unknown price)"))
            elif price < 0:
                probs.append(mk("price", f"must be >= 0, got {price}"))
        attrs = rec.get("attributes")
        names: list[str] = []
        vals: list[str] = []
        if attrs is None:
            pass
        elif not isinstance(attrs, dict):
            probs.append(mk("attributes", f"expected an object or null, got {_tname(attrs)}"))
        else:
            for k, v in attrs.items():
                if type(v) is str and k:
                    names.append(k)
                    vals.append(v)
                    continue
                if v is None:
                    continue
                if not k:
                    probs.append(mk("attributes", "attribute names must be non-empty"))
                    continue
                seq = v if isinstance(v, list) else [v]
                for x in seq:
                    if x is None:
                        continue
                    s = _attr_value(x)
                    if s is None:
                        probs.append(mk(f"attributes.{k}", f"expected a string, number or boolean (or an array of "
                                                           f"them), got {_tname(x)}"))
                        break
                    names.append(k)
                    vals.append(s)
        if not idx.admit(iid, line, probs, mk, "item_id"):
            ctx.drop("items", probs)
            continue
        ids.append(iid)
        cats.append(cat)
        shops.append(shop)
        titles.append(title)
        prices.append(np.nan if price is None else float(price))
        if names:
            a_item.extend([iid] * len(names))
            a_name.extend(names)
            a_val.extend(vals)
    items = pd.DataFrame({
        "item_id": pd.Series(ids, dtype=_STR), "category": pd.Series(cats, dtype=_STR),
        "shop_id": pd.Series(shops, dtype=_STR), "title": pd.Series(titles, dtype=_STR),
        "price": pd.Series(np.asarray(prices, dtype=np.float64)),
    })
    item_attrs = pd.DataFrame({"item_id": pd.Series(a_item, dtype=_STR), "name": pd.Series(a_name, dtype=_STR),
                               "value": pd.Series(a_val, dtype=_STR)})
    return items, item_attrs


# -- sessions ------------------------------------------------------------------------------------
def _check_sessions(t: _Table, ctx: _Ctx, idx: _IdIndex, uidx: _IdIndex, iidx: _IdIndex):
    s_id, s_user, s_shop = [], [], []
    t_sid, t_idx, t_role, t_text, t_intent, t_rec, t_ann = [], [], [], [], [], [], []
    ti_sid, ti_idx, ti_item = [], [], []
    pw_sid, pw_idx, pw_text, pw_type = [], [], [], []
    info: dict[str, tuple[str, list[str]]] = {}  # session_id -> (user_id, roles)
    items_ok = iidx.ok
    for line, rec in t.records:
        probs: list[Problem] = []
        if not _record(rec, t.file, line, probs):
            ctx.drop("sessions", probs)
            continue
        rid = rec.get("session_id") if isinstance(rec.get("session_id"), str) else None
        mk = _mk(t.file, line, rid)
        sid = _need_id(rec, "session_id", probs, mk)
        uid = _need_id(rec, "user_id", probs, mk)
        shop = _opt_str(rec, "shop_id", probs, mk)
        dep: tuple[str, str] | None = None
        if uid is not None and uid not in uidx.ok:
            if uid in uidx.bad:
                dep = ("user_id", f"depends on dropped user {uid!r} ({uidx.why(uid)})")
            else:
                probs.append(mk("user_id", f"unknown user_id {uid!r} (not in users)"))
        turns = rec.get("turns")
        roles: list[str] = []
        l_role, l_text, l_intent, l_rec, l_ann = [], [], [], [], []
        l_ti: list[tuple[int, str]] = []
        l_pw: list[tuple[int, str, str]] = []
        if "turns" not in rec or turns is None:
            probs.append(mk("turns", "missing required field"))
        elif not isinstance(turns, list):
            probs.append(mk("turns", f"expected an array, got {_tname(turns)}"))
        elif not turns:
            probs.append(mk("turns", "a session needs at least one turn"))
        else:
            for j, tr in enumerate(turns):
                # fast path: a well-formed turn (the common case) skips the detailed checks
                if type(tr) is dict:
                    role = tr.get("role")
                    text = tr.get("text")
                    intent = tr.get("intent")
                    recm = tr.get("recommend")
                    its = tr.get("items")
                    pws = tr.get("preference_words")
                    if ((role == "user" or role == "staff") and type(text) is str
                            and (intent is None or type(intent) is str) and (recm is None or type(recm) is bool)
                            and (not its or (type(its) is list and all(type(x) is str and x in items_ok
                                                                        for x in its)))
                            and (pws is None or (type(pws) is list and all(
                                type(pw) is dict and type(pw.get("text")) is str and pw["text"]
                                and pw.get("type") in PREF_TYPES for pw in pws)))):
                        roles.append(role)
                        l_role.append(role)
                        l_text.append(text)
                        l_intent.append(intent)
                        l_rec.append(recm)
                        l_ann.append(pws is not None)
                        if its:
                            l_ti.extend([(j, x) for x in its])
                        if pws:
                            l_pw.extend([(j, pw["text"], pw["type"]) for pw in pws])
                        continue
                pre = f"turns[{j}]"
                if not isinstance(tr, dict):
                    probs.append(mk(pre, f"expected an object, got {_tname(tr)}"))
                    continue
                role = tr.get("role")
                if role not in ROLES:
                    probs.append(mk(f"{pre}.role", "missing required field" if role is None
                                    else f"must be one of {list(ROLES)}, got {role!r}"))
                text = tr.get("text")
                if not isinstance(text, str):
                    probs.append(mk(f"{pre}.text", "missing required field" if text is None
                                    else f"expected a string, got {_tname(text)}"))
                intent = tr.get("intent")
                if intent is not None and not isinstance(intent, str):
                    probs.append(mk(f"{pre}.intent", f"expected a string or null, got {_tname(intent)}"))
                recm = tr.get("recommend")
                if recm is not None and not isinstance(recm, bool):
                    probs.append(mk(f"{pre}.recommend", f"expected true, false or null, got {_tname(recm)}"))
                its = tr.get("items")
                if its is None:
                    pass
                elif not isinstance(its, list):
                    probs.append(mk(f"{pre}.items", f"expected an array of item ids, got {_tname(its)}"))
                else:
                    for k, it in enumerate(its):
                        if not isinstance(it, str):
                            probs.append(mk(f"{pre}.items[{k}]", f"expected an item id string, got {_tname(it)}"))
                        elif it not in items_ok:
                            if it in iidx.bad:
                                if dep is None:
                                    dep = (f"{pre}.items[{k}]", f"depends on dropped item {it!r} ({iidx.why(it)})")
                            else:
                                probs.append(mk(f"{pre}.items[{k}]", f"unknown item_id {it!r} (not in items)"))
                        else:
                            l_ti.append((j, it))
                pws = tr.get("preference_words")
                ann = pws is not None
                if pws is None:
                    pass
                elif not isinstance(pws, list):
                    probs.append(mk(f"{pre}.preference_words", f"expected an array or null, got {_tname(pws)}"))
                else:
                    for k, pw in enumerate(pws):
                        pp = f"{pre}.preference_words[{k}]"
                        if not isinstance(pw, dict):
                            probs.append(mk(pp, f"expected an object, got {_tname(pw)}"))
                            continue
                        ptxt, ptype = pw.get("text"), pw.get("type")
                        if not isinstance(ptxt, str) or not ptxt:
                            probs.append(mk(f"{pp}.text", "missing required field" if ptxt is None
                                            else "expected a non-empty string"))
                        if ptype not in PREF_TYPES:
                            probs.append(mk(f"{pp}.type", "missing required field" if ptype is None
                                            else f"must be one of {list(PREF_TYPES)}, got {ptype!r}"))
                        if isinstance(ptxt, str) and ptxt and ptype in PREF_TYPES:
                            l_pw.append((j, ptxt, ptype))
                roles.append(role)
                l_role.append(role)
                l_text.append(text)
                l_intent.append(intent)
                l_rec.append(recm)
                l_ann.append(ann)
        if sid is not None and not probs and sid in idx.ok:
            probs.append(mk("session_id", f"duplicate id (first defined on line {idx.ok[sid]})"))
        if probs or dep is not None:
            if sid is not None and sid not in idx.ok:
                idx.bad.setdefault(sid, line)
            if probs:
                ctx.drop("sessions", probs)
            else:
                ctx.drop_dependent("sessions", t.file, line, sid, dep[0], dep[1])
            continue
        idx.ok[sid] = line
        info[sid] = (uid, roles)
        s_id.append(sid)
        s_user.append(uid)
        s_shop.append(shop)
        n = len(l_role)
        t_sid.extend([sid] * n)
        t_idx.extend(range(n))
        t_role.extend(l_role)
        t_text.extend(l_text)
        t_intent.extend(l_intent)
        t_rec.extend(l_rec)
        t_ann.extend(l_ann)
        for j, it in l_ti:
            ti_sid.append(sid)
            ti_idx.append(j)
            ti_item.append(it)
        for j, ptxt, ptype in l_pw:
            pw_sid.append(sid)
            pw_idx.append(j)
            pw_text.append(ptxt)
            pw_type.append(ptype)
    sessions = pd.DataFrame({"session_id": pd.Series(s_id, dtype=_STR), "user_id": pd.Series(s_user, dtype=_STR),
                             "shop_id": pd.Series(s_shop, dtype=_STR)})
    turns = pd.DataFrame({
        "session_id": pd.Series(t_sid, dtype=_STR), "turn_idx": pd.Series(np.asarray(t_idx, dtype=np.int64)),
        "role": pd.Series(t_role, dtype=_STR), "text": pd.Series(t_text, dtype=_STR),
        "intent": pd.Series(t_intent, dtype=_STR), "recommend": pd.Series(pd.array(t_rec, dtype="boolean")),
        "pref_annotated": pd.Series(np.asarray(t_ann, dtype=bool)),
    })
    turn_items = pd.DataFrame({"session_id": pd.Series(ti_sid, dtype=_STR),
                               "turn_idx": pd.Series(np.asarray(ti_idx, dtype=np.int64)),
                               "item_id": pd.Series(ti_item, dtype=_STR)})
    pref_words = pd.DataFrame({"session_id": pd.Series(pw_sid, dtype=_STR),
                               "turn_idx": pd.Series(np.asarray(pw_idx, dtype=np.int64)),
                               "text": pd.Series(pw_text, dtype=_STR), "type": pd.Series(pw_type, dtype=_STR)})
    return sessions, turns, turn_items, pref_words, info


# -- behaviors -----------------------------------------------------------------------------------
def _check_behaviors(t: _Table, ctx: _Ctx, uidx: _IdIndex, iidx: _IdIndex) -> pd.DataFrame:
    b_user, b_type, b_item, b_ts = [], [], [], []
    for line, rec in t.records:
        probs: list[Problem] = []
        if not _record(rec, t.file, line, probs):
            ctx.drop("behaviors", probs)
            continue
        rid = rec.get("user_id") if isinstance(rec.get("user_id"), str) else None
        mk = _mk(t.file, line, rid)
        uid = _need_id(rec, "user_id", probs, mk)
        iid = _need_id(rec, "item_id", probs, mk)
        typ = rec.get("type")
        if typ not in BEHAVIOR_TYPES:
            probs.append(mk("type", "missing required field" if typ is None
                            else f"must be one of {list(BEHAVIOR_TYPES)}, got {typ!r}"))
        ts = rec.get("ts")
        if ts is None:
            probs.append(mk("ts", "missing required field"))
        elif not _is_int(ts):
            probs.append(mk("ts", f"expected an integer timestamp, got {_tname(ts)} {ts!r}"))
        elif ts < 0:
            probs.append(mk("ts", f"must be >= 0, got {ts}"))
        dep = None
        if uid is not None and uid not in uidx.ok:
            if uid in uidx.bad:
                dep = ("user_id", f"depends on dropped user {uid!r} ({uidx.why(uid)})")
            else:
                probs.append(mk("user_id", f"unknown user_id {uid!r} (not in users)"))
        if iid is not None and iid not in iidx.ok:
            if iid in iidx.bad:
                dep = dep or ("item_id", f"depends on dropped item {iid!r} ({iidx.why(iid)})")
            else:
                probs.append(mk("item_id", f"unknown item_id {iid!r} (not in items)"))
        if probs:
            ctx.drop("behaviors", probs)
            continue
        if dep is not None:
            ctx.drop_dependent("behaviors", t.file, line, rid, dep[0], dep[1])
            continue
        b_user.append(uid)
        b_type.append(typ)
        b_item.append(iid)
        b_ts.append(int(ts))
    return pd.DataFrame({"user_id": pd.Series(b_user, dtype=_STR), "type": pd.Series(b_type, dtype=_STR),
                         "item_id": pd.Series(b_item, dtype=_STR), "ts": pd.Series(np.asarray(b_ts, dtype=np.int64))})


# -- samples -------------------------------------------------------------------------------------
def split_for_session(session_id: str, seed: int = 0) -> str:
    """The 8:1:1 split of a session without an explicit one: a seeded hash of its id, so it does
    not depend on file order or on the other sessions of the corpus."""
    h = hashlib.blake2b(f"{seed}\x1f{session_id}".encode(), digest_size=8).digest()
    u = int.from_bytes(h, "big") / 2.0 ** 64
    return "train" if u < SPLIT_RATIOS[0] else ("valid" if u < SPLIT_RATIOS[0] + SPLIT_RATIOS[1] else "test")


def _check_samples(t: _Table, ctx: _Ctx, sidx: _IdIndex, iidx: _IdIndex, info: dict, seed: int):
    seen: dict[str, int] = {}
    kept: list[tuple] = []  # (sid_, session, user, turn, cands, label, split, line)
    sess_split: dict[str, tuple[str, int]] = {}
    items_ok = iidx.ok
    for line, rec in t.records:
        probs: list[Problem] = []
        if not _record(rec, t.file, line, probs):
            ctx.drop("samples", probs)
            continue
        rid = rec.get("sample_id") if isinstance(rec.get("sample_id"), str) else None
        mk = _mk(t.file, line, rid)
        smp = _need_id(rec, "sample_id", probs, mk)
        ses = _need_id(rec, "session_id", probs, mk)
        dep = None
        sinfo = None
        if ses is not None:
            sinfo = info.get(ses)
            if sinfo is None:
                if ses in sidx.bad:
                    dep = ("session_id", f"depends on dropped session {ses!r} ({sidx.why(ses)})")
                else:
                    probs.append(mk("session_id", f"unknown session_id {ses!r} (not in sessions)"))
        turn = rec.get("turn")
        if turn is None:
            probs.append(mk("turn", "missing required field"))
        elif not _is_int(turn):
            probs.append(mk("turn", f"expected an integer, got {_tname(turn)} {turn!r}"))
        elif sinfo is not None:
            roles = sinfo[1]
            turn = int(turn)
            if not 1 <= turn <= len(roles) - 1:
                probs.append(mk("turn", f"out of range: must be in 1..{len(roles) - 1} (the session has "
                                        f"{len(roles)} turns and at least one turn of context), got {turn}"))
            elif roles[turn] != "staff":
                probs.append(mk("turn", f"must index a staff turn (the recommendation), turns[{turn}] has role "
                                        f"{roles[turn]!r}"))
        cands = rec.get("candidates")
        clist: list[str] = []
        if cands is None:
            probs.append(mk("candidates", "missing required field"))
        elif not isinstance(cands, list):
            probs.append(mk("candidates", f"expected an array of item ids, got {_tname(cands)}"))
        elif not cands:
            probs.append(mk("candidates", "empty candidate list"))
        else:
            cs = set()
            for k, c in enumerate(cands):
                if not isinstance(c, str):
                    probs.append(mk(f"candidates[{k}]", f"expected an item id string, got {_tname(c)}"))
                    continue
                if c in cs:
                    probs.append(mk(f"candidates[{k}]", f"duplicate candidate {c!r}"))
                    continue
                cs.add(c)
                if c not in items_ok:
                    if c in iidx.bad:
                        dep = dep or (f"candidates[{k}]", f"depends on dropped item {c!r} ({iidx.why(c)})")
                    else:
                        probs.append(mk(f"candidates[{k}]", f"unknown item_id {c!r} (not in items)"))
                clist.append(c)
        label = _need_id(rec, "label_item", probs, mk)
        if label is not None and isinstance(cands, list) and cands and label not in cands:
            probs.append(mk("label_item", f"label {label!r} is not among the candidates"))
        split = rec.get("split")
        if split is not None and split not in SPLITS:
            probs.append(mk("split", f"must be one of {list(SPLITS)} or null, got {split!r}"))
        if "user_id" in rec and rec["user_id"] is not None and sinfo is not None and rec["user_id"] != sinfo[0]:
            probs.append(mk("user_id", f"{rec['user_id']!r} differs from the session's user {sinfo[0]!r}"))
        if smp is not None and not probs and smp in seen:
            probs.append(mk("sample_id", f"duplicate id (first defined on line {seen[smp]})"))
        if not probs and dep is None and split is not None:
            prev = sess_split.get(ses)
            if prev is not None and prev[0] != split:
                probs.append(mk("split", f"session {ses!r} already has a sample in split {prev[0]!r} "
                                         f"(line {prev[1]}); a session must not span splits"))
        if probs:
            ctx.drop("samples", probs)
            continue
        if dep is not None:
            ctx.drop_dependent("samples", t.file, line, smp, dep[0], dep[1])
            continue
        seen[smp] = line
        if split is not None and ses not in sess_split:
            sess_split[ses] = (split, line)
        kept.append((smp, ses, sinfo[0], turn, clist, label, split))
    n_assigned = 0
    s_id, s_ses, s_user, s_turn, s_label, s_split = [], [], [], [], [], []
    c_sid, c_pos, c_item, c_lab = [], [], [], []
    cache: dict[str, str] = {}
    for smp, ses, uid, turn, clist, label, split in kept:
        if split is None:
            n_assigned += 1
            split = sess_split[ses][0] if ses in sess_split else cache.get(ses)
            if split is None:
                split = cache[ses] = split_for_session(ses, seed)
        s_id.append(smp)
        s_ses.append(ses)
        s_user.append(uid)
        s_turn.append(turn)
        s_label.append(label)
        s_split.append(split)
        k = len(clist)
        c_sid.extend([smp] * k)
        c_pos.extend(range(k))
        c_item.extend(clist)
        c_lab.extend([c == label for c in clist])
    samples = pd.DataFrame({
        "sample_id": pd.Series(s_id, dtype=_STR), "session_id": pd.Series(s_ses, dtype=_STR),
        "user_id": pd.Series(s_user, dtype=_STR), "turn": pd.Series(np.asarray(s_turn, dtype=np.int64)),
        "label_item": pd.Series(s_label, dtype=_STR), "split": pd.Series(s_split, dtype=_STR),
    })
    candidates = pd.DataFrame({
        "sample_id": pd.Series(c_sid, dtype=_STR), "position": pd.Series(np.asarray(c_pos, dtype=np.int32)),
        "item_id": pd.Series(c_item, dtype=_STR), "label": pd.Series(np.asarray(c_lab, dtype=np.int8)),
    })
    return samples, candidates, n_assigned


# ------------------------------------------------------------------------------------------------
# saving
# ------------------------------------------------------------------------------------------------
def _write_jsonl(path: Path, records: Iterable[dict]) -> None:
    dumps = json.dumps
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(dumps(r, ensure_ascii=False) + "\n" for r in records)


def _py(v):
    """A DataFrame cell as a JSON value (None for missing)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    if v is pd.NA or v is pd.NaT:
        return None
    return v


def _col(df: pd.DataFrame, c: str) -> list:
    return [_py(v) for v in df[c].astype(object).tolist()]


def _users_records(c: Corpus):
    u = c.users
    fields = [k for k in u.columns if k != "user_id"]
    cols = [_col(u, k) for k in fields]
    for i, uid in enumerate(u["user_id"].tolist()):
        prof = {}
        for k, col in zip(fields, cols):
            v = col[i]
            if v is not None:
                prof[k] = list(v) if isinstance(v, (list, tuple, np.ndarray)) else v
        yield {"user_id": uid, "profile": prof}


def _group_rows(keys: list, *cols: list) -> dict:
    out: dict = {}
    for row in zip(keys, *cols):
        out.setdefault(row[0], []).append(row[1:])
    return out


def _items_records(c: Corpus):
    a = c.item_attrs
    attrs = _group_rows(a["item_id"].tolist(), a["name"].tolist(), a["value"].tolist())
    it = c.items
    for iid, cat, shop, title, price in zip(it["item_id"].tolist(), _col(it, "category"), _col(it, "shop_id"),
                                            _col(it, "title"), _col(it, "price")):
        d: dict = {}
        for name, value in attrs.get(iid, ()):
            if name in d:
                if not isinstance(d[name], list):
                    d[name] = [d[name]]
                d[name].append(value)
            else:
                d[name] = value
        yield {"item_id": iid, "category": cat, "shop_id": shop, "title": title, "price": price, "attributes": d}


def _sessions_records(c: Corpus):
    t = c.turns
    turns = _group_rows(t["session_id"].tolist(), t["turn_idx"].tolist(), _col(t, "role"), _col(t, "text"),
                        _col(t, "intent"), _col(t, "recommend"), t["pref_annotated"].tolist())
    ti = c.turn_items
    titems = _group_rows(list(zip(ti["session_id"].tolist(), ti["turn_idx"].tolist())), ti["item_id"].tolist())
    pw = c.pref_words
    pwords = _group_rows(list(zip(pw["session_id"].tolist(), pw["turn_idx"].tolist())), pw["text"].tolist(),
                         pw["type"].tolist())
    s = c.sessions
    for sid, uid, shop in zip(s["session_id"].tolist(), _col(s, "user_id"), _col(s, "shop_id")):
        out = []
        for j, role, text, intent, recm, ann in turns.get(sid, ()):
            d = {"role": role, "text": text, "items": [x[0] for x in titems.get((sid, j), ())], "intent": intent,
                 "recommend": recm}
            if ann:
                d["preference_words"] = [{"text": x, "type": y} for x, y in pwords.get((sid, j), ())]
            out.append(d)
        yield {"session_id": sid, "user_id": uid, "shop_id": shop, "turns": out}


def _behaviors_records(c: Corpus):
    b = c.behaviors
    for uid, typ, iid, ts in zip(b["user_id"].tolist(), b["type"].tolist(), b["item_id"].tolist(),
                                 b["ts"].tolist()):
        yield {"user_id": uid, "type": typ, "item_id": iid, "ts": int(ts)}


def _samples_records(c: Corpus):
    cd = c.candidates
    cands = _group_rows(cd["sample_id"].tolist(), cd["position"].tolist(), cd["item_id"].tolist())
    s = c.samples
    for sid, ses, turn, label, split in zip(s["sample_id"].tolist(), s["session_id"].tolist(), s["turn"].tolist(),
                                            s["label_item"].tolist(), _col(s, "split")):
        cl = [x[1] for x in sorted(cands.get(sid, ()), key=lambda x: x[0])]
        yield {"sample_id": sid, "session_id": ses, "turn": int(turn), "candidates": cl, "label_item": label,
               "split": split}
