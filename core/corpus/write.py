"""Writing a corpus back as JSON Lines records (``docs/data_format.md``), through ``core.io``."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import pandas as pd

from core.io import write_jsonl

if TYPE_CHECKING:
    from core.corpus.frame import Corpus


def save_corpus(c: "Corpus", out_dir: str | Path) -> Path:
    """Write ``users.jsonl`` ... ``samples.jsonl`` into ``out_dir`` (each file atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, records in (("users", _users_records(c)), ("items", _items_records(c)),
                          ("sessions", _sessions_records(c)), ("behaviors", _behaviors_records(c)),
                          ("samples", _samples_records(c))):
        write_jsonl(out / f"{name}.jsonl", records)
    return out


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


def _group_rows(keys: list, *cols: list) -> dict:
    out: dict = {}
    for row in zip(keys, *cols):
        out.setdefault(row[0], []).append(row[1:])
    return out


def _users_records(c: "Corpus") -> Iterator[dict]:
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


def _items_records(c: "Corpus") -> Iterator[dict]:
    a = c.item_attrs
    attrs = _group_rows(a["item_id"].tolist(), a["name"].tolist(), a["value"].tolist())
    it = c.items
    for iid, cat, shop, title, price in zip(it["item_id"].tolist(), _col(it, "category"), _col(it, "shop_id"),
                                            _col(it, "title"), _col(it, "price")):
        d: dict = {}
        for name, value in attrs.get(iid, ()):
            if name in d:  # a multi-valued attribute comes back as an array
                if not isinstance(d[name], list):
                    d[name] = [d[name]]
                d[name].append(value)
            else:
                d[name] = value
        yield {"item_id": iid, "category": cat, "shop_id": shop, "title": title, "price": price, "attributes": d}


def _sessions_records(c: "Corpus") -> Iterator[dict]:
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


def _behaviors_records(c: "Corpus") -> Iterator[dict]:
    b = c.behaviors
    for uid, typ, iid, ts in zip(b["user_id"].tolist(), b["type"].tolist(), b["item_id"].tolist(),
                                 b["ts"].tolist()):
        yield {"user_id": uid, "type": typ, "item_id": iid, "ts": int(ts)}


def _samples_records(c: "Corpus") -> Iterator[dict]:
    cd = c.candidates
    cands = _group_rows(cd["sample_id"].tolist(), cd["position"].tolist(), cd["item_id"].tolist())
    s = c.samples
    for sid, ses, turn, label, split in zip(s["sample_id"].tolist(), s["session_id"].tolist(), s["turn"].tolist(),
                                            s["label_item"].tolist(), _col(s, "split")):
        cl = [x[1] for x in sorted(cands.get(sid, ()), key=lambda x: x[0])]
        yield {"sample_id": sid, "session_id": ses, "turn": int(turn), "candidates": cl, "label_item": label,
               "split": split}
