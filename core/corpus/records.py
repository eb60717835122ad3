"""The corpus contract as pydantic records: one model per JSON Lines record (``docs/data_format.md``).

A record model checks the shape of one record (presence, types, enums, ranges); references between
records (unknown or duplicate ids) are checked in one pass over all tables by
:mod:`core.corpus.validate`. A pydantic error becomes a :class:`Problem` with the reason our users
know: each field carries :class:`Reasons`, templates per kind of failure, filled in with the
JSON type name (``{type}``) and the value (``{value}``) of the offending input.
"""
from __future__ import annotations

import math
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional, Union

import numpy as np
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator, TypeAdapter
from pydantic_core import PydanticCustomError

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
# value helpers
# ------------------------------------------------------------------------------------------------
def is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def is_num(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def tname(v) -> str:
    """The JSON type name of a value, for messages."""
    if v is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(v), type(v).__name__)


def scalar_str(v) -> str | None:
    """An attribute / profile scalar as text (booleans as JSON spells them); None if not a scalar."""
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if is_num(v):
        if isinstance(v, (float, np.floating)) and not math.isfinite(v):
            return None
        return str(v.item() if isinstance(v, np.generic) else v)
    return None


def _fail(reason: str, at: str = "") -> PydanticCustomError:
    """A finding with our own reason; ``at`` extends the field path (``.name`` or ``[k]``)."""
    return PydanticCustomError("corpus", "{reason}", {"reason": reason, "at": at})


# ------------------------------------------------------------------------------------------------
# field types: each carries the reasons reported when a value does not fit
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reasons:
    """Reason templates by kind of failure; ``{type}`` is the JSON type name of the input,
    ``{value}`` the input itself."""

    type: str = ""
    empty: str = ""
    enum: str = ""
    ge: str = "must be >= 0, got {value}"
    finite: str = "must be finite, got NaN/inf"


_KIND = {"string_too_short": "empty", "too_short": "empty", "literal_error": "enum", "greater_than_equal": "ge",
         "finite_number": "finite"}


def integral(v):
    """Integral floats (3.0) and numpy integers count as integers; anything else is left to fail."""
    if isinstance(v, (float, np.floating)) and not isinstance(v, bool) and math.isfinite(v) and float(v).is_integer():
        return int(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _enum(values: tuple[str, ...], nullable: bool = False) -> Reasons:
    return Reasons(enum=f"must be one of {list(values)}{' or null' if nullable else ''}, got {{value!r}}")


Id = Annotated[str, Field(min_length=1), Reasons(type="expected a string, got {type}", empty="must be a non-empty string")]
OptStr = Annotated[Optional[str], Reasons(type="expected a string or null, got {type}")]
ItemRef = Annotated[str, Reasons(type="expected an item id string, got {type}")]


def _profile_str(v):
    if is_missing(v):
        return None
    return scalar_str(v) if is_num(v) or isinstance(v, (bool, np.bool_)) else v


def _str_list(v):
    if is_missing(v):
        return None
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise _fail(f"expected an array of strings, got {tname(v)}")
    return list(v)


def _reserved(v):
    if v is not None:
        raise _fail("'user_id' is reserved and cannot be a profile field")
    return v


ProfileStr = Annotated[Optional[str], BeforeValidator(_profile_str), Reasons(type="expected a string, got {type}")]
ProfileNum = Annotated[Optional[float], Field(ge=0, allow_inf_nan=False), Reasons(type="expected a number, got {type}")]
ProfileList = Annotated[Optional[list], PlainValidator(_str_list)]


def _attribute_pairs(v) -> list[tuple[str, str]]:
    """``attributes`` -> (name, value-as-text) pairs; an array value gives one pair per element."""
    if v is None:
        return []
    if not isinstance(v, dict):
        raise _fail(f"expected an object or null, got {tname(v)}")
    pairs = []
    for k, x in v.items():
        if type(x) is str and k:
            pairs.append((k, x))
            continue
        if x is None:
            continue
        if not k:
            raise _fail("attribute names must be non-empty")
        for e in (x if isinstance(x, list) else [x]):
            if e is None:
                continue
            s = scalar_str(e)
            if s is None:
                raise _fail(f"expected a string, number or boolean (or an array of them), got {tname(e)}", f".{k}")
            pairs.append((k, s))
    return pairs


# ------------------------------------------------------------------------------------------------
# records
# ------------------------------------------------------------------------------------------------
class Record(BaseModel):
    # strict: no silent coercion ("3" is not a number); unknown keys are ignored
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Profile(Record):
    """A user profile: the known fields typed, unknown ones kept raw (``model_extra``)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)
    user_id: Annotated[Any, AfterValidator(_reserved)] = None
    user_level: ProfileStr = None
    sex: ProfileStr = None
    age: ProfileStr = None
    marital_status: ProfileStr = None
    education: ProfileStr = None
    profession: ProfileStr = None
    has_children: ProfileStr = None
    city_level: ProfileStr = None
    province: ProfileStr = None
    brand_preference: ProfileStr = None
    avg_pay_monthly: ProfileNum = None
    purchasing_power: ProfileStr = None
    top3_categories_recent: ProfileList = None
    price_sensitivity: ProfileStr = None
    promotion_sensitivity: ProfileStr = None
    preferred_color: ProfileStr = None
    membership_years: ProfileNum = None
    active_hours: ProfileStr = None
    device_type: ProfileStr = None
    shopping_frequency: ProfileStr = None

    def extra_fields(self) -> dict:
        """Unknown profile fields that carry a value."""
        return {k: v for k, v in (self.model_extra or {}).items() if not is_missing(v)}


class UserRecord(Record):
    user_id: Id
    profile: Annotated[Optional[Profile], Reasons(type="expected an object or null, got {type}")] = None


class ItemRecord(Record):
    item_id: Id
    category: Id
    shop_id: OptStr = None
    title: OptStr = None
    price: Annotated[Optional[float], Field(ge=0, allow_inf_nan=False),
                     Reasons(type="expected a number or null, got {type}",
                             finite="must be finite, got NaN/inf (use null for an unknown price)")] = None
    attributes: Annotated[list[tuple[str, str]], PlainValidator(_attribute_pairs)] = []


class PreferenceWord(Record):
    text: Annotated[str, Field(min_length=1), Reasons(type="expected a non-empty string",
                                                      empty="expected a non-empty string")]
    type: Annotated[Literal[PREF_TYPES], _enum(PREF_TYPES)]  # type: ignore[valid-type]


class Turn(Record):
    role: Annotated[Literal[ROLES], _enum(ROLES)]  # type: ignore[valid-type]
    text: Annotated[str, Reasons(type="expected a string, got {type}")]
    intent: OptStr = None
    recommend: Annotated[Optional[bool], Reasons(type="expected true, false or null, got {type}")] = None
    items: Annotated[Optional[list[ItemRef]], Reasons(type="expected an array of item ids, got {type}")] = None
    # None: the turn carries no annotation; [] : annotated, no preference words
    preference_words: Annotated[Optional[list[Annotated[PreferenceWord, Reasons(type="expected an object, got {type}")]]],
                                Reasons(type="expected an array or null, got {type}")] = None


class SessionRecord(Record):
    session_id: Id
    user_id: Id
    shop_id: OptStr = None
    turns: Annotated[list[Annotated[Turn, Reasons(type="expected an object, got {type}")]], Field(min_length=1),
                     Reasons(type="expected an array, got {type}", empty="a session needs at least one turn")]


class BehaviorRecord(Record):
    user_id: Id
    type: Annotated[Literal[BEHAVIOR_TYPES], _enum(BEHAVIOR_TYPES)]  # type: ignore[valid-type]
    item_id: Id
    ts: Annotated[int, BeforeValidator(integral), Field(ge=0),
                  Reasons(type="expected an integer timestamp, got {type} {value!r}")]


def _distinct(cands: list[str]) -> list[str]:
    seen: set[str] = set()
    for k, c in enumerate(cands):
        if c in seen:
            raise _fail(f"duplicate candidate {c!r}", f"[{k}]")
        seen.add(c)
    return cands


class SampleRecord(Record):
    sample_id: Id
    session_id: Id
    turn: Annotated[int, BeforeValidator(integral), Reasons(type="expected an integer, got {type} {value!r}")]
    candidates: Annotated[list[ItemRef], Field(min_length=1), AfterValidator(_distinct),
                          Reasons(type="expected an array of item ids, got {type}", empty="empty candidate list")]
    label_item: Id
    split: Annotated[Optional[Literal[SPLITS]], _enum(SPLITS, nullable=True)] = None  # type: ignore[valid-type]
    user_id: Any = None  # optional; must then be the session's user (checked with the sessions)


RECORDS: dict[str, type[Record]] = {"users": UserRecord, "items": ItemRecord, "sessions": SessionRecord,
                                    "behaviors": BehaviorRecord, "samples": SampleRecord}
ID_FIELD = {"users": "user_id", "items": "item_id", "sessions": "session_id", "behaviors": "user_id",
            "samples": "sample_id"}
ADAPTERS = {name: TypeAdapter(list[model]) for name, model in RECORDS.items()}


# ------------------------------------------------------------------------------------------------
# pydantic errors -> problems
# ------------------------------------------------------------------------------------------------
def _unwrap(tp, meta: list) -> tuple[Any, list]:
    """Strip Annotated / Optional layers, collecting Annotated metadata."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            meta = meta + list(tp.__metadata__)
            tp = tp.__origin__
        elif origin is Union:
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        else:
            return tp, meta


def _reason_paths(tp, path: str, out: dict[str, Reasons]) -> dict[str, Reasons]:
    """Map a field path pattern (``turns[].items[]``) to its Reasons, walking the record type."""
    tp, meta = _unwrap(tp, [])
    for m in meta:
        if isinstance(m, Reasons):
            out[path] = m
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, f in tp.model_fields.items():
            sub = f"{path}.{name}" if path else name
            _reason_paths(Annotated[f.annotation, *f.metadata] if f.metadata else f.annotation, sub, out)
    elif typing.get_origin(tp) is list and typing.get_args(tp):
        _reason_paths(typing.get_args(tp)[0], f"{path}[]", out)
    return out


REASONS = {name: _reason_paths(model, "", {}) for name, model in RECORDS.items()}


def field_path(loc: tuple) -> tuple[str, str]:
    """A pydantic location (without the record index) -> (``turns[3].items[0]``, ``turns[].items[]``)."""
    path, pattern = "", ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            pattern += "[]"
        else:
            path += f".{part}" if path else str(part)
            pattern += f".{part}" if pattern else str(part)
    return path, pattern


def problem_of(table: str, file: str, line: int, rid, error: dict) -> Problem:
    """One pydantic error of a record of ``table`` as a Problem."""
    loc = error["loc"]
    value = error.get("input")
    kind = error["type"]
    if not loc and kind != "corpus":
        return Problem(file, line, None, "<record>", f"expected a JSON object, got {tname(value)}")
    path, pattern = field_path(loc)
    if kind == "corpus":
        at = error["ctx"]["at"]
        if at:
            path = path + (at if at[:1] in (".", "[") else (f".{at}" if path else at))
        return Problem(file, line, rid, path, error["ctx"]["reason"])
    if kind == "missing" or value is None:
        return Problem(file, line, rid, path, "missing required field")
    reasons = REASONS[table].get(pattern)
    template = getattr(reasons, _KIND.get(kind, "type"), "") if reasons else ""
    reason = template.format(type=tname(value), value=value) if template else error["msg"]
    return Problem(file, line, rid, path, reason)
