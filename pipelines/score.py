"""Batch scoring of candidate lists with a trained run.

    python -m pipelines.score --run RUN_DIR --model kdcn --requests requests.jsonl --out ranked.jsonl

A request (one JSON object per line)::

    {"request_id": "r1",
     "user_id": "U123",                      # or "profile": {...} inline (both: inline wins)
     "shop_id": "S7",                        # optional
     "turns": [{"role": "user", "text": "想要拍照清晰的手机", "items": []}, ...],   # dialogue so far
     "candidates": ["I1", "I2", {"item_id": "I_new", "category": "手机", "title": "...",
                                 "price": 1999, "attributes": {"颜色": "黑色"}}]}

Each request becomes one session whose next (staff) turn is the recommendation, and one sample;
the features go through the very ``FeaturePipeline.transform`` used for training, with the run's
fitted vocabularies, so scores match evaluation exactly. Users, items and values never seen in
training fall into the OOV ids.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from core.io import atomic_file
from features.materialize import FeaturePipeline
from pipelines.rundir import RunDir


# An item the run has never seen and the request does not describe: every item feature takes its
# OOV / missing value.
UNKNOWN_ITEM = {"category": "<unknown>", "shop_id": "<unknown>", "title": "", "price": None, "attributes": {}}


class RequestError(ValueError):
    """A scoring request is malformed; the message names the request and field."""


def _clean(v):
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


class Reference:
    """Users, items and behaviour logs of the training corpus, looked up by id."""

    def __init__(self, directory: Path):
        d = Path(directory)
        self.users = pd.read_parquet(d / "users.parquet").set_index("user_id", drop=False)
        self.items = pd.read_parquet(d / "items.parquet").set_index("item_id", drop=False)
        attrs = pd.read_parquet(d / "item_attrs.parquet")
        self.attrs = {k: dict(zip(g["name"], g["value"])) for k, g in attrs.groupby("item_id", sort=False)}
        b = pd.read_parquet(d / "behaviors.parquet")
        self.behaviors = {k: g for k, g in b.groupby("user_id", sort=False)}

    def user(self, user_id: str) -> dict | None:
        if user_id not in self.users.index:
            return None
        row = self.users.loc[user_id]
        profile = {k: _clean(v) for k, v in row.items() if k != "user_id"}
        return {"user_id": user_id, "profile": {k: v for k, v in profile.items() if v is not None}}

    def item(self, item_id: str) -> dict | None:
        if item_id not in self.items.index:
            return None
        r = self.items.loc[item_id]
        return {"item_id": item_id, "category": r["category"], "shop_id": r["shop_id"], "title": r["title"],
                "price": _clean(r["price"]), "attributes": self.attrs.get(item_id, {})}

    def user_behaviors(self, user_id: str) -> list[dict]:
        g = self.behaviors.get(user_id)
        return [] if g is None else [
            {"user_id": user_id, "type": t, "item_id": i, "ts": int(ts)}
            for t, i, ts in zip(g["type"], g["item_id"], g["ts"])]


def requests_to_records(requests: list[dict], ref: Reference) -> dict:
    """Turn scoring requests into corpus records (users, items, sessions, behaviors, samples)."""
    users, items, sessions, behaviors, samples = {}, {}, [], [], []

    def need_item(it, where):
        if isinstance(it, dict):
            if "item_id" not in it:
                raise RequestError(f"{where}: an inline item needs 'item_id'")
            rec = {**UNKNOWN_ITEM, **it}
            items[str(it["item_id"])] = rec
            return str(it["item_id"])
        iid = str(it)
        if iid not in items:
            # Unknown to the run: an empty record, so every item feature takes its OOV/missing value.
            items[iid] = ref.item(iid) or {**UNKNOWN_ITEM, "item_id": iid}
        return iid

    for i, req in enumerate(requests):
        if not isinstance(req, dict):
            raise RequestError(f"request #{i + 1}: must be a JSON object")
        rid = str(req.get("request_id", f"request-{i + 1}"))
        where = f"request '{rid}'"
        cands = req.get("candidates")
        if not isinstance(cands, list) or not cands:
            raise RequestError(f"{where}: field 'candidates' must be a non-empty list of item ids or item records")
        turns = req.get("turns", [])
        if not isinstance(turns, list):
            raise RequestError(f"{where}: field 'turns' must be a list of turns")
        uid = req.get("user_id")
        if uid is None and "profile" not in req:
            raise RequestError(f"{where}: give 'user_id' or an inline 'profile'")
        uid = str(uid) if uid is not None else f"__anonymous__{rid}"
        if "profile" in req:
            users[uid] = {"user_id": uid, "profile": req["profile"] or {}}
        elif uid not in users:
            users[uid] = ref.user(uid) or {"user_id": uid, "profile": {}}
            history = ref.user_behaviors(uid)
            for b in history:
                need_item(b["item_id"], f"{where} behaviour log")
            behaviors.extend(history)
        cand_ids = [need_item(c, f"{where} candidate #{j + 1}") for j, c in enumerate(cands)]
        clean_turns = []
        for t_i, t in enumerate(turns):
            if not isinstance(t, dict):
                raise RequestError(f"{where}: turn #{t_i + 1} must be an object with role and text")
            t = {"items": [], "intent": None, "recommend": None, **t}
            t["items"] = [need_item(x, f"{where} turn #{t_i + 1}") for x in t["items"]]
            clean_turns.append(t)
        if not clean_turns:  # the corpus format wants at least one turn of context
            clean_turns.append({"role": "user", "text": "", "items": [], "intent": None, "recommend": None})
        # The recommendation happens at the next staff turn: everything given is context.
        clean_turns.append({"role": "staff", "text": "", "items": [], "intent": None, "recommend": True})
        sid = f"__session__{rid}"
        sessions.append({"session_id": sid, "user_id": uid, "shop_id": str(req.get("shop_id") or ""),
                         "turns": clean_turns})
        samples.append({"sample_id": rid, "session_id": sid, "turn": len(clean_turns) - 1, "candidates": cand_ids,
                        "label_item": cand_ids[0], "split": "test"})  # label unused when scoring
    return {"users": list(users.values()), "items": list(items.values()), "sessions": sessions,
            "behaviors": behaviors, "samples": samples}


class Scorer:
    """A trained ranker of a run with its fitted features, ready to score requests:
    ``Scorer.load(run_dir, "kdcn").score(requests)``."""

    def __init__(self, run: RunDir, model_dir: Path):
        from rankers.registry import load

        self.run = run
        self.model = load(model_dir)
        self.pipeline = FeaturePipeline.load(run.features, show_progress=False)
        self.reference = Reference(run.reference)

    @classmethod
    def load(cls, run_dir: str | Path, model: str, feature_set: str | None = None) -> "Scorer":
        """Without ``feature_set``: the model's feature set with the most fields (the full set)."""
        run = RunDir(run_dir)
        _, model_dir = run.find_model(model, feature_set)
        return cls(run, model_dir)

    def score_corpus(self, corpus) -> tuple[pd.DataFrame, np.ndarray]:
        table = self.pipeline.transform(corpus, use_cache=False)
        return table.rows, self.model.predict(table.X(self.model.space))

    def score(self, requests: list[dict]) -> list[dict]:
        """Per request: candidates ordered by score (highest first) with their scores."""
        from core.corpus import Corpus

        records = requests_to_records(requests, self.reference)
        corpus = Corpus.from_records(**records, source="<requests>")
        rows, scores = self.score_corpus(corpus)
        rows = rows.assign(score=scores)
        out = []
        by_sample = {k: g for k, g in rows.groupby("sample_id", sort=False)}
        for s in records["samples"]:
            g = by_sample[s["sample_id"]].sort_values(["score", "position"], ascending=[False, True], kind="stable")
            out.append({"request_id": s["sample_id"],
                        "ranking": [{"item_id": i, "score": float(v)} for i, v in zip(g["item_id"], g["score"])]})
        return out


def read_requests(path: Path) -> list[dict]:
    out = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                out.append(json.loads(raw.decode("utf-8")))
            except UnicodeDecodeError as e:
                raise RequestError(f"{path}:{n}: not valid UTF-8 ({e.reason})") from None
            except json.JSONDecodeError as e:
                raise RequestError(f"{path}:{n}: malformed JSON ({e.msg} at column {e.colno})") from None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.score", description="Rank candidate lists with a trained run.")
    ap.add_argument("--run", required=True, help="run directory written by pipelines.run")
    ap.add_argument("--model", required=True, help="ranker name, e.g. kdcn or deepfm")
    ap.add_argument("--feature-set", help="which feature set's model (default: the one with the most features)")
    ap.add_argument("--requests", required=True, help="requests JSON Lines file")
    ap.add_argument("--out", required=True, help="output JSON Lines file (written atomically)")
    ap.add_argument("--batch-size", type=int, default=512, help="requests per batch")
    args = ap.parse_args(argv)
    from core.corpus import CorpusError

    try:
        reqs = read_requests(Path(args.requests))
        ranker = Scorer.load(args.run, args.model, args.feature_set)
        t0 = time.perf_counter()
        out_path = Path(args.out)
        n_cand = 0
        with atomic_file(out_path) as f:
            for s in range(0, len(reqs), args.batch_size):
                for r in ranker.score(reqs[s : s + args.batch_size]):
                    n_cand += len(r["ranking"])
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
    except (RequestError, CorpusError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    dt = time.perf_counter() - t0
    print(f"scored {len(reqs)} requests ({n_cand} candidates) in {dt:.2f}s -> {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
