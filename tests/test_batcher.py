"""The service's dynamic batching (``pipelines.serve.RequestBatcher``) with a scorer that records
its calls: which HTTP calls share a score call, and that each gets exactly its own answer."""
import asyncio
import threading

import pytest

from pipelines.serve import RequestBatcher


class RecordingScorer:
    """``score(requests)`` -> one result per request; blocks on ``gate`` while ``hold`` is set, and
    refuses any request whose ``user_id`` is ``"bad"`` (as the real scorer raises ``RequestError``)."""

    def __init__(self):
        self.calls: list[list[str]] = []
        self.gate = threading.Event()
        self.started = threading.Event()

    def score(self, requests):
        self.calls.append([r.get("request_id") for r in requests])
        self.started.set()
        self.gate.wait(10)
        if any(r.get("user_id") == "bad" for r in requests):
            raise ValueError("bad user")
        return [{"request_id": r["request_id"] if r.get("request_id") is not None else "request-1",
                 "ranking": [{"item_id": c, "score": 0.5} for c in r["candidates"]]} for r in requests]


def req(rid, user="u1", cands=("i1", "i2"), **kw):
    return {"request_id": rid, "user_id": user, "candidates": list(cands), **kw}


async def serve(scorer, first, waiting, max_requests=64):
    """Submit ``first``; once the scorer is busy with it, queue ``waiting`` (lists of requests, one
    per HTTP call), then let the scorer go. Returns each call's results or exception, in order."""
    batcher = RequestBatcher(scorer.score, asyncio.to_thread, max_requests)
    batcher.start()
    try:
        head = asyncio.ensure_future(batcher.submit(first))
        await asyncio.to_thread(scorer.started.wait, 10)
        rest = [asyncio.ensure_future(batcher.submit(c)) for c in waiting]
        await asyncio.sleep(0.05)  # every waiting call is queued before the first one finishes
        scorer.gate.set()
        return await asyncio.gather(head, *rest, return_exceptions=True)
    finally:
        await batcher.stop()


def test_calls_waiting_behind_a_busy_scorer_share_one_score_call():
    s = RecordingScorer()
    out = asyncio.run(serve(s, [req("a")], [[req("b"), req("c", user="u2")], [req("d", cands=("i3",))]]))
    assert s.calls == [["a"], ["b", "c", "d"]]
    assert [[r["request_id"] for r in res] for res in out] == [["a"], ["b", "c"], ["d"]]
    assert [c["item_id"] for c in out[2][0]["ranking"]] == ["i3"]


def test_calls_that_define_what_another_uses_are_scored_apart():
    s = RecordingScorer()
    profile = {"sex": "女"}
    inline = {"item_id": "i2", "title": "新款", "price": 10}
    waiting = [[req("b")], [req("b", user="u9")],                   # the same request id twice
               [req("c", user="u1", profile=profile)],             # u1 by id (b) and inline (c)
               [req("e", user="u5", cands=("i9", inline))],         # i2 inline here, by id in b
               [req("f", user="u6")]]
    asyncio.run(serve(s, [req("a", user="u0", cands=("i7",))], waiting))
    # b, then f (which clashes with nothing); the second b then takes c (u1's profile no longer clashes
    # with a request of u1 by id), and e (i2 inline, named by id by both b's) comes last.
    assert s.calls == [["a"], ["b", "f"], ["b", "c"], ["e"]]


def test_max_requests_bounds_a_coalesced_call():
    s = RecordingScorer()
    asyncio.run(serve(s, [req("a")], [[req("b"), req("c")], [req("d")], [req("e"), req("f")]], max_requests=3))
    assert s.calls == [["a"], ["b", "c", "d"], ["e", "f"]]


def test_a_bad_request_fails_alone_and_the_others_get_their_results():
    s = RecordingScorer()
    out = asyncio.run(serve(s, [req("a")], [[req("b")], [req("x", user="bad")], [req("c", user="u3")]]))
    assert s.calls[:2] == [["a"], ["b", "x", "c"]]
    assert s.calls[2:] == [["b"], ["x"], ["c"]]  # then each call alone
    assert [r["request_id"] for r in out[1]] == ["b"] and [r["request_id"] for r in out[3]] == ["c"]
    assert isinstance(out[2], ValueError)


def test_requests_without_an_id_keep_the_id_a_lone_call_gives_them():
    s = RecordingScorer()
    out = asyncio.run(serve(s, [req("a")], [[req(None, user="u2")], [req(None, user="u3")], [req("z")]]))
    # Both are "request-1" in their own call: they clash, so the second waits for the next call.
    assert s.calls == [["a"], ["request-1", "z"], [None]]
    assert [r[0]["request_id"] for r in out[1:]] == ["request-1", "request-1", "z"]


def test_an_idle_batcher_scores_a_lone_call_at_once():
    s = RecordingScorer()
    s.gate.set()

    async def one():
        b = RequestBatcher(s.score, asyncio.to_thread)
        b.start()
        try:
            return await asyncio.wait_for(b.submit([req("a")]), 5)
        finally:
            await b.stop()

    assert asyncio.run(one())[0]["request_id"] == "a" and s.calls == [["a"]]


@pytest.mark.parametrize("bad", ["not a request", 7])
def test_a_request_that_is_not_an_object_is_never_coalesced(bad):
    s = RecordingScorer()
    asyncio.run(serve(s, [req("a")], [[req("b")], [bad], [req("c", user="u4")]]))
    assert s.calls[1] == ["b", "c"]
