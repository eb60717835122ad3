"""The main job end to end on a tiny generated corpus, a YAML + python feature added by a user,
resume after interruption, and batch scoring that reproduces the evaluation scores exactly."""
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines import run as run_mod
from core.corpus import load_corpus
from synth import generate_corpus
from pipelines.score import Scorer, main as score_main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipeline")
    corpus_dir = generate_corpus(d / "corpus", "tiny", seed=0)
    # A user adds a feature in YAML and one through `kind: python` (the README walkthrough).
    (d / "my_features.py").write_text(textwrap.dedent("""
        def title_length(rows, ctx):
            titles = rows["item_id"].map(ctx.corpus.items.set_index("item_id")["title"])
            return titles.str.len().astype(float)
    """))
    spec = (REPO / "configs/features/econvrec.yaml").read_text()
    head, _, _ = spec.partition("  # -- CF")
    spec = head + textwrap.dedent("""\
      - name: title_length
        group: USER
        kind: python
        function: "my_features:title_length"
    feature_sets:
      BF+IF: [BF, IF]
      BF+IF+USER: [BF, IF, USER]
    """).replace("\n", "\n  ").rstrip(" ").replace("  feature_sets:", "feature_sets:").replace("\n    ", "\n  ")
    (d / "spec.yaml").write_text(spec)
    (d / "exp.yaml").write_text(textwrap.dedent(f"""\
        name: tiny_exp
        seed: 0
        data: {corpus_dir}
        feature_spec: {d / 'spec.yaml'}
        models_dir: {REPO / 'configs/models'}
        runs:
          - model: deepfm
            feature_sets: [BF+IF, BF+IF+USER]
            hparams: {{epochs: 2, jit_compile: false}}
          - model: lr
            feature_sets: [BF+IF]
    """))
    return d, corpus_dir


@pytest.fixture(scope="module")
def finished_run(workdir):
    d, _ = workdir
    mp = pytest.MonkeyPatch()
    mp.setenv("ECONVREC_CACHE", str(d / "cache"))
    mp.syspath_prepend(str(d))
    out = d / "run"
    assert run_mod.main(["--config", str(d / "exp.yaml"), "--out", str(out)]) == 0
    yield out
    mp.undo()


def test_run_directory_contents(finished_run):
    out = finished_run
    for name in ["config.yaml", "feature_spec.yaml", "metrics.json", "metrics.csv", "report.md", "ablation_auc.png",
                 "roc.png", "features/state.json", "reference/items.parquet"]:
        assert (out / name).exists(), name
    metrics = pd.read_csv(out / "metrics.csv")
    assert len(metrics) == 3
    assert set(metrics.columns) >= {"auc", "logloss", "top@1", "top@5", "top@10", "mrr", "ndcg@10", "train_s"}
    assert metrics["auc"].between(0, 1).all()
    report = (out / "report.md").read_text()
    assert "not comparable" not in report  # --data corpus: no synthetic-data banner
    assert "`title_length` (USER)" in report  # the user's feature shows up in the report
    assert "| deepfm | BF+IF |" in report
    # the best model's permutation importance, one row per feature group it uses
    insights = json.loads((out / "insights.json").read_text())
    best = max(json.loads((out / "metrics.json").read_text()), key=lambda r: r["auc"])
    assert (insights["importance"]["model"], insights["importance"]["feature_set"]) == (best["model"], best["feature_set"])
    assert {g["group"] for g in insights["importance"]["groups"]} >= {"BF", "IF"}
    assert "Permutation importance of the best model" in report
    assert "ceiling" not in insights  # --data corpus: no simulator truth


def test_rerun_resumes_and_reproduces(finished_run, workdir, capsys):
    d, _ = workdir
    before = json.loads((finished_run / "metrics.json").read_text())
    kept = finished_run / "results" / "deepfm__BF_IF" / "model" / "ranker.json"
    kept_stamp = kept.stat().st_mtime_ns
    # Simulate an interrupted run: one result is missing, and a half-written temp dir lies around.
    victim = finished_run / "results" / "lr__BF_IF"
    import shutil

    shutil.rmtree(victim)
    (finished_run / "results" / ".lr__BF_IF.tmp-zzz").mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("ECONVREC_CACHE", str(d / "cache"))
    mp.syspath_prepend(str(d))
    try:
        assert run_mod.main(["--config", str(d / "exp.yaml"), "--out", str(finished_run)]) == 0
    finally:
        mp.undo()
    log = capsys.readouterr().out
    # exactly the missing pair is retrained; the finished ones are reused, their files untouched
    assert "training lr on BF+IF" in log and "training deepfm" not in log
    assert log.count("finished earlier, reusing") == 2
    assert kept.stat().st_mtime_ns == kept_stamp
    after = json.loads((finished_run / "metrics.json").read_text())
    for a, b in zip(before, after):
        assert (a["model"], a["feature_set"]) == (b["model"], b["feature_set"])
        for k in ("auc", "logloss", "top@1", "mrr"):
            assert a[k] == b[k], (a["model"], k)  # retrained lr reproduces its metrics exactly


def test_batch_scoring_reproduces_evaluation_scores(finished_run, workdir, tmp_path):
    d, corpus_dir = workdir
    corpus = load_corpus(corpus_dir)
    sessions = {s["session_id"]: s for s in map(json.loads, (Path(corpus_dir) / "sessions.jsonl").open())}
    test = corpus.samples[corpus.samples["split"] == "test"]
    cands = corpus.candidates.groupby("sample_id", sort=False)["item_id"].apply(list)
    reqs = [{"request_id": r.sample_id, "user_id": r.user_id, "shop_id": sessions[r.session_id]["shop_id"],
             "turns": sessions[r.session_id]["turns"][: r.turn], "candidates": cands[r.sample_id]}
            for r in test.itertuples()]
    req_file = tmp_path / "requests.jsonl"
    req_file.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in reqs))
    out = tmp_path / "ranked.jsonl"
    import sys

    sys.path.insert(0, str(d))
    try:
        assert score_main(["--run", str(finished_run), "--model", "deepfm", "--feature-set", "BF+IF+USER",
                           "--requests", str(req_file), "--out", str(out)]) == 0
    finally:
        sys.path.remove(str(d))
    ranked = [json.loads(line) for line in out.open()]
    got = {(r["request_id"], c["item_id"]): c["score"] for r in ranked for c in r["ranking"]}
    expected = pd.read_parquet(finished_run / "results" / "deepfm__BF_IF_USER" / "test_predictions.parquet")
    want = dict(zip(zip(expected["sample_id"], expected["item_id"]), expected["score"]))
    assert got.keys() == want.keys()
    np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=0, atol=1e-6)
    for r in ranked:  # ordered by score
        s = [c["score"] for c in r["ranking"]]
        assert s == sorted(s, reverse=True)


def test_scoring_unknown_user_items_and_values(finished_run):
    ranker = Scorer.load(finished_run, "deepfm", "BF+IF")
    out = ranker.score([{
        "request_id": "new", "user_id": "nobody-seen-this",
        "turns": [{"role": "user", "text": "想要一台紫色的未知品类商品"}],
        "candidates": ["no-such-item", {"item_id": "inline-1", "category": "火星车", "title": "全新 火星车 紫色",
                                        "price": 99999, "attributes": {"颜色": "紫外线色", "新属性": "x"}}],
    }, {"request_id": "inline-profile", "profile": {"sex": "女", "avg_pay_monthly": 100.0},
        "turns": [], "candidates": ["no-such-item"]}])
    assert [len(r["ranking"]) for r in out] == [2, 1]
    assert all(np.isfinite(c["score"]) for r in out for c in r["ranking"])
    # Unknown ids are not errors but OOV: two different never-seen users (no profile, no history) and two
    # different never-seen item ids look the same to the model, so they get exactly the same scores.
    turns = [{"role": "user", "text": "想要一台紫色的未知品类商品"}]
    a, b = ranker.score([{"request_id": "a", "user_id": "stranger-1", "turns": turns, "candidates": ["ghost-1"]},
                         {"request_id": "b", "user_id": "stranger-2", "turns": turns, "candidates": ["ghost-2"]}])
    assert a["ranking"][0]["score"] == b["ranking"][0]["score"]
    # ... and their categorical features are the OOV / missing ids, not some known value's id
    from core.corpus import Corpus
    from core.space import OOV_ID, PAD_ID
    from pipelines.score import requests_to_records

    recs = requests_to_records([{"request_id": "a", "user_id": "stranger-1", "turns": turns,
                                 "candidates": ["ghost-1"]}], ranker.reference)
    table = ranker.pipeline.transform(Corpus.from_records(**recs, source="<test>"), use_cache=False)
    space = ranker.model.space
    cats = {f.name: int(table.arrays[f.name][0]) for f in space.fields if f.kind == "categorical"}
    unknown = [k for k in cats if k.startswith(("user_profile__", "item_attributes__")) or k == "category"]
    assert len(unknown) == 14 + 30 + 1 and all(cats[k] in (OOV_ID, PAD_ID) for k in unknown), cats


def test_bad_arguments_exit_cleanly(capsys, tmp_path):
    assert run_mod.main(["no_such_experiment"]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    assert run_mod.main(["--data", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert run_mod.main(["--models", "nope"]) == 2
    assert "unknown ranker" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    assert score_main(["--run", str(tmp_path), "--model", "deepfm", "--requests", str(bad), "--out",
                       str(tmp_path / "o.jsonl")]) == 2
    assert "bad.jsonl:1: malformed JSON" in capsys.readouterr().err
