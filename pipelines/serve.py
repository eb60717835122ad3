"""A ranking service for live conversations (FastAPI + uvicorn).

    python -m pipelines.serve --run RUN_DIR --model MODEL [--feature-set SET] [--host 127.0.0.1] [--port 8000]
                              [--tf-threads 1]

* ``POST /rank`` ``{"requests": [request, ...]}`` (the request format of ``pipelines.score``) ->
  ``{"results": [{"request_id": ..., "ranking": [{"item_id": ..., "score": ...}, ...]}, ...]}`` in order;
* ``PUT /items`` ``{"items": [item record, ...]}`` registers or updates catalogue items (their
  features are computed then, not on the first request that names them);
* ``GET /healthz``: 200 once the model is loaded and warm (the service only listens after that);
* ``GET /metrics``: Prometheus text (requests and errors by endpoint and status, latency histogram).

Bad input is a 400 with ``{"error", "request_id", "field"}`` (413 for a body over ``--max-body-bytes``),
never a 500. Scoring runs one call at a time in the scorer's own thread (the feature caches are not
thread-safe; the CPU is the limit anyway), so the event loop keeps accepting and answering health and
metrics. A call on an idle service is scored at once; calls that arrive while one is being scored are
coalesced into the next ``score`` call (``RequestBatcher``): a call's cost is mostly fixed (pandas per
extractor, one model call), so under load the service answers many requests for the price of a few.
SIGTERM: uvicorn stops accepting, finishes the requests in flight and exits 0.
"""

import argparse
import asyncio
import gc
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

DEFAULT_MAX_BODY = 1 << 20  # bytes; a 31-candidate request is ~3 KB
DEFAULT_MAX_BATCH = 64  # requests coalesced into one score call (~2,000 candidates at 31 each)


def _with_id(req, i: int):
    """``req`` with the id ``check_request`` gives a request without one (its position in its own
    call), so that coalescing with other calls changes neither its answer nor its clashes."""
    if not isinstance(req, dict) or req.get("request_id") is not None:
        return req  # (a mistyped id stays: the coalesced call fails and this call is scored alone)
    return {**req, "request_id": f"request-{i + 1}"}


def _identity(req) -> tuple[set, set]:
    """What a request defines and what it only refers to, for coalescing: two requests may share a
    score call unless one defines a name the other uses (``requests_to_records`` keeps one record per
    request, user and item id, so the second definition would replace the first's).

    Defines: its request id, its user id when the profile is inline, its inline items' ids. Refers to:
    its user id, the items it names by id. A request whose shape is wrong defines everything (alone)."""
    if not isinstance(req, dict):
        return {("*",)}, set()
    own = {("request", str(req.get("request_id")))}
    refs = {("user", str(req.get("user_id")))}
    if req.get("profile") is not None:
        own.add(("user", str(req.get("user_id"))))
    turns = req.get("turns")
    mentioned = [x for t in turns if isinstance(t, dict) and isinstance(t.get("items"), list) for x in t["items"]] \
        if isinstance(turns, list) else []
    cands = req.get("candidates")
    for it in (cands if isinstance(cands, list) else []) + mentioned:
        if isinstance(it, dict):
            own.add(("item", str(it.get("item_id"))))
        else:
            refs.add(("item", str(it)))
    return own, refs


class RequestBatcher:
    """Coalesces concurrent ``POST /rank`` calls into single ``score`` calls (dynamic batching).

    A call that finds the batcher idle (nothing being scored, nothing queued) is scored at once, by
    its own coroutine: nothing waits for a batch to fill. Calls that arrive while a score call is in
    flight queue up; one worker task then takes the oldest waiting call and every call queued behind
    it that fits (at most ``max_requests`` requests, no identity clash, see ``_identity``), scores
    them in one call of ``score_fn`` (through ``run_blocking``, in a thread) and hands each call its
    slice of the results. If a coalesced call fails, each of its calls is scored alone, so a bad
    request is answered with its own error and the others' results are unaffected.
    """

    def __init__(self, score_fn, run_blocking, max_requests: int = DEFAULT_MAX_BATCH, on_batch=None):
        self.score_fn, self.run_blocking, self.max_requests = score_fn, run_blocking, max_requests
        self.on_batch = on_batch  # called with the number of requests of each score call
        self._queue: list[tuple[list, list, asyncio.Future]] = []  # (with ids, as sent, future)
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._busy = False  # a score call is in flight (the worker's, or a lone call's own)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def submit(self, requests: list) -> list:
        """The results of ``score_fn(requests)``, or its exception, raised here."""
        if not self._busy and not self._queue:
            # Idle: this call is the batch. Scored from here, without the worker task's two hand-offs
            # (queue -> worker, worker -> this call's future); calls arriving meanwhile queue up.
            self._busy = True
            try:
                if self.on_batch is not None:
                    self.on_batch(len(requests))
                return await self.run_blocking(self.score_fn, requests)
            finally:
                self._busy = False
                if self._queue:
                    self._wake.set()
        fut = asyncio.get_running_loop().create_future()
        self._queue.append(([_with_id(r, i) for i, r in enumerate(requests)], requests, fut))
        self._wake.set()
        return await fut

    def _take(self) -> list[tuple[list, list, asyncio.Future]]:
        batch, rest, n, owned, used = [], [], 0, set(), set()
        for call in self._queue:
            reqs = call[0]
            own, refs = set(), set()
            for r in reqs:
                o, f = _identity(r)
                own |= o
                refs |= f
            fits = not batch or (n + len(reqs) <= self.max_requests and ("*",) not in own
                                 and ("*",) not in owned and not own & (owned | used) and not refs & owned)
            if fits:
                batch.append(call)
                n += len(reqs)
                owned |= own
                used |= refs
            else:
                rest.append(call)
        self._queue = rest
        return batch

    async def _work(self) -> None:
        while True:
            if not self._queue or self._busy:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = self._take()
            if self.on_batch is not None:
                self.on_batch(sum(len(reqs) for reqs, _, _ in batch))
            self._busy = True
            try:
                await self._score(batch)
            finally:
                self._busy = False

    async def _score(self, batch: list[tuple[list, list, asyncio.Future]]) -> None:
        if len(batch) == 1:
            await self._answer(*batch[0][1:])
            return
        try:
            results = await self.run_blocking(self.score_fn, [r for reqs, _, _ in batch for r in reqs])
        except Exception:
            for _, sent, fut in batch:  # find whose request it was: each call alone, as sent
                await self._answer(sent, fut)
            return
        start = 0
        for reqs, _, fut in batch:
            if not fut.done():
                fut.set_result(results[start: start + len(reqs)])
            start += len(reqs)

    async def _answer(self, reqs: list, fut: asyncio.Future) -> None:
        try:
            result = await self.run_blocking(self.score_fn, reqs)
        except Exception as e:
            if not fut.done():
                fut.set_exception(e)
        else:
            if not fut.done():
                fut.set_result(result)


def create_app(scorer_factory, max_body_bytes: int = DEFAULT_MAX_BODY, max_batch: int = DEFAULT_MAX_BATCH):
    """The FastAPI app around ``scorer_factory()`` (a warmed-up ``pipelines.score.Scorer``), which
    runs at start-up, before the server accepts connections."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, GCCollector, Histogram,
                                   generate_latest)

    from pipelines.score import RequestError

    registry = CollectorRegistry()
    requests_total = Counter("econvrec_requests", "HTTP requests by endpoint and status", ["endpoint", "status"],
                             registry=registry)
    errors_total = Counter("econvrec_errors", "Requests answered with an error, by endpoint and status",
                           ["endpoint", "status"], registry=registry)
    latency = Histogram("econvrec_request_latency_seconds", "Latency of POST /rank and PUT /items", ["endpoint"],
                        buckets=(.002, .005, .0075, .01, .015, .02, .03, .05, .075, .1, .25, .5, 1, 2.5, 5),
                        registry=registry)
    candidates_total = Counter("econvrec_candidates_scored", "Candidates scored", registry=registry)
    batch_sizes = Histogram("econvrec_batch_requests", "Requests per score call (concurrent calls coalesced)",
                            buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=registry)
    frozen = Gauge("econvrec_gc_frozen_objects", "Objects made at start-up, out of the cyclic collector's reach",
                   registry=registry)
    GCCollector(registry=registry)  # python_gc_collections_total by generation: a full one stalls a request
    state: dict = {"scorer": None, "batcher": None}
    # The scorer's one thread: its calls run one at a time anyway (its caches are not thread-safe),
    # and a plain executor hands a call over in about a third of the time anyio's thread pool takes.
    scoring_thread = ThreadPoolExecutor(1, thread_name_prefix="scorer")

    def scored(fn, *args):
        return asyncio.get_running_loop().run_in_executor(scoring_thread, fn, *args)

    @asynccontextmanager
    async def lifespan(app):
        state["scorer"] = await scored(scorer_factory)
        # What loading made (TensorFlow's graphs, the run's tables, the feature caches: ~600k objects
        # the cyclic collector tracks) lives as long as the service: out of its reach, a full
        # collection no longer walks it (377 ms, about once every 300 requests, measured in process).
        gc.collect()
        gc.freeze()
        frozen.set(gc.get_freeze_count())
        batcher = RequestBatcher(state["scorer"].score, scored, max_batch, batch_sizes.observe)
        batcher.start()
        state["batcher"] = batcher
        yield
        await batcher.stop()
        scoring_thread.shutdown()

    app = FastAPI(title="econvrec-rank", lifespan=lifespan)

    def error(endpoint: str, status: int, message: str, request_id=None, field=None):
        errors_total.labels(endpoint, str(status)).inc()
        requests_total.labels(endpoint, str(status)).inc()
        return JSONResponse({"error": message, "request_id": request_id, "field": field}, status_code=status)

    async def read_json(request: Request, endpoint: str, key: str):
        """The list under ``key`` of the JSON body, or an error response."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            return None, error(endpoint, 413, f"body of {declared} bytes is over the limit of {max_body_bytes}")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body_bytes:
                return None, error(endpoint, 413, f"body is over the limit of {max_body_bytes} bytes")
        try:
            doc = json.loads(bytes(body).decode("utf-8"))
        except UnicodeDecodeError as e:
            return None, error(endpoint, 400, f"body is not valid UTF-8 ({e.reason})")
        except json.JSONDecodeError as e:
            return None, error(endpoint, 400, f"malformed JSON: {e.msg} at line {e.lineno} column {e.colno}")
        if not isinstance(doc, dict) or not isinstance(doc.get(key), list) or not doc[key]:
            return None, error(endpoint, 400, f"body must be an object with a non-empty list '{key}'", None, key)
        return doc[key], None

    async def run_scorer(endpoint: str, call):
        t0 = time.perf_counter()
        try:
            result = await call
        except RequestError as e:
            return None, error(endpoint, 400, str(e), e.request_id, e.field)
        except Exception as e:  # a bug of ours, not the caller's: say so, keep serving
            print(f"error: {endpoint}: {type(e).__name__}: {e}", file=sys.stderr)
            return None, error(endpoint, 500, f"internal error ({type(e).__name__})")
        finally:
            latency.labels(endpoint).observe(time.perf_counter() - t0)
        requests_total.labels(endpoint, "200").inc()
        return result, None

    @app.post("/rank")
    async def rank(request: Request):
        reqs, err = await read_json(request, "rank", "requests")
        if err is not None:
            return err
        results, err = await run_scorer("rank", state["batcher"].submit(reqs))
        if err is not None:
            return err
        candidates_total.inc(sum(len(r["ranking"]) for r in results))
        return JSONResponse({"results": results})

    @app.put("/items")
    async def put_items(request: Request):
        items, err = await read_json(request, "items", "items")
        if err is not None:
            return err
        n, err = await run_scorer("items", scored(state["scorer"].register_items, items))
        return err if err is not None else JSONResponse({"registered": n})

    @app.get("/healthz")
    async def healthz():
        if state["scorer"] is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def metrics():
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def load_scorer(run: str | Path, model: str, feature_set: str | None = None):
    """``Scorer.load`` + its warm-up (catalogue item features, every padded model size)."""
    from pipelines.score import Scorer

    scorer = Scorer.load(run, model, feature_set)
    scorer.warm_up()
    return scorer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.serve", description="Serve a trained run's ranker over HTTP.")
    ap.add_argument("--run", required=True, help="run directory written by pipelines.run")
    ap.add_argument("--model", required=True, help="ranker name, e.g. deepfm or kdcn")
    ap.add_argument("--feature-set", help="which feature set's model (default: the one with the most features)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY, help="larger bodies get 413")
    ap.add_argument("--tf-threads", type=int, default=1, metavar="N",
                    help="TensorFlow's threads per operation (default 1; 0: one per core). One leaves the other "
                         "cores to the request's pandas work while a new utterance is encoded in the background")
    args = ap.parse_args(argv)
    if args.tf_threads < 0:
        ap.error("--tf-threads must be >= 0")
    import tensorflow as tf
    import uvicorn

    # Before TensorFlow runs its first operation. On 2 cores, 1 thread: first turn p50 71 vs 85 ms, 8 clients
    # 40.5 vs 35.6 requests/s (benchmarks/bench_serve.py, TensorFlow encoder runtime).
    tf.config.threading.set_intra_op_parallelism_threads(args.tf_threads)

    from pipelines.rundir import RunDir

    try:  # fail before starting the server on a wrong run or model
        RunDir(args.run).find_model(args.model, args.feature_set)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    app = create_app(lambda: load_scorer(args.run, args.model, args.feature_set), args.max_body_bytes)
    # http="auto": httptools (a dependency) parses requests; pure-Python h11 only where it is missing.
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=30)
    _GracefulServer(config).run()
    return 0


class _GracefulServer:
    """``uvicorn.Server`` whose SIGTERM/SIGINT end with exit status 0 once in-flight requests are done
    (uvicorn re-raises the signal after its graceful shutdown, which kills the process with it)."""

    def __new__(cls, config):
        import contextlib
        import signal

        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self):
                previous = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
                try:
                    yield
                finally:
                    for s, h in previous.items():
                        signal.signal(s, h)

        return Server(config)


if __name__ == "__main__":
    sys.exit(main())
