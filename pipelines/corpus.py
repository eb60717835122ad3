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
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
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

    def candidate_rows(self) -> pd.DataFrame:
        """One row per (sample, candidate): row_id, sample_id, session_id, user_id, turn, item_id,
        position, label, split. Ordered by sample then candidate position; ``row_id`` is 0..n-1."""
        rows = self.candidates.merge(
            self.samples[["sample_id", "session_id", "user_id", "turn", "split"]], on="sample_id", how="left",
            sort=False,
        )
        rows.insert(0, "row_id", range(len(rows)))
        return rows
