"""The in-memory corpus: the ten tables as pandas DataFrames (columns: ``core.corpus`` docstring)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from core.corpus.records import is_missing
from core.corpus.validate import (CANDIDATE_COLUMNS, SOURCE_TABLES, KnownItems, KnownRecords, RawTable, build_tables,
                                  column_array, column_index, frame_of, no_gc, positions_in, take_columns)
from core.corpus.write import save_corpus

TABLE_NAMES = ("users", "items", "item_attrs", "sessions", "turns", "turn_items", "pref_words", "behaviors",
               "samples", "candidates")


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
        cols = ["session_id", "user_id", "turn", "split"]
        samples, candidates = self.samples, self.candidates
        at = positions_in(column_array(candidates, "sample_id"), column_array(samples, "sample_id"))
        if at is None:  # a sample missing or repeated: the merge's rows, as they are
            rows = candidates.merge(samples[["sample_id", *cols]], on="sample_id", how="left", sort=False)
            rows.insert(0, "row_id", range(len(rows)))
            return rows
        # Each candidate's one sample: its columns gathered by position into a frame built from
        # the tables' arrays (a merge costs 2-3x this: 1.2 -> 0.4 ms for one request, 2.5 -> 1.4 for
        # 306; Series per column cost 4x the rest: 0.45 -> 0.1 ms for one request).
        names = CANDIDATE_COLUMNS if candidates.columns is column_index(CANDIDATE_COLUMNS) else list(candidates.columns)
        table = {"row_id": np.arange(len(at), dtype=np.int64)}
        for c in names:  # the rows' own arrays: numpy ones are copied into the frame's blocks
            v = column_array(candidates, c)
            table[c] = v if isinstance(v, np.ndarray) else v.copy()
        table.update(take_columns({c: column_array(samples, c) for c in cols}, at))
        return frame_of(table)

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
        known_items: KnownItems | None = None,
        known_records: KnownRecords | None = None,
    ) -> "Corpus":
        """Build a corpus from records shaped like the JSON Lines format (``docs/data_format.md``),
        with exactly the validation of :func:`load_corpus`. Problems name ``<source>/<table>`` as
        file and the 1-based position of the record as line. ``known_items``: item records validated
        before; one equal to an item record here gives its rows without a second check.
        ``known_records``: records validated before; a record that is one of them keeps its model."""
        given = {"users": users, "items": items, "sessions": sessions, "behaviors": behaviors, "samples": samples}
        with no_gc():
            raw = {name: RawTable(f"{source}/{name}", list(enumerate([] if given[name] is None else given[name], 1)),
                                  []) for name in SOURCE_TABLES}
            tables, meta = build_tables(raw, policy=policy, seed=seed, source=source, report_path=report_path,
                                        known_items=known_items, known_records=known_records)
        return cls(**tables, root=None, meta=meta)

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
        return save_corpus(self, out_dir)

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
                          if not is_missing(v) else "\x00null")
        out[str(c)] = col
    return pd.DataFrame(out)
