"""DeepFM trained by 2 localhost workers under MultiWorkerMirroredStrategy reaches the one-process test AUC."""
import json

import numpy as np
import pytest

from core.corpus import load_corpus
from features.materialize import FeaturePipeline
from features.spec import load_spec, parse_spec
from rankers.distribute import free_ports, tf_config
from synth.generate import generate_corpus


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    d = tmp_path_factory.mktemp("mw")
    corpus = load_corpus(generate_corpus(d / "corpus", "tiny", seed=0))
    raw = load_spec("configs/features/econvrec.yaml").to_dict()
    raw["features"] = [f for f in raw["features"] if f["group"] in ("BF", "IF")]
    raw["feature_sets"] = {"all": ["BF", "IF"]}
    pipe = FeaturePipeline(parse_spec(raw, "test spec"), d / "store", cache=d / "cache", show_progress=False)
    t = pipe.fit_transform(corpus)
    t.space = pipe.feature_space("all")
    return t


def test_tf_config_names_every_worker_and_this_index():
    ports = free_ports(3)
    assert len(set(ports)) == 3
    cfg = json.loads(tf_config(ports, 2))
    assert cfg == {"cluster": {"worker": [f"localhost:{p}" for p in ports]}, "task": {"type": "worker", "index": 2}}


def test_deepfm_two_workers_reach_single_process_auc(table):
    from core.metrics import evaluate
    from rankers.registry import build

    space = table.space
    hp = {"epochs": 2, "seed": 0, "jit_compile": False, "learning_rate": 0.003}
    X_tr, y_tr, _ = table.part("train")
    X_va, y_va, g_va = table.part("valid")
    X_te, y_te, g_te = table.part("test")
    single = build("deepfm", space, **hp).fit(X_tr, y_tr, X_va, y_va, g_va)
    multi = build("deepfm", space, **hp).fit(X_tr, y_tr, X_va, y_va, g_va, train_workers=2)
    auc_single = evaluate(y_te, single.predict(X_te), g_te)["auc"]
    auc_multi = evaluate(y_te, multi.predict(X_te), g_te)["auc"]
    assert auc_single > 0.6  # the features carry signal on the tiny corpus (0.62 here, seeded)
    assert abs(auc_multi - auc_single) < 0.02
    # the chief's history: one entry per epoch run, validation AUC logged, best epoch restored
    h = multi.history_
    assert len(h["val_auc"]) == len(h["epoch"]) <= 2
    assert h["best_epoch"] == [int(np.argmax(h["val_auc"])) + 1]
    assert evaluate(y_va, multi.predict(X_va), g_va)["auc"] == pytest.approx(max(h["val_auc"]), abs=1e-6)
