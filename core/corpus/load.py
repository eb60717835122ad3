"""Reading a corpus directory: ``<table>.jsonl`` or ``<table>.parquet`` -> raw records -> validation."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from core.corpus.frame import Corpus
from core.corpus.records import SPLIT_RATIOS, CorpusError, Problem
from core.corpus.validate import SOURCE_TABLES, RawTable, build_tables, no_gc

REQUIRED_TABLES = ("users", "items", "sessions", "samples")


def load_corpus(
    path: str | Path,
    policy: str = "strict",
    seed: int = 0,
    report_path: str | Path | None = None,
    split_ratios: tuple[float, float, float] = SPLIT_RATIOS,
) -> Corpus:
    """Load and validate a corpus directory (``docs/data_format.md``).

    Each table is read from ``<name>.jsonl`` or, failing that, ``<name>.parquet``;
    ``behaviors`` is optional, the others are required. Files whose names start with ``_`` (e.g. the
    generator's ``_truth.parquet``) are ignored. ``policy``: ``"strict"`` raises
    :class:`CorpusError` listing the problems; ``"skip"`` drops offending and dependent records,
    records them in ``corpus.meta["dropped"]`` and, when ``report_path`` is given, writes them there
    as JSON. ``seed`` drives the session split of samples without a ``split`` (train:valid:test
    ``split_ratios``, 8:1:1 by default).
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"corpus directory not found: {root}")
    with no_gc():
        raw: dict[str, RawTable] = {}
        missing = []
        for name in SOURCE_TABLES:
            jl, pq = root / f"{name}.jsonl", root / f"{name}.parquet"
            if jl.is_file():
                raw[name] = read_jsonl(jl)
            elif pq.is_file():
                raw[name] = read_parquet(pq, name)
            elif name in REQUIRED_TABLES:
                missing.append(Problem(f"{name}.jsonl", 0, None, "<file>",
                                       f"required table missing: neither {name}.jsonl nor {name}.parquet exists"))
            else:
                raw[name] = RawTable(f"{name}.jsonl", [], [])
        if missing:
            raise CorpusError(missing, source=str(root))
        tables, meta = build_tables(raw, policy=policy, seed=seed, source=str(root), report_path=report_path,
                                    split_ratios=split_ratios)
    return Corpus(**tables, root=root, meta=meta)


def read_jsonl(path: Path) -> RawTable:
    """Parse a JSON Lines file; undecodable or malformed lines become problems, blank lines are skipped."""
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
    return RawTable(name, records, problems, "jsonl")


_NESTED = {"users": "profile", "items": "attributes", "sessions": "turns"}


def read_parquet(path: Path, table: str) -> RawTable:
    """Rows of a parquet table as JSON-like records. ``users`` may be flat (one column per profile
    field); nested columns may be stored as JSON text."""
    name = path.name
    try:
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    except Exception as e:  # noqa: BLE001 - any reader failure is a corpus problem
        return RawTable(name, [], [Problem(name, 0, None, "<file>", f"cannot read parquet: {type(e).__name__}: {e}")],
                        "parquet")
    nested = _NESTED.get(table)
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
    return RawTable(name, out, [], "parquet")


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
