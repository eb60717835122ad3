"""DataFrames built from column arrays without the constructor's checks: the tables of one scoring
request have a few rows each, and ``pd.DataFrame(dict)`` spends most of its time inspecting and
converting its input, not copying values."""
from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np
import pandas as pd


def frame_of(columns: Mapping[str, np.ndarray | pd.api.extensions.ExtensionArray | pd.Series]) -> pd.DataFrame:
    """``pd.DataFrame(columns)`` (same columns, dtypes, blocks and RangeIndex) for values that are
    1-d numpy arrays, pandas extension arrays or Series with a RangeIndex, all of one length. Numpy
    arrays are copied into their blocks (as the constructor does); extension arrays are stored as
    they are, so pass ones nobody else holds (``.copy()`` an array of another frame: Arrow data is
    shared, not copied). About half the constructor's time for a request's tables (a 21-column
    ``users`` table of one row: 180 -> 90 us). An object ndarray goes through the constructor, which
    infers its dtype (strings become ``str``); an object Series stays object, as there."""
    if not columns or any(isinstance(v, np.ndarray) and v.dtype == object for v in columns.values()):
        return pd.DataFrame(columns)
    arrays = list(columns.values())
    return pd.DataFrame._from_arrays(arrays, columns=_column_index(tuple(columns)),
                                     index=pd.RangeIndex(len(arrays[0])), verify_integrity=False)


@functools.lru_cache(maxsize=1024)
def _column_index(names: tuple[str, ...]) -> pd.Index:
    """The (immutable) column index of ``names``, shared by the frames with these columns: the
    ``str`` index built from a list costs as much as the rest of a small frame."""
    return pd.Index(list(names))
