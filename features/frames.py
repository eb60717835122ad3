"""Small DataFrame helpers the extractors share."""
from __future__ import annotations

import numpy as np
import pandas as pd


def isin(column: pd.Series, values) -> np.ndarray:
    """``column.isin(values)`` as a boolean array, by a hash-index lookup.

    pandas' ``isin`` on Arrow-backed strings builds one pyarrow scalar per wanted value: 46 ms for
    50k rows against 9k item ids, where this takes 8 ms (measured, pandas 3.1; batch scoring filters
    the request corpus's attribute and title tables by its candidates this way)."""
    wanted = pd.Index(pd.unique(np.asarray(values, dtype=object)))
    return wanted.get_indexer(column) >= 0
