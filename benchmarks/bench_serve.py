"""The ranking service over HTTP, and batch scoring against the previous scorer.

    python benchmarks/bench_serve.py --run /tmp/serve_run --model deepfm [--duration 20] [--n 300] [--rounds 3]

1. ``python -m pipelines.serve`` on a free port; sequential single requests over one keep-alive
   connection: a reference user, 31 catalogue candidates, and a dialogue ending in a user utterance
   never sent before (a preference with a counter in it, so the encoder sees a new text every time).
   p50 / p99 latency as the client sees it over ``--rounds`` rounds of ``--n``, with each round's p50
   (the standard library's ``http.client``; then again with ``httpx``, whose own work adds ~2 ms a
   request). Then the same later in a chat: two of the
   candidates shown by the staff and a new reply reacting to them (``RequestMaker(shown=True)``).
2. 8 and 32 concurrent clients (``httpx.AsyncClient``) for ``--duration`` seconds each: requests/s,
   p50 / p99, errors.
3. Batch scoring of the run's test split through ``python -m pipelines.score``'s ``Scorer`` against
   the scorer of commit ``BASELINE`` (one full ``FeaturePipeline.transform`` + ``model.predict`` per
   batch), in this process, two passes each (the first encodes the requests' utterances, the second
   finds them cached): candidates/s of both, the ratio per pass, and the largest score difference.
   ``--batch-only`` reruns just this part and keeps the HTTP rows of the previous result file.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.bench_score import test_requests  # noqa: E402
from benchmarks.common import format_table, write_results  # noqa: E402

BASELINE = "ed6ea88"  # pipelines/score.py before the serving path
CANDIDATES = 31


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def corpus_dir_of(run: Path) -> Path:
    import yaml

    cfg = yaml.safe_load((run / "config.yaml").read_text())
    if cfg.get("data"):
        return Path(cfg["data"])
    from synth import default_corpus_dir

    return default_corpus_dir(scale=cfg["scale"], seed=cfg["seed"])


class RequestMaker:
    """Live-like requests: a known user, 31 catalogue items, a new user utterance each time.
    ``shown``: later in a chat: the staff has shown two of the candidates and the new utterance
    reacts to one of them (the reaction, similarity and title features then have work to do)."""

    def __init__(self, run: Path, seed: int = 0, shown: bool = False):
        self.shown = shown
        import pandas as pd

        items = pd.read_parquet(run / "reference" / "items.parquet")
        self.by_cat = [g["item_id"].tolist() for _, g in items.groupby("category") if len(g) >= CANDIDATES]
        self.cats = [c for c, g in items.groupby("category") if len(g) >= CANDIDATES]
        self.users = pd.read_parquet(run / "reference" / "users.parquet")["user_id"].tolist()
        self.rng = random.Random(seed)
        self.n = 0

    def __call__(self) -> dict:
        self.n += 1
        k = self.rng.randrange(len(self.by_cat))
        cands = self.rng.sample(self.by_cat[k], CANDIDATES)
        budget = 1000 + 37 * self.n
        turns = [{"role": "user", "text": f"想买{self.cats[k]}"},
                 {"role": "staff", "text": "您有什么要求吗？"},
                 {"role": "user", "text": f"想要拍照清晰一点的，{budget}以内，第{self.n}次问了"}]
        if self.shown:
            turns += [{"role": "staff", "text": "您看看这两款", "items": cands[:2]},
                      {"role": "user", "text": f"第二款颜色不好看，第一款还行吧，{budget + 500}以内的还有吗"}]
        return {"request_id": f"q{self.n}", "user_id": self.rng.choice(self.users), "turns": turns,
                "candidates": cands}


def start_server(run: Path, model: str, port: int) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen([sys.executable, "-m", "pipelines.serve", "--run", str(run), "--model", model,
                             "--port", str(port)], cwd=ROOT)
    t0 = time.time()
    while time.time() - t0 < 900:
        if proc.poll() is not None:
            raise SystemExit(f"service exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                print(f"service healthy after {time.time() - t0:.1f}s")
                return proc
        except httpx.TransportError:
            pass
        time.sleep(1)
    proc.kill()
    raise SystemExit("service did not become healthy")


def sequential(url: str, make, n: int, client: str = "http.client", rounds: int = 1) -> dict:
    """``rounds`` x ``n`` requests one after another over one keep-alive connection: p50 / p99 of all
    of them, and each round's p50 (how much the figure moves within one run). ``client``: the standard
    library's ``http.client`` (what the latency of the service itself is read from: httpx's own
    request building and response parsing add ~2 ms to each round trip on these 2 cores, measured in
    the same minute) or ``httpx``."""
    import http.client
    from urllib.parse import urlsplit

    import httpx

    lat, errors = [], 0
    if client == "httpx":
        c = httpx.Client(timeout=30)

        def post(body: dict) -> int:
            return c.post(f"{url}/rank", json=body).status_code
    else:
        c = http.client.HTTPConnection(urlsplit(url).hostname, urlsplit(url).port, timeout=30)

        def post(body: dict) -> int:
            c.request("POST", "/rank", json.dumps(body), {"content-type": "application/json"})
            response = c.getresponse()
            response.read()
            return response.status
    try:
        for _ in range(10):  # warm the connection and the new-utterance path
            post({"requests": [make()]})
        for _ in range(n * rounds):
            body = {"requests": [make()]}
            t0 = time.perf_counter()
            status = post(body)
            lat.append(time.perf_counter() - t0)
            errors += status != 200
    finally:
        c.close()
    ms = np.array(lat) * 1000
    return {"case": f"sequential, 1 client ({client})", "requests": len(lat), "req_per_s": len(lat) / sum(lat),
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "errors": errors,
            "round_p50_ms": [float(np.percentile(r, 50)) for r in np.array_split(ms, rounds)]}


async def concurrent(url: str, make, clients: int, duration: float) -> dict:
    import httpx

    lat, errors = [], 0
    stop = time.perf_counter() + duration

    async def client(c):
        nonlocal errors
        while time.perf_counter() < stop:
            body = {"requests": [make()]}
            t0 = time.perf_counter()
            try:
                r = await c.post(f"{url}/rank", json=body)
                bad = r.status_code != 200 or len(r.json()["results"][0]["ranking"]) != CANDIDATES
            except httpx.HTTPError:
                bad = True
            lat.append(time.perf_counter() - t0)
            errors += bad

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=60, limits=limits) as c:
        await asyncio.gather(*(client(c) for _ in range(clients)))
    wall = time.perf_counter() - t0
    ms = np.array(lat) * 1000
    return {"case": f"{clients} concurrent clients, {duration:.0f}s", "requests": len(lat),
            "req_per_s": len(lat) / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "errors": errors}


class ScoreCalls:
    """Requests per score call (the service coalesces concurrent calls) from its ``/metrics``,
    over the interval since the previous reading."""

    def __init__(self, url: str):
        self.url = url
        self.last = self._read()

    def _read(self) -> tuple[float, float]:
        import httpx

        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        value = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                 if line.startswith("econvrec_batch_requests_")}
        return value.get("econvrec_batch_requests_sum", 0.0), value.get("econvrec_batch_requests_count", 0.0)

    def since_last(self) -> dict:
        now = self._read()
        (s0, c0), self.last = self.last, now
        calls = now[1] - c0
        return {"score_calls": int(calls), "requests_per_score_call": (now[0] - s0) / calls if calls else float("nan")}


def baseline_scorer_module():
    """``pipelines/score.py`` as of ``BASELINE`` (read from git, nothing checked out)."""
    src = subprocess.run(["git", "show", f"{BASELINE}:pipelines/score.py"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    mod = types.ModuleType("baseline_score")
    exec(compile(src, f"{BASELINE}:pipelines/score.py", "exec"), mod.__dict__)
    return mod


def batch(run: Path, model: str, reqs: list[dict], batch_size: int = 512) -> list[dict]:
    """Both scorers over the same requests, twice each: the first pass encodes every utterance it has
    not seen (a batch of new conversations), the second finds them in the text cache (features and
    model only). The serving path goes first: its new texts stay in its in-memory cache, which the
    baseline's (disk) path does not read, so the baseline's first pass encodes them again."""
    from pipelines.score import Scorer

    rows, scores = [], {}
    n_cand = sum(len(r["candidates"]) for r in reqs)
    for name, cls in (("serving path", Scorer), ("baseline", baseline_scorer_module().Scorer)):
        scorer = cls.load(run, model)
        if hasattr(scorer, "warm_up"):
            scorer.warm_up()
        for attempt in ("first pass", "repeat"):
            t0 = time.perf_counter()
            out = [x for s in range(0, len(reqs), batch_size) for x in scorer.score(reqs[s: s + batch_size])]
            dt = time.perf_counter() - t0
            rows.append({"scorer": name, "pass": attempt, "requests": len(reqs), "candidates": n_cand, "seconds": dt,
                         "candidates_per_s": n_cand / dt})
        scores[name] = {(r["request_id"], c["item_id"]): c["score"] for r in out for c in r["ranking"]}
    a, b = scores["baseline"], scores["serving path"]
    assert a.keys() == b.keys()
    diff = max(abs(a[k] - b[k]) for k in a)
    for r in rows:
        base = next(x for x in rows if x["scorer"] == "baseline" and x["pass"] == r["pass"])
        r["speed-up"] = r["candidates_per_s"] / base["candidates_per_s"]
        r["max_abs_diff"] = diff
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--model", default="deepfm")
    ap.add_argument("--n", type=int, default=300, help="sequential requests timed")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of --n requests of the first case (its spread)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per concurrency level")
    ap.add_argument("--clients", default="8,32")
    ap.add_argument("--out", default="benchmarks/results/serve.json")
    ap.add_argument("--batch-only", action="store_true",
                    help="only the batch part; the HTTP rows are kept from --out (a previous run)")
    ap.add_argument("--http-only", action="store_true", help="only the HTTP part (nothing written)")
    args = ap.parse_args()
    run = Path(args.run)
    load = {"load_avg_start": os.getloadavg()}
    if args.batch_only:
        previous = json.loads(Path(args.out).read_text())
        http = previous["http"]
        load.update({k: v for k, v in previous.items() if k.startswith("load_avg") or k == "service_exit_code"})
        load["http_from"] = "previous run of this benchmark"
    else:
        make = RequestMaker(run)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start_server(run, args.model, port)
        try:
            calls = ScoreCalls(url)
            http = [{**sequential(url, make, args.n, rounds=args.rounds), **calls.since_last()},
                    {**sequential(url, RequestMaker(run, seed=1, shown=True), args.n), **calls.since_last(),
                     "case": "sequential, 2 shown + reaction"},
                    {**sequential(url, make, args.n, client="httpx"), **calls.since_last()}]  # (texts go on being new)
            for c in map(int, args.clients.split(",")):
                http.append({**asyncio.run(concurrent(url, make, c, args.duration)), **calls.since_last()})
        finally:
            proc.terminate()
            load["service_exit_code"] = proc.wait(timeout=60)
        load["load_avg_after_http"] = os.getloadavg()
    print("\n" + format_table(http, [("case", "case", "<34"), ("requests", "requests", "d"), ("req/s", "req_per_s", ".1f"),
                                      ("p50 ms", "p50_ms", ".1f"), ("p99 ms", "p99_ms", ".1f"), ("errors", "errors", "d"),
                                      ("req/score call", "requests_per_score_call", ".1f")]))
    first = http[0]
    print(f"{first['case']}: p50 of each round of {args.n}: " + ", ".join(f"{x:.1f}" for x in first["round_p50_ms"]) + " ms")
    if args.http_only:
        return
    rows = batch(run, args.model, test_requests(corpus_dir_of(run)))
    load["load_avg_end"] = os.getloadavg()
    print("\n" + format_table(rows, [("scorer", "scorer", "<13"), ("pass", "pass", "<10"), ("requests", "requests", "d"),
                                      ("cands", "candidates", "d"),
                                      ("cand/s", "candidates_per_s", ",.0f"), ("x", "speed-up", ".1f"),
                                      ("max |diff|", "max_abs_diff", ".1e")]))
    print(f"\nload average (1, 5, 15 min): {load}")
    write_results(args.out, {"run": str(run), "model": args.model, "http": http, "batch": rows, **load})


if __name__ == "__main__":
    main()
