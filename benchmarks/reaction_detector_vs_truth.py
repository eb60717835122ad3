"""The reaction detector (lexicon only) against the simulator's recorded reactions on a generated corpus.

    python -m benchmarks.reaction_detector_vs_truth [--corpus DIR | --scale default]

Per candidate: the detector's latest reaction before the recommendation turn (``item_reaction``'s
reading) against the truth table's ``reaction``. Prints the cross table, how often a detected
rejection is bought, the false alarms (detected rejections where the simulator recorded none) and
their most frequent wordings. Writes ``benchmarks/results/reaction_detector_vs_truth.json``.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "reaction_detector_vs_truth.json"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=None, help="a generated corpus directory (default: the embedded one)")
    ap.add_argument("--scale", default="default")
    a = ap.parse_args(argv)
    import pandas as pd

    from benchmarks.common import write_results
    from core.corpus import load_corpus
    from features.context import FeatureContext
    from features.extractors.feedback import _latest_per_sample, session_reactions
    from features.reactions import ReactionDetector
    from synth import default_corpus_dir, load_truth

    t0 = time.perf_counter()
    corpus_dir = Path(a.corpus) if a.corpus else default_corpus_dir(scale=a.scale, seed=0)
    corpus = load_corpus(corpus_dir, seed=0)
    ctx = FeatureContext(corpus, artifacts=None, cache=None, lexicon=[])
    replies = session_reactions(ctx, ReactionDetector(None))
    latest = _latest_per_sample(ctx, replies)
    truth = load_truth(corpus_dir)
    total = truth["utility"] + truth["gumbel"]
    truth = truth.assign(bought=total == total.groupby(truth["sample_id"]).transform("max"))
    m = truth.merge(latest, on=["sample_id", "item_id"], how="left")
    m["label"] = m["label"].fillna("none")
    cross = pd.crosstab(m["reaction"], m["label"])
    neg = m[m["label"].isin(["negative", "implied"])]
    false = neg[neg["reaction"] != -1]
    # The wording of each false alarm: the detector's negative replies to that item before the sample's turn.
    fa = false.merge(corpus.samples[["sample_id", "session_id", "turn"]], on="sample_id").merge(
        replies[replies["label"].isin(["negative", "implied"])], on=["session_id", "item_id"], suffixes=("", "_reply"))
    fa = fa[fa["turn_idx"] < fa["turn"]]
    texts = corpus.turns.set_index(["session_id", "turn_idx"])["text"]
    wording = texts.loc[list(zip(fa["session_id"], fa["turn_idx"]))].value_counts().head(25)
    out = {"corpus": str(corpus_dir), "cross": {str(k): v for k, v in cross.to_dict(orient="index").items()},
           "detected_negative": int(len(neg)), "detected_negative_bought": float(neg["bought"].mean()),
           "false_alarms": int(len(false)), "false_alarms_bought": float(false["bought"].mean()),
           "no_reaction_bought": float(m.loc[m["reaction"] == 0, "bought"].mean()),
           "top_false_alarm_wordings": wording.to_dict(), "wall_s": time.perf_counter() - t0,
           "loadavg": os.getloadavg()}
    print(cross.to_string())
    print(f"detected rejections {out['detected_negative']}, bought {out['detected_negative_bought']:.4f}; "
          f"false alarms {out['false_alarms']}, bought {out['false_alarms_bought']:.4f}")
    print(wording.to_string())
    write_results(RESULTS, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
