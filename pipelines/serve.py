"""A ranking service for live conversations (FastAPI + uvicorn).

    python -m pipelines.serve --run RUN_DIR --model MODEL [--feature-set SET] [--host 127.0.0.1] [--port 8000]

* ``POST /rank`` ``{"requests": [request, ...]}`` (the request format of ``pipelines.score``) ->
  ``{"results": [{"request_id": ..., "ranking": [{"item_id": ..., "score": ...}, ...]}, ...]}`` in order;
* ``PUT /items`` ``{"items": [item record, ...]}`` registers or updates catalogue items (their
  features are computed then, not on the first request that names them);
* ``GET /healthz``: 200 once the model is loaded and warm (the service only listens after that);
* ``GET /metrics``: Prometheus text (requests and errors by endpoint and status, latency histogram).

Bad input is a 400 with ``{"error", "request_id", "field"}`` (413 for a body over ``--max-body-bytes``),
never a 500. Scoring runs one call at a time in a worker thread (the feature caches are not
thread-safe; the CPU is the limit anyway), so the event loop keeps accepting and answering health and
metrics. SIGTERM: uvicorn stops accepting, finishes the requests in flight and exits 0.
"""

import argparse
import json
import sys
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

DEFAULT_MAX_BODY = 1 << 20  # bytes; a 31-candidate request is ~3 KB


def create_app(scorer_factory, max_body_bytes: int = DEFAULT_MAX_BODY):
    """The FastAPI app around ``scorer_factory()`` (a warmed-up ``pipelines.score.Scorer``), which
    runs at start-up, before the server accepts connections."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
    from starlette.concurrency import run_in_threadpool

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
    state: dict = {"scorer": None}
    lock = threading.Lock()

    @asynccontextmanager
    async def lifespan(app):
        state["scorer"] = await run_in_threadpool(scorer_factory)
        yield

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

    def scored(fn, *args):
        with lock:
            return fn(*args)

    async def run_scorer(endpoint: str, fn, payload):
        t0 = time.perf_counter()
        try:
            result = await run_in_threadpool(scored, fn, payload)
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
        results, err = await run_scorer("rank", state["scorer"].score, reqs)
        if err is not None:
            return err
        candidates_total.inc(sum(len(r["ranking"]) for r in results))
        return JSONResponse({"results": results})

    @app.put("/items")
    async def put_items(request: Request):
        items, err = await read_json(request, "items", "items")
        if err is not None:
            return err
        n, err = await run_scorer("items", state["scorer"].register_items, items)
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
    args = ap.parse_args(argv)
    import uvicorn

    from pipelines.rundir import RunDir

    try:  # fail before starting the server on a wrong run or model
        RunDir(args.run).find_model(args.model, args.feature_set)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    app = create_app(lambda: load_scorer(args.run, args.model, args.feature_set), args.max_body_bytes)
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
