"""Preference words of the dialogue context (annotation first, extraction otherwise)."""
from __future__ import annotations

import pandas as pd


def preferences_for_context(ctx) -> pd.DataFrame:
    """sample_id, turn_idx, text, type for the user turns of each sample's context."""
    pw = ctx.corpus.pref_words
    s = ctx.corpus.samples[["sample_id", "session_id", "turn"]]
    m = pw.merge(s, on="session_id", how="inner")
    m = m[m["turn_idx"] < m["turn"]]
    return m[["sample_id", "turn_idx", "text", "type"]].reset_index(drop=True)
