"""Corpus statistics shaped like E-ConvRec tables 2 (sessions) and 3 (users and items), plus the
ranking task's numbers (candidates per sample, positive rate, splits), preference words and intents.

Definitions (``docs/data_format.md``): an *utterance* is one entry of a session's ``turns`` list;
a *turn* (as in E-ConvRec table 2) is one exchange: a run of user utterances and the staff
utterances that answer it (a session opening with staff starts a turn too). *Words* are jieba
tokens that contain at least one letter, digit or CJK character (punctuation and spaces do not
count). A user "without profile" has every profile field missing; an item "without KB" has no
attributes.

CLI: ``python -m pipelines.stats DIR [--json] [--no-words]``.
"""
from __future__ import annotations

import argparse
import json
import re
import sys

import numpy as np
import pandas as pd

from core.corpus import PREF_TYPES, Corpus, load_corpus

_WORDY = re.compile(r"[0-9A-Za-z\u3400-\u9fff]")


def count_words(texts: pd.Series) -> tuple[int, np.ndarray]:
    """Total and per-text jieba word counts (distinct texts are segmented once)."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    texts = texts.fillna("").astype(str)
    codes, uniq = pd.factorize(texts)
    per_uniq = np.array([sum(1 for w in jieba.lcut(t) if _WORDY.search(w)) for t in uniq], dtype=np.int64)
    per = per_uniq[codes] if len(codes) else np.zeros(0, np.int64)
    return int(per.sum()), per


def corpus_stats(corpus: Corpus, words: bool = True) -> dict:
    t = corpus.turns.sort_values(["session_id", "turn_idx"], kind="stable")
    sess = t["session_id"].to_numpy()
    role = t["role"].to_numpy()
    first = np.ones(len(t), bool)
    first[1:] = sess[1:] != sess[:-1]
    prev_staff = np.zeros(len(t), bool)
    prev_staff[1:] = role[:-1] == "staff"
    new_turn = first | ((role == "user") & prev_staff)
    turns_per = pd.Series(new_turn).groupby(sess).sum()
    utts_per = t.groupby("session_id", sort=False).size()
    n_sessions = len(corpus.sessions)
    out: dict = {
        "sessions": {
            "total_cases": int(len(corpus.samples)),
            "total_sessions": n_sessions,
            "total_turns": int(turns_per.sum()),
            "avg_turns_per_session": float(turns_per.mean()) if len(turns_per) else 0.0,
            "max_turns": int(turns_per.max()) if len(turns_per) else 0,
            "min_turns": int(turns_per.min()) if len(turns_per) else 0,
            "mode_turns": int(turns_per.mode().min()) if len(turns_per) else 0,
            "share_sessions_3_to_12_turns": float(turns_per.between(3, 12).mean()) if len(turns_per) else 0.0,
            "total_utterances": int(len(t)),
            "max_utterances": int(utts_per.max()) if len(utts_per) else 0,
            "min_utterances": int(utts_per.min()) if len(utts_per) else 0,
        }
    }
    if words:
        total, per = count_words(t["text"])
        out["sessions"]["total_words"] = total
        out["sessions"]["avg_words_per_utterance"] = float(per.mean()) if len(per) else 0.0
    u = corpus.users
    prof = u.drop(columns="user_id")
    no_prof = prof.isna().all(axis=1) if prof.shape[1] else pd.Series(True, index=u.index)
    with_kb = corpus.items["item_id"].isin(corpus.item_attrs["item_id"])
    out["users_items"] = {
        "total_items": int(len(corpus.items)),
        "total_users": int(len(u)),
        "users_without_profile": int(no_prof.sum()),
        "items_without_kb": int((~with_kb).sum()),
        "categories": int(corpus.items["category"].nunique()),
        "shops": int(corpus.items["shop_id"].nunique()),
        "distinct_attribute_names": int(corpus.item_attrs["name"].nunique()),
        "distinct_attribute_values": int(corpus.item_attrs["value"].nunique()),
        "behaviors": int(len(corpus.behaviors)),
    }
    c = corpus.candidates
    per_sample = c.groupby("sample_id", sort=False).size()
    lab = corpus.samples[["sample_id", "session_id", "turn", "label_item"]]
    ti = corpus.turn_items.merge(lab, left_on=["session_id", "item_id"], right_on=["session_id", "label_item"])
    mentioned = ti.loc[ti["turn_idx"] < ti["turn"], "sample_id"].nunique()
    out["ranking"] = {
        "samples": int(len(corpus.samples)),
        "candidate_rows": int(len(c)),
        "candidates_per_sample_mean": float(per_sample.mean()) if len(per_sample) else 0.0,
        "candidates_per_sample_min": int(per_sample.min()) if len(per_sample) else 0,
        "candidates_per_sample_max": int(per_sample.max()) if len(per_sample) else 0,
        "positive_rate": float(c["label"].mean()) if len(c) else 0.0,
        "label_mentioned_before_turn": float(mentioned / max(1, len(corpus.samples))),
        "splits": {k: int(v) for k, v in corpus.samples["split"].value_counts().sort_index().items()},
    }
    pw = corpus.pref_words
    out["preference_words"] = {
        k: {"count": int((pw["type"] == k).sum()),
            "share_of_sessions": float(pw.loc[pw["type"] == k, "session_id"].nunique() / max(1, n_sessions))}
        for k in PREF_TYPES
    }
    ut = t[t["role"] == "user"]
    out["intents"] = {str(k): float(v) for k, v in ut["intent"].value_counts(normalize=True, dropna=False).items()}
    out["recommend_turns"] = int(t["recommend"].fillna(False).astype(bool).sum())
    return out


def format_stats(s: dict) -> str:
    def table(title, rows):
        w = max(len(k) for k, _ in rows)
        lines = [title, "-" * (w + 16)]
        for k, v in rows:
            if isinstance(v, float):
                lines.append(f"{k:<{w}}  {v:>12.4f}" if abs(v) < 1 else f"{k:<{w}}  {v:>12,.2f}")
            else:
                lines.append(f"{k:<{w}}  {v:>12,}")
        return "\n".join(lines)

    ss = s["sessions"]
    t2 = [("Total cases", ss["total_cases"]), ("Total sessions", ss["total_sessions"]), ("Total turns", ss["total_turns"]),
          ("Average turns per session", ss["avg_turns_per_session"]), ("Max turns", ss["max_turns"]),
          ("Min turns", ss["min_turns"]), ("Mode turns", ss["mode_turns"]),
          ("Sessions with 3-12 turns", ss["share_sessions_3_to_12_turns"]),
          ("Total utterances", ss["total_utterances"]), ("Max utterances", ss["max_utterances"]),
          ("Min utterances", ss["min_utterances"])]
    if "total_words" in ss:
        t2 += [("Total words", ss["total_words"]), ("Average words per utterance", ss["avg_words_per_utterance"])]
    ui = s["users_items"]
    t3 = [("Total items", ui["total_items"]), ("Total users", ui["total_users"]),
          ("Users without the profile", ui["users_without_profile"]), ("Items without the KB", ui["items_without_kb"]),
          ("Categories", ui["categories"]), ("Shops", ui["shops"]),
          ("Distinct attribute names", ui["distinct_attribute_names"]), ("Behaviour records", ui["behaviors"])]
    r = s["ranking"]
    tr = [("Samples", r["samples"]), ("Candidate rows", r["candidate_rows"]),
          ("Candidates per sample (mean)", r["candidates_per_sample_mean"]),
          ("Candidates per sample (min)", r["candidates_per_sample_min"]),
          ("Candidates per sample (max)", r["candidates_per_sample_max"]), ("Positive rate", r["positive_rate"]),
          ("Label linked before the turn", r["label_mentioned_before_turn"])]
    tr += [(f"Split {k}", v) for k, v in r["splits"].items()]
    tp = [(f"{k} words (share of sessions)", f"{v['count']:,} ({v['share_of_sessions']:.1%})")
          for k, v in s["preference_words"].items()]
    ti = [(k, f"{v:.2%}") for k, v in s["intents"].items()]
    parts = [table("Table 2: session statistics", t2), table("Table 3: user and product statistics", t3),
             table("Ranking task", tr)]
    for title, rows in (("Preference words", tp), ("User intents (table 5)", ti)):
        w = max([len(k) for k, _ in rows] + [10])
        parts.append("\n".join([title, "-" * (w + 16)] + [f"{k:<{w}}  {v:>12}" for k, v in rows]))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.stats", description="E-ConvRec style corpus statistics")
    ap.add_argument("corpus", help="corpus directory")
    ap.add_argument("--json", action="store_true", help="print JSON instead of tables")
    ap.add_argument("--no-words", action="store_true", help="skip the jieba word counts (faster)")
    ap.add_argument("--policy", default="strict", choices=["strict", "skip"])
    a = ap.parse_args(argv)
    corpus = load_corpus(a.corpus, policy=a.policy)
    s = corpus_stats(corpus, words=not a.no_words)
    print(json.dumps(s, ensure_ascii=False, indent=1) if a.json else format_stats(s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
