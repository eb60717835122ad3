"""The serving path and the HTTP service on a small finished run (tiny generated corpus, 2 epochs).

The spec is the project's BF, IF and CF features without the sentence encoder (bert_cosine encodes
~2k texts on a tiny corpus: minutes on a shared CPU) and without KF (CKG pretraining); the
encoder's path is the extractor's own text cache, the same in training and serving."""
import copy
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from core.corpus import load_corpus
from pipelines import run as run_mod
from pipelines.score import RequestError, Scorer
from synth.generate import generate_corpus

REPO = Path(__file__).resolve().parents[1]
FEATURE_SET = "BF+IF+CF"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("serve")
    corpus_dir = generate_corpus(d / "corpus", "tiny", seed=0)
    spec = (REPO / "configs/features/econvrec.yaml").read_text()
    head, _, _ = spec.partition("  # -- KF")
    bert = head.index("  - name: bert_cosine")
    head = head[:bert] + head[head.index("  - name: price_constraint"):]
    (d / "spec.yaml").write_text(head + f"feature_sets:\n  {FEATURE_SET}: [BF, IF, CF]\n")
    (d / "exp.yaml").write_text(textwrap.dedent(f"""\
        name: tiny_serve
        seed: 0
        data: {corpus_dir}
        feature_spec: {d / 'spec.yaml'}
        models_dir: {REPO / 'configs/models'}
        runs:
          - model: deepfm
            feature_sets: [{FEATURE_SET}]
            hparams: {{epochs: 2, jit_compile: false}}
    """))
    return d, corpus_dir


@pytest.fixture(scope="module")
def finished_run(workdir):
    d, _ = workdir
    mp = pytest.MonkeyPatch()
    mp.setenv("ECONVREC_CACHE", str(d / "cache"))
    out = d / "run"
    assert run_mod.main(["--config", str(d / "exp.yaml"), "--out", str(out)]) == 0
    yield out
    mp.undo()


@pytest.fixture(scope="module")
def test_requests(workdir):
    _, corpus_dir = workdir
    corpus = load_corpus(corpus_dir)
    sessions = {s["session_id"]: s for s in map(json.loads, (Path(corpus_dir) / "sessions.jsonl").open())}
    test = corpus.samples[corpus.samples["split"] == "test"]
    cands = corpus.candidates.groupby("sample_id", sort=False)["item_id"].apply(list)
    return [{"request_id": r.sample_id, "user_id": r.user_id, "shop_id": sessions[r.session_id]["shop_id"],
             "turns": sessions[r.session_id]["turns"][: r.turn], "candidates": cands[r.sample_id]}
            for r in test.itertuples()]


@pytest.fixture(scope="module")
def scorer(finished_run):
    s = Scorer.load(finished_run, "deepfm", FEATURE_SET)
    s.warm_up()
    return s


def scores_of(results) -> dict:
    return {(r["request_id"], c["item_id"]): c["score"] for r in results for c in r["ranking"]}


def test_service_path_reproduces_evaluation_on_the_whole_test_split(scorer, finished_run, test_requests):
    # One request at a time, as the service sees them (item and user sides from the warm caches) ...
    got = scores_of([r for q in test_requests for r in scorer.score([q])])
    expected = pd.read_parquet(finished_run / "results" / "deepfm__BF_IF_CF" / "test_predictions.parquet")
    want = dict(zip(zip(expected["sample_id"], expected["item_id"]), expected["score"]))
    assert got.keys() == want.keys() and len(want) > 100
    diff = np.abs(np.array([got[k] for k in want]) - np.array(list(want.values())))
    assert diff.max() <= 1e-6
    # ... and as one batch (pipelines.score's path): the same scores.
    batch = scores_of(scorer.score(test_requests))
    assert max(abs(batch[k] - got[k]) for k in want) <= 1e-6


def test_a_scorer_encodes_no_text_the_run_already_encoded(finished_run, test_requests, monkeypatch):
    """The scorer reads the machine's shared text cache, so the test split's utterances (encoded while
    the run computed its features) are not encoded again, not even by a freshly loaded scorer."""
    import features.encoders as encoders

    monkeypatch.setattr(encoders, "_CACHES", {})  # nothing in memory: only what is on disk counts
    fresh = Scorer.load(finished_run, "deepfm", FEATURE_SET)
    fresh.warm_up()
    fresh.score(test_requests)
    assert encoders._CACHES and sum(c.n_encoded for c in encoders._CACHES.values()) == 0


def test_cached_sides_equal_a_full_transform(scorer, test_requests):
    """The cached item/user arrays are those FeaturePipeline.transform computes for the same rows."""
    from pipelines.score import RequestKeys, request_corpus, requests_to_records

    keys = RequestKeys()
    reqs = test_requests[:5]
    corpus = request_corpus(requests_to_records(reqs, scorer.reference, keys), reqs)
    served = scorer.features.transform(corpus, keys.items, keys.users)
    full = scorer.pipeline.transform(corpus, use_cache=False)
    # The catalogue's items and every user of the run were prepared at warm-up.
    assert len(scorer.features.items) >= len(scorer.reference.items)
    assert {f"ref:{u}" for u in scorer.reference.users.index} <= set(scorer.features.users.index)
    for name in scorer.model.space.names:
        np.testing.assert_array_equal(served.arrays[name], full.arrays[name], err_msg=name)


def test_request_corpus_takes_the_runs_items_as_validated_once(scorer, test_requests):
    """The run's items in a request take the rows of their one validation (``Reference.known_items``):
    the corpus validating every record gives. An inline item under a catalogue id is handled as
    before: the same record scores as the id does; a changed one is the batch's record of that id."""
    from core.corpus import TABLE_NAMES
    from pipelines.score import RequestKeys, request_corpus, requests_to_records

    reqs = copy.deepcopy(test_requests[:6])
    same_id, changed_id = reqs[0]["candidates"][1], reqs[1]["candidates"][2]
    reqs[0]["candidates"][1] = dict(scorer.reference.item(same_id))
    changed = {**scorer.reference.item(changed_id), "title": "全新 火星车 紫色", "attributes": {"颜色": "紫色"}}
    reqs[1]["candidates"][2] = changed
    for rq in (test_requests[:6], reqs):
        want_keys, got_keys = RequestKeys(), RequestKeys()
        want = request_corpus(requests_to_records(rq, scorer.reference, want_keys), rq)
        got = scorer._corpus(rq, got_keys)
        for name in TABLE_NAMES:
            pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name), check_exact=True, obj=name)
        assert (got_keys.items, got_keys.users) == (want_keys.items, want_keys.users)
    assert got.items.set_index("item_id").loc[changed_id, "title"] == "全新 火星车 紫色"
    assert scores_of(scorer.score(reqs[:1])) == scores_of(scorer.score(test_requests[:1]))


def test_malformed_requests_name_request_and_field(scorer):
    good = {"request_id": "r1", "user_id": "u", "turns": [], "candidates": ["a"]}
    cases = [({**good, "candidates": []}, "candidates"),
             ({**good, "turns": [{"role": "user", "text": 5}]}, "turns.0.text"),
             ({**good, "candidates": [{"title": "no id"}]}, "candidates.0.item_id"),
             ({**good, "candidates": [{"item_id": "x", "price": "cheap"}]}, "candidates.0.price")]
    for req, field in cases:
        with pytest.raises(RequestError) as e:
            scorer.score([req])
        assert (e.value.request_id, e.value.field) == ("r1", field), str(e.value)
        assert field in str(e.value)


# -- the HTTP service, a real server process on a free port --------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(finished_run, workdir):
    d, _ = workdir
    port = free_port()
    env = {**os.environ, "ECONVREC_CACHE": str(d / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.serve", "--run", str(finished_run), "--model", "deepfm",
                             "--port", str(port), "--max-body-bytes", "400000"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("service did not become healthy")
    yield url, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def rank(url, reqs, **kw):
    return httpx.post(f"{url}/rank", json={"requests": reqs}, timeout=60, **kw)


def test_service_ranks_like_pipelines_score(server, scorer, test_requests):
    url, _ = server
    reqs = test_requests[:12]
    r = rank(url, reqs)
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["request_id"] for x in results] == [q["request_id"] for q in reqs]
    got, want = scores_of(results), scores_of(scorer.score(reqs))
    assert got.keys() == want.keys()
    assert max(abs(got[k] - want[k]) for k in want) <= 1e-6
    for x in results:
        s = [c["score"] for c in x["ranking"]]
        assert s == sorted(s, reverse=True)


def test_bad_requests_are_400_or_413_and_the_service_keeps_answering(server, test_requests):
    url, _ = server
    r = httpx.post(f"{url}/rank", content=b'{"requests": [', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "malformed JSON" in r.json()["error"]
    r = rank(url, [{"request_id": "q7", "user_id": "u", "turns": "hello", "candidates": ["a"]}])
    assert r.status_code == 400 and r.json()["request_id"] == "q7" and r.json()["field"] == "turns"
    r = rank(url, [{"request_id": "q8", "turns": [], "candidates": ["a"]}])
    assert r.status_code == 400 and r.json()["field"] == "user_id"
    r = httpx.post(f"{url}/rank", json={"nothing": 1})
    assert r.status_code == 400 and r.json()["field"] == "requests"
    r = httpx.post(f"{url}/rank", content=b"\xff\xfe", headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = httpx.post(f"{url}/rank", content=b" " * 400_001, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["error"]
    r = httpx.put(f"{url}/items", json={"items": [{"item_id": "z", "price": [1]}]})
    assert r.status_code == 400 and r.json()["field"] == "items.0.price"
    assert rank(url, test_requests[:1]).status_code == 200
    metrics = httpx.get(f"{url}/metrics").text
    assert 'econvrec_requests_total{endpoint="rank",status="400"} 5.0' in metrics
    assert 'econvrec_requests_total{endpoint="rank",status="413"} 1.0' in metrics
    assert "econvrec_request_latency_seconds_bucket" in metrics
    # start-up's objects (the model, the run's tables: >100k) were frozen out of the collector's reach
    frozen = next(line for line in metrics.splitlines() if line.startswith("econvrec_gc_frozen_objects "))
    assert float(frozen.split()[1]) > 100_000
    assert 'python_gc_collections_total{generation="2"}' in metrics


def score_calls(url) -> tuple[float, float]:
    """(requests, score calls) so far, from the service's batch-size histogram."""
    m = dict(line.split() for line in httpx.get(f"{url}/metrics").text.splitlines()
             if line.startswith("econvrec_batch_requests_sum") or line.startswith("econvrec_batch_requests_count"))
    return float(m["econvrec_batch_requests_sum"]), float(m["econvrec_batch_requests_count"])


def test_concurrent_clients_all_get_complete_rankings(server, scorer, test_requests):
    url, _ = server
    n_clients, per_client = 12, 4
    answers, failures = [], []
    before = score_calls(url)

    def client(k):
        with httpx.Client(timeout=120) as c:
            for j in range(per_client):
                q = test_requests[(k * per_client + j) % len(test_requests)]
                r = c.post(f"{url}/rank", json={"requests": [q]})
                if r.status_code != 200:
                    failures.append(r.text)
                else:
                    answers.append((q, r.json()["results"][0]))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures and len(answers) == n_clients * per_client
    # Calls that waited behind a busy scorer were coalesced: fewer score calls than requests.
    after = score_calls(url)
    assert after[0] - before[0] == n_clients * per_client and after[1] - before[1] < n_clients * per_client
    lone = {q["request_id"]: scores_of(scorer.score([q])) for q in {q["request_id"]: q for q, _ in answers}.values()}
    for q, res in answers:
        assert res["request_id"] == q["request_id"]
        assert sorted(c["item_id"] for c in res["ranking"]) == sorted(map(str, q["candidates"]))
        got = scores_of([res])  # scored with whatever calls it was coalesced with: as if alone
        assert max(abs(got[k] - lone[q["request_id"]][k]) for k in got) <= 1e-6


def test_unknown_users_items_and_values_score_through_oov(server, scorer):
    url, _ = server
    turns = [{"role": "user", "text": "想要一台紫色的未知品类商品"}]
    inline = {"item_id": "inline-1", "category": "火星车", "title": "全新 火星车 紫色", "price": 99999,
              "attributes": {"颜色": "紫外线色", "新属性": "x"}}
    r = rank(url, [{"request_id": "a", "user_id": "stranger-1", "turns": turns, "candidates": ["ghost-1", inline]},
                   {"request_id": "b", "user_id": "stranger-2", "turns": turns, "candidates": ["ghost-2"]},
                   {"request_id": "c", "profile": {"sex": "女", "avg_pay_monthly": 100.0}, "candidates": ["ghost-3"]}])
    assert r.status_code == 200
    a, b, c = r.json()["results"]
    assert [len(x["ranking"]) for x in (a, b, c)] == [2, 1, 1]
    ghost = {x["item_id"]: x["score"] for x in a["ranking"]}["ghost-1"]
    assert ghost == b["ranking"][0]["score"]  # never-seen users and items look the same: OOV
    # A registered item scores like the same record sent inline, and by id from then on.
    assert httpx.put(f"{url}/items", json={"items": [inline]}).json() == {"registered": 1}
    by_id = rank(url, [{"request_id": "a", "user_id": "stranger-1", "turns": turns,
                        "candidates": ["ghost-1", "inline-1"]}]).json()["results"][0]
    assert scores_of([by_id]) == pytest.approx(scores_of([a]), abs=1e-6)


def test_sigterm_finishes_in_flight_requests_and_exits_0(server, test_requests):
    url, proc = server
    out = {}
    many = [{**q, "request_id": f"{q['request_id']}-{k}"} for k in range(3) for q in test_requests]
    t = threading.Thread(target=lambda: out.setdefault("r", rank(url, many)))
    t.start()
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    t.join()
    assert out["r"].status_code == 200 and len(out["r"].json()["results"]) == 3 * len(test_requests)
    assert proc.wait(timeout=60) == 0
