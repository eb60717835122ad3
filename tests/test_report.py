"""Report aggregation: seed means and spreads, request-bootstrap intervals, paired differences,
on a hand-built run directory with planted differences between models."""
import json

import numpy as np
import pandas as pd
import pytest

from core.io import write_json
from core.metrics import evaluate
from pipelines.report import comparisons, differences, differences_table, summarise, table8
from pipelines.rundir import RunDir

N_REQ, PER = 400, 10
# how far each pair pushes the positive up: kdcn clearly above dcn, the ablation step a small gain
LIFT = {("lr", "BF+IF"): 0.3, ("deepfm", "BF"): 0.1, ("deepfm", "BF+IF"): 0.35, ("dcn", "all"): 0.4,
        ("kdcn", "all"): 0.6}


def _scores(lift: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = rng.random((N_REQ, PER))
    s[:, 0] += lift
    return (s / s.max()).ravel()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = RunDir(tmp_path_factory.mktemp("run"))
    y = np.zeros((N_REQ, PER), int)
    y[:, 0] = 1
    y = y.ravel()
    sid = np.repeat([f"s{i}" for i in range(N_REQ)], PER)
    item = np.tile([f"i{j}" for j in range(PER)], N_REQ)
    results = []
    for seed in (0, 1):
        for (model, fs), lift in LIFT.items():
            s = _scores(lift, 100 * seed + len(results))
            out = run.result_dir(model, fs, None if seed == 0 else seed)
            out.mkdir(parents=True)
            pd.DataFrame({"sample_id": sid, "item_id": item, "label": y, "score": s}).to_parquet(
                run.predictions(model, fs, None if seed == 0 else seed), index=False)
            r = {"model": model, "feature_set": fs, "seed": seed, **evaluate(y, s, sid), "train_s": 1.0,
                 "history": {"val_auc": [0.6, 0.7]}}
            write_json(run.result_json(model, fs, None if seed == 0 else seed), r)
            results.append(r)
    return run, results


def test_seed_means_spreads_and_intervals(finished):
    run, results = finished
    rows, reps = summarise(run, results, first_seed=0, n_boot=300)
    assert [(r["model"], r["feature_set"]) for r in rows] == list(LIFT)
    for row in rows:
        mine = [r for r in results if (r["model"], r["feature_set"]) == (row["model"], row["feature_set"])]
        assert row["seeds"] == [0, 1] and row["n_seeds"] == 2
        aucs = [r["auc"] for r in mine]
        assert row["auc"] == pytest.approx(np.mean(aucs))
        assert row["auc_seed_sd"] == pytest.approx(np.std(aucs, ddof=1))
        for m in ("auc", "logloss", "top@1", "mrr", "ndcg@10"):
            lo, hi = row[f"{m}_ci95"]
            assert lo < row[m] < hi, (row["model"], m)
        # about 400 requests: an AUC interval a few points wide, not a fraction of a point nor tens
        assert 0.01 < row["auc_ci95"][1] - row["auc_ci95"][0] < 0.12
        assert reps[(row["model"], row["feature_set"])]["auc"].shape == (300,)
    json.dumps(rows)  # metrics.json-ready


def test_comparisons_and_paired_differences(finished):
    run, results = finished
    rows, reps = summarise(run, results, first_seed=0, n_boot=300)
    groups = {"BF": {"BF"}, "BF+IF": {"BF", "IF"}, "all": {"BF", "IF", "CF", "KF"}}
    diffs = differences(rows, reps, lambda fs: frozenset(groups[fs]))
    pairs = {(tuple(d["a"]), tuple(d["b"]), d["why"]) for d in diffs}
    assert (("deepfm", "BF+IF"), ("deepfm", "BF"), "ablation step") in pairs
    assert (("kdcn", "all"), ("dcn", "all"), "K-DCN vs DCN") in pairs
    assert {a for a, b, why in pairs if why == "vs LR"} == set(LIFT) - {("lr", "BF+IF")}
    assert {b for a, b, why in pairs if why == "vs LR"} == {("lr", "BF+IF")}  # the only LR
    assert len(pairs) == len(comparisons(rows, lambda fs: frozenset(groups[fs]))) == 1 + 1 + 4
    by = {(tuple(d["a"]), tuple(d["b"])): d for d in diffs}
    k = by[(("kdcn", "all"), ("dcn", "all"))]["auc"]
    assert k["low"] > 0 and k["p_not_better"] == 0.0  # planted: K-DCN lifts the positive 1.5 times as far
    assert len(k["per_seed"]) == 2 and all(v > 0 for v in k["per_seed"])
    assert k["diff"] == pytest.approx(np.mean(k["per_seed"]))
    text = differences_table(diffs, n_seeds=2)
    assert "| kdcn all − dcn all | K-DCN vs DCN | **+" in text
    assert "| deepfm: BF+IF − BF | ablation step |" in text


def test_table_cells_carry_interval_and_seed_spread(finished):
    run, results = finished
    rows, _ = summarise(run, results, first_seed=0, n_boot=100)
    line = next(x for x in table8(rows).splitlines() if x.startswith("| kdcn |"))
    r = rows[-1]
    lo, hi = r["auc_ci95"]
    assert f"| {100 * r['auc']:.1f} ±{100 * r['auc_seed_sd']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}] |" in line


def test_insights_section_renders_the_ceiling_and_importance_in_points():
    from pipelines.report import insights_section

    md = "\n".join(insights_section({
        "ceiling": {"samples": 10, "true_auc": 0.84, "true_top1": 0.65, "learnable_auc": 0.88, "learnable_top1": 0.47},
        "importance": {"model": "dcn", "feature_set": "all", "groups": [
            {"group": "BF", "n_fields": 3, "auc_drop": 0.016, "auc_drop_std": 0.002, "top1_drop": 0.044, "top1_drop_std": 0.01},
            {"group": "IF", "n_fields": 2, "auc_drop": 0.045, "auc_drop_std": 0.003, "top1_drop": 0.134, "top1_drop_std": 0.02}]}}))
    assert "AUC 84.0 / T@1 65.0" in md and "AUC 88.0 / T@1 47.0" in md
    assert md.index("| IF | 2 | 4.5 ± 0.3 | 13.4 ± 2.0 |") < md.index("| BF | 3 | 1.6 ± 0.2 | 4.4 ± 1.0 |")
