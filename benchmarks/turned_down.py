"""Issue 14's check on a finished run: does the model push down an item the customer turned down?

    python benchmarks/turned_down.py --run RUN_DIR [--model deepfm,lr,gbdt,dcn,kdcn] [--feature-set SET]

For every test request of the run's corpus, a new dialogue: the customer's first utterance, the staff
showing ONE item (the item the customer bought in the generated dialogue, the one a model likes most),
the customer's reply, then the recommendation. Replies are written here, not by the simulator: a
rejection in one of ten wordings, or a neutral reply. Scored through ``pipelines.score.Scorer`` (the
service path). Reported: the share of requests where the turned-down item ranks below at least half of
its candidates, where it ranks first, its median score ratio to the neutral reply, and the share of
candidates above it after each reply; and the same for the simulator's own purchase model (``truth``,
an oracle: what a perfect ranker of this corpus would do).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_serve import corpus_dir_of  # noqa: E402
from benchmarks.common import format_table, write_results  # noqa: E402

REJECTIONS = ["这个我不太喜欢，还有别的吗", "感觉一般，换一款吧", "不是我想要的那种", "这款不行，看看其他的",
              "算了，这个不考虑了", "颜色我不喜欢，有没有别的", "这个有点丑啊", "不太满意，再推荐一个吧",
              "这款就不要了", "看不上这个，换换"]
NEUTRAL = "好的，我看看"


def requests(corpus_dir: Path, cfg: dict, reply_of) -> list[dict]:
    """The run's test requests (its corpus, seed and split) with the dialogue rewritten as above."""
    from core.corpus import load_corpus

    split = {"split_ratios": tuple(cfg["split"])} if cfg.get("split") else {}
    corpus = load_corpus(corpus_dir, seed=cfg.get("seed", 0), **split)
    sessions = {s["session_id"]: s for s in map(json.loads, (corpus_dir / "sessions.jsonl").open())}
    test = corpus.samples[corpus.samples["split"] == "test"]
    cands = corpus.candidates.groupby("sample_id", sort=False)["item_id"].apply(list)
    out = []
    for k, r in enumerate(test.itertuples()):
        first = sessions[r.session_id]["turns"][0]["text"]
        out.append({"request_id": r.sample_id, "user_id": r.user_id, "candidates": cands[r.sample_id],
                    "turns": [{"role": "user", "text": first},
                              {"role": "staff", "text": "您看看这款", "items": [r.label_item]},
                              {"role": "user", "text": reply_of(k)}],
                    "shown": r.label_item})
    return out


def shown_item(scorer, reqs: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per request: the shown item's score, the share of candidates scored above it, whether it is first."""
    score, above, first = [], [], []
    for s in range(0, len(reqs), 256):
        chunk = reqs[s: s + 256]
        results = scorer.score([{k: v for k, v in q.items() if k != "shown"} for q in chunk])
        for q, res in zip(chunk, results):
            scores = {c["item_id"]: c["score"] for c in res["ranking"]}
            mine = scores[q["shown"]]
            score.append(mine)
            above.append(np.mean([v > mine for v in scores.values()]))
            first.append(res["ranking"][0]["item_id"] == q["shown"])
    return np.array(score), np.array(above), np.array(first)


def simulator_truth(corpus_dir: Path, reqs: list[dict], rejected: bool) -> tuple[np.ndarray, np.ndarray]:
    """What the simulator's purchase model says of the rewritten requests (an oracle row): per request
    the share of candidates whose true utility is above the shown item's, and whether it is first.
    Utility = the generated dialogue's ``bf + cf`` (``_truth.parquet``; the rewrite keeps only the first
    utterance, so ``cf`` is an approximation) + the rewritten dialogue's interaction block
    (``synth.episode``, ``synth.feedback``): the shown item ``W_MENTION + W_RECENT`` (``- W_FB_NEG`` when
    turned down), every other candidate ``W_SIM x overlap`` (``- W_FB_NEG x SIBLING_SHARE x overlap``
    when turned down), overlap = the share of its attribute values (brand and model included) equal
    to the shown item's."""
    from synth.feedback import SIBLING_SHARE, W_FB_NEG
    from synth.generate import load_truth
    from synth.model import W_MENTION, W_RECENT, W_SIM

    truth = load_truth(corpus_dir).set_index(["sample_id", "item_id"])
    attrs = {d["item_id"]: d.get("attributes", {}) for d in map(json.loads, (corpus_dir / "items.jsonl").open())}
    above, first = [], []
    for q in reqs:
        shown = attrs[q["shown"]]
        u = truth.loc[[(q["request_id"], c) for c in q["candidates"]]]
        util = (u["bf"] + u["cf"]).to_numpy(float, copy=True)
        overlap = np.array([np.mean([shown.get(k) == v for k, v in attrs[c].items()]) if attrs[c] else 0.0
                            for c in q["candidates"]])
        me = q["candidates"].index(q["shown"])
        overlap[me] = 0.0  # the shown item's own interaction terms are below
        util += (W_SIM - (W_FB_NEG * SIBLING_SHARE if rejected else 0.0)) * overlap
        util[me] += W_MENTION + W_RECENT - (W_FB_NEG if rejected else 0.0)
        above.append(np.mean(util > util[me]))
        first.append(bool(np.argmax(util) == me))
    return np.array(above), np.array(first)


def main() -> None:
    import yaml

    from pipelines.score import Scorer

    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--model", default="deepfm", help="comma-separated models of the run")
    ap.add_argument("--feature-set", default=None)
    ap.add_argument("--out", default="benchmarks/results/turned_down.json")
    args = ap.parse_args()
    run = Path(args.run)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    corpus_dir = corpus_dir_of(run)
    neutral_reqs = requests(corpus_dir, cfg, lambda k: NEUTRAL)
    rejected_reqs = requests(corpus_dir, cfg, lambda k: REJECTIONS[k % len(REJECTIONS)])
    rows = []
    for name, reqs, rejected in (("neutral reply", neutral_reqs, False), ("turned down", rejected_reqs, True)):
        above, first = simulator_truth(corpus_dir, reqs, rejected)
        rows.append({"model": "truth", "reply": name, "requests": len(above), "first": float(first.mean()),
                     "below_half": float((above >= 0.5).mean()), "above_share": float(above.mean()),
                     "score_ratio_median": float("nan")})
    for model in args.model.split(","):
        scorer = Scorer.load(run, model, args.feature_set)
        scorer.warm_up()
        neutral = shown_item(scorer, neutral_reqs)
        rejected = shown_item(scorer, rejected_reqs)
        for name, (score, above, first) in (("neutral reply", neutral), ("turned down", rejected)):
            rows.append({"model": model, "reply": name, "requests": len(score), "first": float(first.mean()),
                         "below_half": float((above >= 0.5).mean()), "above_share": float(above.mean()),
                         "score_ratio_median": float(np.median(score / neutral[0]))})
    print(format_table(rows, [("model", "model", "<7"), ("reply", "reply", "<14"), ("requests", "requests", "d"),
                              ("ranked first", "first", ".3f"), ("below half", "below_half", ".3f"),
                              ("share above", "above_share", ".3f"),
                              ("score / neutral (median)", "score_ratio_median", ".3f")]))
    write_results(args.out, {"run": str(run), "model": args.model, "feature_set": args.feature_set, "rows": rows})


if __name__ == "__main__":
    main()
