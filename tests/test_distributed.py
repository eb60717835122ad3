"""Features on Dask: the same table as the in-process engine, value for value, even when a worker dies."""
import os
import signal
import threading
import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("distributed")

from core.corpus import load_corpus  # noqa: E402
from core.parts import PartedTable, write_parts  # noqa: E402
from core.space import FeatureSpace, Field  # noqa: E402
from core.table import FeatureTable  # noqa: E402
from features.distributed import DaskEngine, materialize, sub_corpus  # noqa: E402
from features.materialize import FeaturePipeline  # noqa: E402
from features.spec import load_spec, parse_spec  # noqa: E402
from synth.generate import generate_corpus  # noqa: E402

PARTITION_ROWS = 300  # ~22 partitions on the tiny corpus: several per worker


def slow_title_length(rows: pd.DataFrame, ctx) -> pd.Series:
    """A `kind: python` feature that takes a while per partition, so a worker can be killed mid-run."""
    time.sleep(0.3)
    titles = rows["item_id"].map(ctx.corpus.items.set_index("item_id")["title"])
    return titles.str.len().astype(float)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("dist")
    corpus = load_corpus(generate_corpus(d / "corpus", "tiny", seed=0))
    raw = load_spec("configs/features/econvrec.yaml").to_dict()
    # BF and IF read users, items, behaviour logs, the candidate list and the dialogue context.
    raw["features"] = [f for f in raw["features"] if f["group"] in ("BF", "IF")]
    raw["features"].append({"name": "title_length", "group": "USER", "kind": "python",
                            "function": "tests.test_distributed:slow_title_length"})
    raw["feature_sets"] = {"all": ["BF", "IF", "USER"]}
    spec = parse_spec(raw, "test spec")
    pipe = FeaturePipeline(spec, d / "local", cache=d / "cache", show_progress=False)
    local = pipe.fit_transform(corpus)
    local.space = pipe.feature_space("all")
    return d, corpus, spec, local


def assert_same_table(local, parted: PartedTable) -> None:
    table = parted.to_table()
    pd.testing.assert_frame_equal(table.rows, local.rows)
    assert sorted(table.arrays) == sorted(local.arrays)
    for name, a in local.arrays.items():
        assert table.arrays[name].dtype == a.dtype, name
        np.testing.assert_array_equal(table.arrays[name], a, err_msg=name)


def test_sub_corpus_holds_whole_samples_and_their_dialogues(setup):
    _, corpus, _, _ = setup
    ids = corpus.samples["sample_id"].to_numpy()[:5]
    sub = sub_corpus(corpus, ids)
    sessions = set(corpus.samples.set_index("sample_id").loc[ids, "session_id"])
    assert set(sub["samples"]["sample_id"]) == set(ids)
    assert len(sub["candidates"]) == corpus.candidates["sample_id"].isin(ids).sum()
    assert set(sub["turns"]["session_id"]) == sessions
    assert len(sub["turns"]) == corpus.turns["session_id"].isin(sessions).sum()
    users = set(sub["samples"]["user_id"])
    assert len(sub["behaviors"]) == corpus.behaviors["user_id"].isin(users).sum()


def test_dask_table_equals_in_process_table_and_survives_a_killed_worker(setup):
    d, corpus, spec, local = setup
    with DaskEngine(workers=2) as client:
        pipe = FeaturePipeline(spec, d / "dask", cache=d / "cache")
        parted = materialize(pipe, corpus, client, partition_rows=PARTITION_ROWS)
        assert parted.n_parts > 10 and parted.n_rows == local.n_rows
        assert_same_table(local, parted)
        assert pipe.state["features"] == FeaturePipeline(spec, d / "local", show_progress=False).fit(corpus).state[
            "features"]

        # Again from an empty store, killing one worker process as soon as the first part is written.
        pids = client.run(os.getpid)
        store = d / "dask-killed"
        box = {}
        run = threading.Thread(target=lambda: box.update(t=materialize(
            FeaturePipeline(spec, store, cache=d / "cache"), corpus, client, partition_rows=PARTITION_ROWS)))
        run.start()
        deadline = time.time() + 300
        while not list(store.glob("parts/raw-*/part-*.parquet")) and time.time() < deadline:
            time.sleep(0.05)
        done_at_kill = len(list(store.glob("parts/raw-*/part-*.parquet")))
        os.kill(next(iter(pids.values())), signal.SIGKILL)
        run.join(timeout=600)
        assert "t" in box, "materialisation did not finish after a worker was killed"
        assert 0 < done_at_kill < box["t"].n_parts  # the worker died mid-run
        assert set(client.run(os.getpid).values()) != set(pids.values())  # the nanny started a new one
        assert_same_table(local, box["t"])


def test_streamed_epochs_visit_every_training_row_once_in_a_seeded_order(tmp_path):
    from rankers.streaming import epoch_batches, parts_train_dataset

    n = 103
    rows = pd.DataFrame({"sample_id": np.repeat(np.arange(26), 4)[:n].astype(str), "label": np.arange(n) % 2,
                         "split": np.where(np.arange(n) % 5 == 0, "valid", "train")})
    table = FeatureTable(rows, {"rid": np.arange(n, dtype=np.float32), "c": (np.arange(n) % 3 + 2).astype(np.int32)})
    space = FeatureSpace([Field("rid", "dense"), Field("c", "categorical", vocab_size=5)])
    parts = write_parts(table, tmp_path / "parts", part_rows=20)
    assert parts.manifest["part_rows"] == [20, 20, 20, 20, 20, 3] and parts.n_rows == n
    train = set(np.flatnonzero(rows["split"] == "train"))  # 82 rows

    def epoch(seed, e):
        batches = list(epoch_batches(parts, space, 8, seed, e))
        assert all(len(y) == 8 for _, y in batches)
        rid = np.concatenate([b["dense"][:, 0] for b, _ in batches]).astype(int)
        labels = np.concatenate([y[:, 0] for _, y in batches])
        np.testing.assert_array_equal(labels, rid % 2)  # labels travel with their rows
        return rid

    e0, e1 = epoch(0, 0), epoch(0, 1)
    for rid in (e0, e1):
        assert len(rid) == (82 // 8) * 8 and len(set(rid)) == len(rid) and set(rid) <= train
    assert not np.array_equal(e0, e1)  # reshuffled every epoch
    np.testing.assert_array_equal(e0, epoch(0, 0))  # seeded
    ds, steps = parts_train_dataset(parts, space, 8, seed=0)
    assert steps == 82 // 8
    first = [y for _, y in ds.take(steps)]
    np.testing.assert_array_equal(np.concatenate(first)[:, 0], e0 % 2)


def test_deepfm_streamed_from_parts_matches_in_memory_auc(setup, tmp_path):
    from core.metrics import evaluate
    from rankers.registry import build

    _, _, _, local = setup
    space = local.space
    parts = write_parts(local, tmp_path / "parts", part_rows=1000)
    hp = {"epochs": 4, "seed": 0}
    X_va, y_va, g_va = local.part("valid")
    X_te, y_te, g_te = local.part("test")
    memory = build("deepfm", space, **hp).fit(*local.part("train")[:2], X_va, y_va, g_va)
    streamed = build("deepfm", space, **hp).fit_parts(parts, X_va, y_va, g_va)
    auc_memory = evaluate(y_te, memory.predict(X_te), g_te)["auc"]
    auc_streamed = evaluate(y_te, streamed.predict(X_te), g_te)["auc"]
    assert auc_memory > 0.6  # the features carry signal on the tiny corpus
    assert abs(auc_streamed - auc_memory) < 0.02
