"""Word vectors for the context features: GloVe trained here, gensim Word2Vec, or pretrained files.

E-ConvRec trains GloVe "with a large size of data collected from dialogues and item titles". The
three methods all return a gensim :class:`~gensim.models.KeyedVectors`:

* ``glove``       :func:`train_glove` -- real GloVe (Pennington et al., 2014) in NumPy: a sparse
  co-occurrence matrix counted in a symmetric window with distance weighting ``1/d``, then the
  weighted least-squares objective ``sum_ij f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2`` with
  ``f(x) = min(1, (x/x_max)^alpha)``, optimised with AdaGrad over shuffled mini-batches of the
  non-zero entries; the word vectors are ``W + W~``.
* ``word2vec``    :func:`train_word2vec` -- gensim's skip-gram/CBOW (one worker: deterministic).
* ``pretrained``  :func:`load_pretrained` -- a GloVe text file (no header), or word2vec text/binary.

:func:`wordvec_resource` trains (once) inside ``ctx.resource_dir("wordvec", ...)``: the vectors are
saved in word2vec binary format (``vectors.bin``, no pickle) and travel with the run's artefacts.
Training is seeded and single-threaded, hence deterministic.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Literal, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from gensim.models import KeyedVectors
from pydantic import BaseModel, ConfigDict

from features.text import normalise_text

VECTORS_FILE = "vectors.bin"


class VectorParams(BaseModel):
    """The ``vectors:`` block of a feature kind using word vectors."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["glove", "word2vec", "pretrained"] = "glove"
    dim: int = 100
    window: int = 5
    min_count: int = 2
    epochs: int = 25
    seed: int = 0
    # glove
    x_max: float = 100.0
    alpha: float = 0.75
    learning_rate: float = 0.05
    batch_size: int = 8192
    # word2vec
    sg: bool = True
    negative: int = 5
    # pretrained
    path: str | None = None
    format: Literal["auto", "glove", "word2vec", "word2vec_binary"] = "auto"
    # training texts: dialogue turns of the sessions with training samples ("train") or of every
    # session ("all"); item titles are always used (the KB is not a label).
    texts: Literal["train", "all"] = "train"


# --- co-occurrence + GloVe --------------------------------------------------------------------------
def build_vocab(sentences: Sequence[Sequence[str]], min_count: int = 1) -> tuple[list[str], np.ndarray]:
    """Words with count >= min_count, by decreasing count then word; and their counts."""
    flat = pd.Series([t for s in sentences for t in s], dtype=object)
    if flat.empty:
        return [], np.zeros(0, np.int64)
    vc = flat.value_counts()
    vc = vc[vc >= min_count]
    df = pd.DataFrame({"w": vc.index.astype(str), "c": vc.to_numpy()}).sort_values(["c", "w"], ascending=[False, True])
    return df["w"].tolist(), df["c"].to_numpy(np.int64)


def cooccurrence(
    sentences: Sequence[Sequence[str]], vocab: Sequence[str], window: int = 5
) -> sp.csr_matrix:
    """Symmetric co-occurrence counts: each pair at distance ``d <= window`` adds ``1/d``.

    Vectorised: the sentences are concatenated into one id array (out-of-vocabulary tokens are
    dropped first, as GloVe does) and, for every offset ``d``, the pairs ``(ids[k], ids[k+d])``
    inside the same sentence are summed with a sparse COO -> CSR conversion.
    """
    index = {w: i for i, w in enumerate(vocab)}
    V = len(vocab)
    ids_l, sent_l = [], []
    for si, s in enumerate(sentences):
        ids = [index[t] for t in s if t in index]
        ids_l.extend(ids)
        sent_l.extend([si] * len(ids))
    ids = np.asarray(ids_l, dtype=np.int32)
    sent = np.asarray(sent_l, dtype=np.int64)
    X = sp.csr_matrix((V, V), dtype=np.float64)
    for d in range(1, window + 1):
        if len(ids) <= d:
            break
        same = sent[:-d] == sent[d:]
        a, b = ids[:-d][same], ids[d:][same]
        if not len(a):
            continue
        w = np.full(len(a), 1.0 / d)
        rows = np.concatenate([a, b])
        cols = np.concatenate([b, a])
        X = X + sp.coo_matrix((np.concatenate([w, w]), (rows, cols)), shape=(V, V)).tocsr()
    X.sum_duplicates()
    return X


def _scatter_rows(n: int, idx: np.ndarray, upd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum the rows of ``upd`` that share an index: (unique indices, summed rows)."""
    uniq, inv = np.unique(idx, return_inverse=True)
    S = sp.csr_matrix((np.ones(len(idx), dtype=upd.dtype), (inv, np.arange(len(idx)))), shape=(len(uniq), len(idx)))
    return uniq, np.asarray(S @ upd)


def glove_fit(
    X: sp.spmatrix,
    dim: int = 100,
    epochs: int = 25,
    x_max: float = 100.0,
    alpha: float = 0.75,
    learning_rate: float = 0.05,
    batch_size: int = 8192,
    seed: int = 0,
    callback=None,
) -> tuple[np.ndarray, list[float]]:
    """GloVe's weighted least squares on co-occurrence matrix ``X`` with AdaGrad.

    Returns the word vectors ``W + W~`` (float32, V x dim) and the mean loss of each epoch.
    Mini-batch AdaGrad: within a batch the gradients of entries sharing a word are summed (the
    vectorised counterpart of GloVe's asynchronous per-entry updates).
    """
    X = sp.coo_matrix(X)
    V = X.shape[0]
    rng = np.random.default_rng(seed)
    rows, cols, vals = X.row.astype(np.int64), X.col.astype(np.int64), X.data.astype(np.float64)
    logx = np.log(vals)
    fx = np.minimum(1.0, (vals / x_max) ** alpha)
    W = (rng.random((V, dim)) - 0.5) / dim
    C = (rng.random((V, dim)) - 0.5) / dim
    bw = np.zeros(V)
    bc = np.zeros(V)
    gW = np.ones((V, dim))
    gC = np.ones((V, dim))
    gbw = np.ones(V)
    gbc = np.ones(V)
    losses: list[float] = []
    n = len(vals)
    for ep in range(epochs):
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch_size):
            b = order[start : start + batch_size]
            i, j = rows[b], cols[b]
            wi, cj = W[i], C[j]
            diff = np.einsum("ij,ij->i", wi, cj) + bw[i] + bc[j] - logx[b]
            fdiff = fx[b] * diff
            total += float(0.5 * np.dot(fdiff, diff))
            grad_w = fdiff[:, None] * cj
            grad_c = fdiff[:, None] * wi
            ui, sw = _scatter_rows(V, i, grad_w)
            uj, sc = _scatter_rows(V, j, grad_c)
            W[ui] -= learning_rate * sw / np.sqrt(gW[ui])
            C[uj] -= learning_rate * sc / np.sqrt(gC[uj])
            gW[ui] += sw * sw
            gC[uj] += sc * sc
            bi = np.bincount(i, weights=fdiff, minlength=V)
            bj = np.bincount(j, weights=fdiff, minlength=V)
            bw -= learning_rate * bi / np.sqrt(gbw)
            bc -= learning_rate * bj / np.sqrt(gbc)
            gbw += bi * bi
            gbc += bj * bj
        losses.append(total / max(n, 1))
        if callback is not None:
            callback(ep, losses[-1])
    return (W + C).astype(np.float32), losses


def to_keyed_vectors(words: Sequence[str], vectors: np.ndarray) -> KeyedVectors:
    kv = KeyedVectors(vector_size=vectors.shape[1], count=0, dtype=np.float32)
    kv.add_vectors(list(words), np.asarray(vectors, dtype=np.float32))
    return kv


def train_glove(
    sentences: Sequence[Sequence[str]],
    dim: int = 100,
    window: int = 5,
    min_count: int = 1,
    epochs: int = 25,
    x_max: float = 100.0,
    alpha: float = 0.75,
    learning_rate: float = 0.05,
    batch_size: int = 8192,
    seed: int = 0,
) -> KeyedVectors:
    """GloVe vectors of the tokens of ``sentences`` (lists of tokens)."""
    vocab, _ = build_vocab(sentences, min_count)
    if not vocab:
        return to_keyed_vectors([], np.zeros((0, dim), np.float32))
    X = cooccurrence(sentences, vocab, window)
    vecs, _ = glove_fit(X, dim, epochs, x_max, alpha, learning_rate, batch_size, seed)
    return to_keyed_vectors(vocab, vecs)


def train_word2vec(
    sentences: Sequence[Sequence[str]],
    dim: int = 100,
    window: int = 5,
    min_count: int = 1,
    epochs: int = 5,
    sg: bool = True,
    negative: int = 5,
    seed: int = 0,
) -> KeyedVectors:
    """gensim Word2Vec with one worker (deterministic for a fixed seed and PYTHONHASHSEED-free)."""
    from gensim.models import Word2Vec

    sents = [list(s) for s in sentences if len(s)]
    model = Word2Vec(
        sentences=sents,
        vector_size=dim,
        window=window,
        min_count=min_count,
        epochs=epochs,
        sg=int(sg),
        negative=negative,
        seed=seed,
        workers=1,
        hashfxn=_stable_hash,
    )
    return model.wv


def _stable_hash(s: str) -> int:
    # gensim seeds each word's initial vector with hashfxn(word + str(seed)); Python's hash() is
    # salted per process, so use a stable one.
    import zlib

    return zlib.crc32(s.encode("utf-8"))


def load_pretrained(path: str | os.PathLike, format: str = "auto") -> KeyedVectors:
    """Pretrained vectors: GloVe text (no header line), word2vec text or word2vec binary.

    ``auto``: a ``.bin`` suffix means word2vec binary; otherwise a first line of two integers
    means word2vec text, anything else GloVe text.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"pretrained word vectors not found: {path}")
    fmt = format
    if fmt == "auto":
        if path.suffix == ".bin":
            fmt = "word2vec_binary"
        else:
            with open(path, encoding="utf-8", errors="replace") as f:
                first = f.readline().split()
            fmt = "word2vec" if len(first) == 2 and all(x.isdigit() for x in first) else "glove"
    if fmt == "word2vec_binary":
        return KeyedVectors.load_word2vec_format(str(path), binary=True)
    if fmt == "word2vec":
        return KeyedVectors.load_word2vec_format(str(path), binary=False)
    return KeyedVectors.load_word2vec_format(str(path), binary=False, no_header=True)


# --- training texts and the fitted resource ---------------------------------------------------------
def training_texts(corpus, texts: str = "train") -> pd.Series:
    """Dialogue texts (of the sessions with a training sample, or all) and item titles."""
    turns = corpus.turns
    if texts == "train":
        sess = corpus.samples.loc[corpus.samples["split"] == "train", "session_id"].unique()
        turns = turns[turns["session_id"].isin(sess)]
    return pd.concat([turns["text"], corpus.items["title"]], ignore_index=True).fillna("").astype(str)


def tokenised_sentences(texts: pd.Series, tokenizer) -> list[tuple[str, ...]]:
    toks = tokenizer.tokenize_series(texts)
    # A token with whitespace would break the word2vec file format.
    return [tuple(t for t in s if not any(c.isspace() for c in t)) for s in toks if len(s)]


def train_vectors(params: VectorParams, sentences: Sequence[Sequence[str]] | None) -> KeyedVectors:
    if params.method == "pretrained":
        if not params.path:
            raise ValueError("vectors.method 'pretrained' needs vectors.path")
        return load_pretrained(params.path, params.format)
    if params.method == "word2vec":
        return train_word2vec(
            sentences, params.dim, params.window, params.min_count, params.epochs, params.sg, params.negative, params.seed
        )
    return train_glove(
        sentences,
        params.dim,
        params.window,
        params.min_count,
        params.epochs,
        params.x_max,
        params.alpha,
        params.learning_rate,
        params.batch_size,
        params.seed,
    )


def save_vectors(kv: KeyedVectors, path: str | os.PathLike) -> None:
    kv.save_word2vec_format(str(path), binary=True)


@lru_cache(maxsize=8)
def _load_saved(path: str, mtime_ns: int) -> KeyedVectors:
    return KeyedVectors.load_word2vec_format(path, binary=True)


def load_saved(path: str | os.PathLike) -> KeyedVectors:
    """Vectors saved by :func:`save_vectors` (memoised per file and modification time)."""
    p = str(Path(path).resolve())
    return _load_saved(p, os.stat(p).st_mtime_ns)


def wordvec_resource(ctx, params: VectorParams, tokenizer) -> str:
    """Train (once) and save the word vectors; returns the file's path relative to ``ctx.artifacts``."""
    from features.context import stable_hash

    key = params.model_dump()
    if params.method == "pretrained":
        p = Path(params.path or "")
        key["file"] = [str(p.resolve()), p.stat().st_size if p.exists() else None, p.stat().st_mtime_ns if p.exists() else None]
    else:
        c = ctx.corpus
        key["lexicon"] = stable_hash(list(tokenizer.lexicon))
        key["corpus"] = [str(c.root) if c.root else None, len(c.turns), len(c.items), len(c.samples)]

    def build(tmp: Path) -> None:
        sentences = None
        if params.method != "pretrained":
            sentences = tokenised_sentences(training_texts(ctx.corpus, params.texts), tokenizer)
        kv = train_vectors(params, sentences)
        save_vectors(kv, tmp / VECTORS_FILE)

    rel = ctx.resource_dir("wordvec", key, build)
    return f"{rel}/{VECTORS_FILE}"


# --- phrase embedding ---------------------------------------------------------------------------------
def phrase_matrix(phrases: Iterable[str], kv: KeyedVectors, tokenizer) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm embeddings of phrases (mean of their in-vocabulary tokens' vectors).

    A phrase that is itself a key of ``kv`` uses that vector; otherwise its tokens' vectors are
    averaged, OOV tokens skipped. Returns (matrix n x dim, bool mask of phrases with a vector);
    rows without a vector are zero.
    """
    phrases = list(phrases)
    d = kv.vector_size
    M = np.zeros((len(phrases), d), dtype=np.float32)
    ok = np.zeros(len(phrases), dtype=bool)
    for r, ph in enumerate(phrases):
        ph = normalise_text(str(ph)).strip()
        if ph in kv.key_to_index:
            v = kv[ph]
        else:
            toks = [t for t in tokenizer.tokenize(ph) if t in kv.key_to_index]
            if not toks:
                continue
            v = kv[toks].mean(axis=0)
        nrm = float(np.linalg.norm(v))
        if nrm > 0:
            M[r] = v / nrm
            ok[r] = True
    return M, ok
