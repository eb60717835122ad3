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
from core.parts import PartedTable  # noqa: E402
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
    local = FeaturePipeline(spec, d / "local", cache=d / "cache", show_progress=False).fit_transform(corpus)
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
