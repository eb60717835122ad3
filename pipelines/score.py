"""Batch scoring of candidate lists with a trained run.

    python -m pipelines.score --run RUN_DIR --model kdcn --requests requests.jsonl --out ranked.jsonl

A request (one JSON object per line)::

    {"request_id": "r1",
     "user_id": "U123",                      # or "profile": {...} inline (both: inline wins)
     "shop_id": "S7",                        # optional
     "turns": [{"role": "user", "text": "想要拍照清晰的手机", "items": []}, ...],   # dialogue so far
     "candidates": ["I1", "I2", {"item_id": "I_new", "category": "手机", "title": "...",
                                 "price": 1999, "attributes": {"颜色": "黑色"}}]}

Each request becomes one session whose next (staff) turn is the recommendation, and one sample;
the features go through the very ``FeaturePipeline.transform`` used for training, with the run's
fitted vocabularies, so scores match evaluation exactly. Users, items and values never seen in
training fall into the OOV ids.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path

import numpy as np
import pandas as pd

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.corpus import Corpus, CorpusError, KnownItems, KnownRecords
from core.corpus.validate import no_gc
from core.env import shared_cache
from core.io import atomic_file
from features.context import stable_hash
from features.frames import column_values
from features.materialize import FeaturePipeline
from features.preferences import USER_ROLES
from features.serving import ServingFeatures
from pipelines.rundir import RunDir


# An item the run has never seen and the request does not describe: every item feature takes its
# OOV / missing value.
UNKNOWN_ITEM = {"category": "<unknown>", "shop_id": "<unknown>", "title": "", "price": None, "attributes": {}}


class RequestError(ValueError):
    """A scoring request is malformed; the message names the request and field, as do ``request_id``
    (None when the request has none) and ``field`` (a dotted path inside the request, e.g.
    ``turns.0.text``)."""

    def __init__(self, message: str, request_id: str | None = None, field: str | None = None):
        super().__init__(message)
        self.request_id = request_id
        self.field = field


Scalar = str | int | float | bool | None


class ItemRecord(BaseModel):
    """An inline item: its id and whatever of the item record the caller knows."""

    model_config = ConfigDict(extra="allow")
    item_id: str | int
    category: str | None = None
    shop_id: str | int | None = None
    title: str | None = None
    price: float | None = None
    attributes: dict[str, Scalar] = Field(default_factory=dict)


class Turn(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    text: str = ""
    items: list[str | int | ItemRecord] = Field(default_factory=list)


class ScoringRequest(BaseModel):
    """The shape of one request (``pipelines.score`` lines, ``POST /rank``); checked before anything
    else reads it, so a mistyped field is a ``RequestError`` naming it."""

    model_config = ConfigDict(extra="allow")
    request_id: str | int | None = None
    user_id: str | int | None = None
    profile: dict[str, Scalar | list[Scalar]] | None = None
    shop_id: str | int | None = None
    turns: list[Turn] = Field(default_factory=list)
    candidates: list[str | int | ItemRecord] = Field(min_length=1)


def _clean(v):
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


class Reference:
    """Users, items and behaviour logs of the training corpus, looked up by id (records built once)."""

    def __init__(self, directory: Path):
        d = Path(directory)
        self.users = pd.read_parquet(d / "users.parquet").set_index("user_id", drop=False)
        self.items = pd.read_parquet(d / "items.parquet").set_index("item_id", drop=False)
        attrs = pd.read_parquet(d / "item_attrs.parquet")
        self.attrs = {k: dict(zip(g["name"], g["value"])) for k, g in attrs.groupby("item_id", sort=False)}
        b = pd.read_parquet(d / "behaviors.parquet")
        self.behaviors = {k: g for k, g in b.groupby("user_id", sort=False)}
        self._users: dict[str, dict | None] = {}
        self._items: dict[str, dict | None] = {}
        self._logs: dict[str, list[dict]] = {}
        self._known_items: KnownItems | None = None
        # The user records and behaviour logs handed out (memoised, never mutated), validated once:
        # a request corpus keeps their models (``Corpus.from_records(known_records=...)``).
        self.known_records = KnownRecords()

    @property
    def known_items(self) -> KnownItems:
        """The records of every item (``item``), validated once: a request corpus takes their rows
        from here instead of validating them again (``Corpus.from_records(known_items=...)``)."""
        if self._known_items is None:
            self._known_items = KnownItems(self.item(str(i)) for i in self.items.index)
        return self._known_items

    def user(self, user_id: str) -> dict | None:
        # Memoised for known ids only: unknown ones (any string a client sends) must not grow memory.
        if user_id not in self._users:
            if user_id not in self.users.index:
                return None
            row = self.users.loc[user_id]
            profile = {k: _clean(v) for k, v in row.items() if k != "user_id"}
            self._users[user_id] = {"user_id": user_id, "profile": {k: v for k, v in profile.items() if v is not None}}
            self.known_records.add("users", [self._users[user_id]])
        return self._users[user_id]

    def item(self, item_id: str) -> dict | None:
        if item_id not in self._items:
            if item_id not in self.items.index:
                return None
            r = self.items.loc[item_id]
            self._items[item_id] = {"item_id": item_id, "category": r["category"], "shop_id": r["shop_id"],
                                    "title": r["title"], "price": _clean(r["price"]),
                                    "attributes": self.attrs.get(item_id, {})}
        return self._items[item_id]

    def user_behaviors(self, user_id: str) -> list[dict]:
        g = self.behaviors.get(user_id)
        if g is None:
            return []
        if user_id not in self._logs:
            self._logs[user_id] = [{"user_id": user_id, "type": t, "item_id": i, "ts": int(ts)}
                                   for t, i, ts in zip(g["type"], g["item_id"], g["ts"])]
            self.known_records.add("behaviors", self._logs[user_id])
        return self._logs[user_id]


def content_key(kind: str, record) -> str:
    """Cache key of an inline record: its content, hashed."""
    return f"{kind}:" + stable_hash(record, n=20)


@dataclass
class RequestKeys:
    """Cache key of each item and user id of a request corpus (see ``features.serving``): the
    reference id for what the run knows, the content hash for what a request describes inline."""

    items: dict[str, str] = dc_field(default_factory=dict)
    users: dict[str, str] = dc_field(default_factory=dict)


def check_request(req, i: int) -> str:
    """Validate one request's shape; returns its id. Raises ``RequestError`` naming the field."""
    if not isinstance(req, dict):
        raise RequestError(f"request #{i + 1}: must be a JSON object", None, "")
    rid = req.get("request_id")
    rid = str(rid) if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None
    try:
        ScoringRequest.model_validate(req)
    except ValidationError as e:
        # A union's members show up as location parts (e.g. 'str', 'ItemRecord'): not fields. The
        # deepest location is the most specific (an item record's missing 'item_id', not 'not a string').
        locs = [([str(x) for x in er["loc"] if not (isinstance(x, str) and (x[:1].isupper() or x in _TYPE_NAMES))], er)
                for er in e.errors()]
        loc, err = max(locs, key=lambda le: len(le[0]))
        field = ".".join(loc)
        where = f"request '{rid}'" if rid is not None else f"request #{i + 1}"
        raise RequestError(f"{where}: field '{field}': {err['msg']}", rid, field) from None
    if req.get("user_id") is None and req.get("profile") is None:
        raise RequestError(f"request '{rid or i + 1}': give 'user_id' or an inline 'profile'", rid, "user_id")
    return rid if rid is not None else f"request-{i + 1}"


_TYPE_NAMES = {"str", "int", "float", "bool", "none", "list[...]", "dict[str,...]"}


def requests_to_records(requests: list[dict], ref: Reference, keys: RequestKeys | None = None,
                        catalogue: Mapping[str, dict] | None = None) -> dict:
    """Turn scoring requests into corpus records (users, items, sessions, behaviors, samples).

    ``keys`` (filled in when given): the cache key of every item and user. ``catalogue``: items
    registered after training (``PUT /items``), looked up before the run's reference."""
    users, items, sessions, behaviors, samples = {}, {}, [], [], []
    keys = keys if keys is not None else RequestKeys()
    catalogue = catalogue or {}

    def need_item(it):
        if type(it) is str and it in items:  # (most ids: candidates seen in another request)
            return it
        if isinstance(it, dict):
            iid = str(it["item_id"])
            items[iid] = {**UNKNOWN_ITEM, **it, "item_id": iid}
            keys.items[iid] = content_key("item", items[iid])
            return iid
        iid = str(it)
        if iid not in items:
            rec = catalogue.get(iid)
            if rec is not None:
                keys.items[iid] = content_key("item", rec)
            else:
                rec = ref.item(iid)
                # Unknown to the run: an empty record, so every item feature takes its OOV/missing value.
                keys.items[iid] = f"ref:{iid}" if rec is not None else "unknown-item"
                rec = rec or {**UNKNOWN_ITEM, "item_id": iid}
            items[iid] = rec
        return iid

    for i, req in enumerate(requests):
        rid = check_request(req, i)
        uid = req.get("user_id")
        uid = str(uid) if uid is not None else f"__anonymous__{rid}"
        if req.get("profile") is not None:
            users[uid] = {"user_id": uid, "profile": req["profile"]}
            keys.users[uid] = content_key("profile", req["profile"])
        elif uid not in users:
            known = ref.user(uid)
            users[uid] = known or {"user_id": uid, "profile": {}}
            history = ref.user_behaviors(uid)
            for b in history:
                need_item(b["item_id"])
            behaviors.extend(history)
            # Unknown users without history all have the same (OOV / empty) features.
            keys.users[uid] = f"ref:{uid}" if known is not None or history else "unknown-user"
        cand_ids = [need_item(c) for c in req["candidates"]]
        clean_turns = []
        for t in req.get("turns") or []:
            t = {"items": [], "intent": None, "recommend": None, **t}
            t["items"] = [need_item(x) for x in t["items"]]
            clean_turns.append(t)
        if not clean_turns:  # the corpus format wants at least one turn of context
            clean_turns.append({"role": "user", "text": "", "items": [], "intent": None, "recommend": None})
        # The recommendation happens at the next staff turn: everything given is context.
        clean_turns.append({"role": "staff", "text": "", "items": [], "intent": None, "recommend": True})
        sid = f"__session__{rid}"
        sessions.append({"session_id": sid, "user_id": uid, "shop_id": str(req.get("shop_id") or ""),
                         "turns": clean_turns})
        samples.append({"sample_id": rid, "session_id": sid, "turn": len(clean_turns) - 1, "candidates": cand_ids,
                        "label_item": cand_ids[0], "split": "test"})  # label unused when scoring
    return {"users": list(users.values()), "items": list(items.values()), "sessions": sessions,
            "behaviors": behaviors, "samples": samples}


def request_corpus(records: dict, requests: list, known_items: KnownItems | None = None,
                   known_records: KnownRecords | None = None) -> Corpus:
    """``Corpus.from_records`` of scoring records; a record the corpus contract refuses is a
    ``RequestError`` naming the request and field. ``known_items`` (``Reference.known_items``): item
    records validated before, whose rows are reused; ``known_records`` (``Reference.known_records``):
    user and behaviour records validated before, whose models are reused."""
    try:
        return Corpus.from_records(**records, source="<requests>", known_items=known_items,
                                   known_records=known_records)
    except CorpusError as e:
        p = e.problems[0]
        table = p.file.rsplit("/", 1)[-1]
        rid = None
        if table in ("sessions", "samples") and 0 < p.line <= len(records[table]):
            rid = records["samples"][p.line - 1]["sample_id"]
        where = f"request '{rid}'" if rid is not None else "requests"
        raise RequestError(f"{where}: field '{p.field}': {p.reason}", rid, p.field) from None


class FlatCall:
    """A traced function of one dict of tensors and one output, called as its ``__call__`` ends up
    calling it in eager mode with no gradient tape (``execute`` of the function's name on its flat
    inputs, then the variables it captured, as ``AtomicFunction.call_flat`` does), without the Python
    work before that, which costs more than the graph of a request's 32 rows (deepfm: 0.56 -> 0.38 ms
    a call): binding the dict to the signature, each value through ``tf.constant``'s checks.

    ``executor``: TensorFlow's single-threaded executor by default (``SINGLE_THREADED_EXECUTOR``: ops
    run one after the other on the calling thread), "" its default executor (what ``call_flat`` uses:
    independent ops dispatched to the inter-op pool). In a live request the other core is busy (the
    utterance's encoding) and the pool's threads are cold, so the hand-offs cost more than they win:
    model call p50 inside real scoring, new utterance per request, interleaved per request, 2-core
    EPYC: deepfm 0.915 -> 0.808 ms, dcn 2.32 -> 2.19, kdcn 4.49 -> 4.06, fgcnn 3.31 -> 3.09. The same
    kernels on the same inputs: the same values (``of`` checks it).
    ``of``: None where this TensorFlow lacks a piece of it (then call the function itself)."""

    SINGLE_THREADED = "SINGLE_THREADED_EXECUTOR"

    def __init__(self, fn, keys: list[str], executor: str = SINGLE_THREADED):
        from tensorflow.python.eager import context, execute
        from tensorflow.python.framework import ops

        self._tensor, self._ctx, self._execute = ops.EagerTensor, context.context(), execute.execute
        self._name = fn.inference_fn.name.decode("utf-8")
        self._keys = keys  # the dict's keys in the order of the function's flat inputs
        self._captured = list(fn.captured_inputs)
        self.executor = executor

    @classmethod
    def of(cls, fn, executor: str = SINGLE_THREADED) -> "FlatCall | None":
        """The lean call of ``fn`` on ``executor``; the single-threaded one only where one call of it
        on zeros gives exactly what ``fn`` gives (an executor may refuse a graph, e.g. one with control
        flow: an ``OpError``), else the default executor."""
        import tensorflow as tf

        try:
            signature = fn.structured_input_signature
            keys = [spec.name for spec in tf.nest.flatten(signature)]
            placeholders = [t.name.split(":")[0] for t in fn.inputs[: len(keys)]]
            if signature != ((signature[0][0],), {}) or not isinstance(signature[0][0], dict) \
                    or keys != placeholders or len(fn.outputs) != 1:
                return None
            single = cls(fn, keys, executor)
        except (AttributeError, ImportError, TypeError, IndexError):
            return None
        if executor != cls.SINGLE_THREADED:
            return single
        zeros = {k: np.zeros(spec.shape, spec.dtype.as_numpy_dtype) for k, spec in signature[0][0].items()}
        try:
            if np.array_equal(single(zeros), fn(zeros).numpy()):
                return single
        except tf.errors.OpError:
            pass
        return cls(fn, keys, executor="")

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """The function's output for ``inputs`` (numpy arrays of its signature's dtypes and shapes)."""
        ctx = self._ctx
        device = ctx.device_name
        args = [self._tensor(inputs[k], device) for k in self._keys]
        attrs = ("executor_type", self.executor, "config_proto", ctx.function_call_options.as_attrs()["config_proto"])
        return self._execute(self._name, 1, args + self._captured, attrs, ctx)[0].numpy()


class CompiledModel:
    """The trained Keras model behind one traced graph per padded batch size (``SIZES``): a call
    pads its rows up to the next size, so it never retraces and pays no ``model.predict`` set-up."""

    SIZES = (32, 128, 512, 2048)
    # Padded sizes called on the single-threaded executor (``FlatCall``): a live request's few rows,
    # where handing independent ops to the inter-op pool costs more than it wins. A batch's 512 and
    # 2048 rows keep the default one (deepfm 2048 rows: 17.7 ms a call on it, 18.5 single-threaded).
    SINGLE_THREADED_ROWS = 128

    def __init__(self, ranker):
        import tensorflow as tf

        from rankers import inputs as rin

        self.ranker, self.space, self._pack = ranker, ranker.space, rin.pack
        model = getattr(ranker, "model", None)
        self._fns = {}
        self._flat: dict[int, FlatCall] = {}  # the same functions, called without the per-call binding
        if isinstance(model, tf.keras.Model):
            score = tf.function(lambda batch: tf.sigmoid(model(batch, training=False))[:, 0])
            shapes = {k: (tuple(t.shape[1:]), t.dtype) for k, t in rin.keras_inputs(self.space).items()}
            for n in self.SIZES:
                self._fns[n] = score.get_concrete_function(
                    {k: tf.TensorSpec((n,) + s, d, name=k) for k, (s, d) in shapes.items()})
                flat = FlatCall.of(self._fns[n], FlatCall.SINGLE_THREADED if n <= self.SINGLE_THREADED_ROWS else "")
                if flat is not None:
                    self._flat[n] = flat

    def warm_up(self) -> None:
        """Run every padded size once (first calls allocate and pick kernels)."""
        if self._fns:
            for n in self.SIZES:
                self._call({k: np.zeros((n,) + tuple(t.shape[1:]), t.dtype.as_numpy_dtype)
                            for k, t in self._fns[n].structured_input_signature[0][0].items()}, n)

    def _call(self, packed: dict[str, np.ndarray], size: int) -> np.ndarray:
        flat = self._flat.get(size)
        return flat(packed) if flat is not None else self._fns[size](packed).numpy()

    def predict(self, X: Mapping[str, np.ndarray]) -> np.ndarray:
        """Click probabilities, float32 of shape ``(n,)``, like ``ranker.predict``."""
        if not self._fns:  # not a Keras ranker (e.g. GBDT): its own predict
            return np.asarray(self.ranker.predict(X), np.float32)
        n = len(next(iter(X.values()), ()))
        top = self.SIZES[-1]
        # Calls of ``top`` rows, then one of the smallest size holding the rest: packed once, already
        # padded with zero rows to the sum of the calls' sizes, each call a slice of it.
        last = next(z for z in self.SIZES if z >= n % top) if n % top else 0
        packed = self._pack(self.space, X, n - n % top + last)
        out = np.empty(n, np.float32)
        for s in range(0, n, top):
            m = min(top, n - s)
            size = top if m == top else last
            out[s: s + m] = self._call({k: v[s: s + size] for k, v in packed.items()}, size)[:m]
        return out


class Scorer:
    """A trained ranker of a run with its fitted features, ready to score requests:
    ``Scorer.load(run_dir, "kdcn").score(requests)``. Features go through the serving path
    (``features.serving``: item and user sides cached per key), the model through ``CompiledModel``."""

    def __init__(self, run: RunDir, model_dir: Path):
        from rankers.registry import load

        self.run = run
        self.model = load(model_dir)
        # The cross-run text cache the run's features were computed with (keyed by encoder and text):
        # on the training machine, the catalogue's titles and the corpus's utterances are not re-encoded.
        self.pipeline = FeaturePipeline.load(run.features, show_progress=False, cache=shared_cache())
        self.reference = Reference(run.reference)
        self.features = ServingFeatures.for_columns(self.pipeline, self.model.space.names)
        self.compiled = CompiledModel(self.model)
        self.catalogue: dict[str, dict] = {}  # items registered after training (PUT /items)
        self._pref_extractor = None

    def _corpus(self, requests: list[dict], keys: RequestKeys) -> Corpus:
        """The request corpus of ``requests`` (``keys`` filled in); the run's items keep the rows of
        their one validation (``Reference.known_items``), its users and behaviour logs their models
        (``Reference.known_records``)."""
        with no_gc():  # many small dicts, no cycles (see no_gc)
            records = requests_to_records(requests, self.reference, keys, self.catalogue)
        return request_corpus(records, requests, self.reference.known_items, self.reference.known_records)

    def _catalogue_corpus(self, item_ids: list[str], keys: RequestKeys) -> Corpus:
        req = {"request_id": "__catalogue__", "user_id": "__catalogue__", "candidates": item_ids}
        return self._corpus([req], keys)

    def _with_run_kb(self, corpus: Corpus) -> Corpus:
        """Preference words of unannotated turns are found against the run's whole catalogue (as in
        training, where the knowledge base is the corpus's), not the few items of a request; the
        extractor is built once (its jieba dictionary costs seconds) and memoised where
        ``features.preferences.extractor_for`` looks for it."""
        if self._pref_extractor is None:
            from features.preferences import extractor_for

            kb = self._catalogue_corpus([str(i) for i in self.reference.items.index], RequestKeys())
            self._pref_extractor = extractor_for(kb)
        corpus.meta["_pref_extractor"] = self._pref_extractor
        return corpus

    @classmethod
    def load(cls, run_dir: str | Path, model: str, feature_set: str | None = None) -> "Scorer":
        """Without ``feature_set``: the model's feature set with the most fields (the full set)."""
        run = RunDir(run_dir)
        _, model_dir = run.find_model(model, feature_set)
        return cls(run, model_dir)

    def warm_up(self, chunk: int = 2000) -> None:
        """Item features of the run's whole catalogue, user features of its every user, and every
        padded model size, computed now (a request then computes only its dialogue side)."""
        ids = [str(i) for i in self.reference.items.index]
        for s in range(0, len(ids), chunk):
            self._prepare_items(ids[s: s + chunk])
        users = [str(u) for u in self.reference.users.index]
        for s in range(0, len(users), chunk):
            self._prepare_users(users[s: s + chunk])
        self.compiled.warm_up()

    def register_items(self, items: list[dict]) -> int:
        """Add or update catalogue items (inline item records) and compute their features now."""
        for i, it in enumerate(items):
            try:
                ItemRecord.model_validate(it)
            except ValidationError as e:
                err = e.errors()[0]
                field = ".".join(str(x) for x in err["loc"])
                raise RequestError(f"item #{i + 1}: field '{field}': {err['msg']}", None, f"items.{i}.{field}") from None
        recs = {str(it["item_id"]): {**UNKNOWN_ITEM, **it, "item_id": str(it["item_id"])} for it in items}
        self.catalogue.update(recs)
        self._prepare_items(list(recs))
        return len(recs)

    def _prepare_items(self, item_ids: list[str]) -> None:
        keys = RequestKeys()
        corpus = self._catalogue_corpus(item_ids, keys)
        self.features.prepare(self._with_run_kb(corpus), keys.items, {})

    def _prepare_users(self, user_ids: list[str]) -> None:
        if not self.features.user_entries or not len(self.reference.items):
            return
        any_item = str(self.reference.items.index[0])  # a request needs a candidate; its item is cached
        keys = RequestKeys()
        reqs = [{"request_id": f"__user__{u}", "user_id": u, "candidates": [any_item]} for u in user_ids]
        corpus = self._corpus(reqs, keys)
        self.features.prepare(self._with_run_kb(corpus), keys.items, keys.users)

    def score(self, requests: list[dict]) -> list[dict]:
        """Per request: candidates ordered by score (highest first) with their scores."""
        # A batch makes ~10^5 short-lived containers (records, pydantic models, rankings), no cycles;
        # the collections they trigger walk the whole heap, TensorFlow's included (no_gc).
        with no_gc():
            return self._score(requests)

    def _score(self, requests: list[dict]) -> list[dict]:
        # New utterances start encoding in the background now, while the requests are validated
        self.features.prefetch(request_utterances(requests))
        keys = RequestKeys()
        corpus = self._with_run_kb(self._corpus(requests, keys))
        table = self.features.transform(corpus, keys.items, keys.users)
        scores = self.compiled.predict(table.X(self.model.space))
        # (the columns' arrays without a Series each: 44 -> 16 us of a request's 67 us of ranking)
        sample, items, position = (column_values(table.rows, c) for c in ("sample_id", "item_id", "position"))
        # Rows come grouped by sample in request order: one slice per request.
        bounds = np.flatnonzero(np.r_[True, sample[1:] != sample[:-1], True])
        out = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            order = a + np.lexsort((position[a:b], -scores[a:b]))
            out.append({"request_id": sample[a],
                        "ranking": [{"item_id": i, "score": v}  # (tolist: the floats float() gives)
                                    for i, v in zip(items[order].tolist(), scores[order].tolist())]})
        return out


def request_utterances(requests: list) -> list[str]:
    """The texts of the requests' user turns as sent, read before validation (a malformed request
    only loses the head start; its error comes from validation)."""
    return [t["text"] for r in requests if isinstance(r, dict) and isinstance(r.get("turns"), list)
            for t in r["turns"] if isinstance(t, dict) and isinstance(t.get("text"), str)
            and isinstance(t.get("role"), str) and t["role"].lower() in USER_ROLES]


def read_requests(path: Path) -> list[dict]:
    out = []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                out.append(json.loads(raw.decode("utf-8")))
            except UnicodeDecodeError as e:
                raise RequestError(f"{path}:{n}: not valid UTF-8 ({e.reason})") from None
            except json.JSONDecodeError as e:
                raise RequestError(f"{path}:{n}: malformed JSON ({e.msg} at column {e.colno})") from None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.score", description="Rank candidate lists with a trained run.")
    ap.add_argument("--run", required=True, help="run directory written by pipelines.run")
    ap.add_argument("--model", required=True, help="ranker name, e.g. kdcn or deepfm")
    ap.add_argument("--feature-set", help="which feature set's model (default: the one with the most features)")
    ap.add_argument("--requests", required=True, help="requests JSON Lines file")
    ap.add_argument("--out", required=True, help="output JSON Lines file (written atomically)")
    ap.add_argument("--batch-size", type=int, default=512, help="requests per batch")
    args = ap.parse_args(argv)

    try:
        reqs = read_requests(Path(args.requests))
        ranker = Scorer.load(args.run, args.model, args.feature_set)
        t0 = time.perf_counter()
        out_path = Path(args.out)
        n_cand = 0
        with atomic_file(out_path) as f:
            for s in range(0, len(reqs), args.batch_size):
                for r in ranker.score(reqs[s : s + args.batch_size]):
                    n_cand += len(r["ranking"])
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
    except (RequestError, CorpusError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    dt = time.perf_counter() - t0
    print(f"scored {len(reqs)} requests ({n_cand} candidates) in {dt:.2f}s -> {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
