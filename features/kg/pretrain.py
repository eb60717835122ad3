"""CKG pretraining of K-DCN (section III-A-2): a multi-layer GCN (eq. 1) whose output is the entity
table of TransE (eq. 2), trained jointly with the margin ranking loss (eq. 3).

* GCN, eq. 1: ``X(i+1) = sigma(D^-1/2 (A+I) D^-1/2 X(i) W(i))`` on the undirected entity graph of
  the triples (relation types ignored, as in the paper), self-loops added, sigmoid activation,
  ``X(1) = E`` the free entity embeddings. The degrees ``D`` are always the *full-graph* degrees.
* Mini-batches with sampled neighbours (GraphSAGE-style fixed fan-out, the paper samples 10 with
  Graph-learn): for a batch of triples only the involved entities (heads, tails, corrupted
  entities) and their sampled ``gcn_layers``-hop neighbourhood are computed, so memory depends on
  ``batch_size * neighbours ** gcn_layers``, not on the graph. An entity of degree <= ``neighbours``
  uses all its neighbours (exact); a larger one uses ``neighbours`` draws with replacement scaled
  by ``degree / neighbours`` (an unbiased estimate of its row of the normalised adjacency product).
  Sampling runs in numpy on a CSR adjacency, in a tf.data generator that overlaps the TF step.
* TransE, eq. 2: ``f(h, r, t) = ||h + r - t||_2`` with ``h``, ``t`` taken from the GCN output.
* Loss, eq. 3: ``[f(pos) + gamma - f(neg)]_+`` averaged over the batch (the paper sums; the mean
  only rescales the step), a negative per positive by replacing its head or tail (p = 1/2) with a
  random entity: by default half of the time one of the same type and half of the time any entity
  (``negatives="mixed"``; ``"uniform"``, the paper's wording, mostly teaches entity types,
  ``"typed"`` never does; figures in ``PretrainParams``).
* Optimiser: Adam. The paper's lr 1e-4 is for a 6-billion-triple graph trained for 5 epochs on 200
  GPUs; on corpus-sized graphs (10^5..10^6 triples) 1e-3 converges in a few epochs, so 1e-3 is the
  default. The entity table uses a *lazy* Adam (moments and values of only the rows a batch touched
  are updated, as TF's LazyAdam / sparse embedding optimisers do), so a step's cost does not grow
  with the number of entities; ``W`` and the relation vectors use Keras Adam.

Export: the final entity embeddings are the GCN output computed *exactly* on the full graph
(scipy sparse products), ``entity_embeddings.npy`` aligned to ``entities.json`` with rows 0
(pad) and 1 (oov) zero, ``relation_embeddings.npy``, ``entity_base.npy`` (``E``, the GCN input),
and ``entity_embeddings.w2v.txt`` in word2vec text format (gensim ``KeyedVectors.
load_word2vec_format``; whitespace in entity names becomes ``_``).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit
from pydantic import BaseModel, ConfigDict

import core  # noqa: F401  (TF_USE_LEGACY_KERAS before TensorFlow)
from features.kg.graph import CKG, GraphParams, build_ckg

ENTITY_FILE = "entity_embeddings.npy"
RELATION_FILE = "relation_embeddings.npy"
BASE_FILE = "entity_base.npy"
W2V_FILE = "entity_embeddings.w2v.txt"


class PretrainParams(BaseModel):
    """GCN + TransE pretraining parameters (part of the shared ``ckg`` parameter block)."""

    model_config = ConfigDict(extra="forbid")

    dim: int = 64  # node embedding size (paper: 64)
    gcn_layers: int = 2
    neighbours: int = 10  # sampled neighbours per entity and layer (paper: 10)
    epochs: int = 3
    max_steps: int | None = None  # stop early after this many steps (budget cap), None = all epochs
    batch_size: int = 1000  # triples per step (paper: 1000)
    lr: float = 1e-3
    margin: float = 1.0  # gamma of eq. 3
    activation: Literal["sigmoid", "tanh", "relu", "linear"] = "sigmoid"  # paper: sigmoid
    # corrupted entity: "uniform" over all entities (the paper's wording), "typed": an entity of the
    # same type as the one it replaces, or "mixed" (default): typed for a random half of the batch.
    # Uniform negatives are nearly always of another type, so TransE mostly learns entity types;
    # typed ones never teach the types. Default corpus, one epoch, raw rank of the true tail among
    # the entities of its type (uniform / typed / mixed): item -> category 4.5 / 3.4 / 3.1 of 10
    # (random 5.5), item -> value 153 / 79 / 87 of 646, item -> title keyword 143 / 79 / 87 of 814,
    # intention -> keyword 176 / 181 / 158 of 814; on the toy graph of tests/test_kg.py the mean
    # rank among ALL entities is 2.3 / 13.8 / 2.6 of 71.
    negatives: Literal["uniform", "typed", "mixed"] = "mixed"
    seed: int = 0


class CKGParams(GraphParams, PretrainParams):
    """Everything that defines a pretrained CKG: the ``ckg`` block of the KF feature kinds."""

    model_config = ConfigDict(extra="forbid")

    # also write entity_embeddings.w2v.txt (gensim-loadable; ~150 MB and ~13 s at full scale)
    export_w2v: bool = True


# -- adjacency ----------------------------------------------------------------------------------------
def undirected_edges(triples: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Distinct undirected entity pairs of the triples, both directions, no self-loops."""
    h = triples["head"].to_numpy(np.int64)
    t = triples["tail"].to_numpy(np.int64)
    keep = h != t
    src = np.concatenate([h[keep], t[keep]])
    dst = np.concatenate([t[keep], h[keep]])
    key = np.sort(src * (1 << 32) + dst)
    if len(key):
        key = key[np.concatenate([[True], key[1:] != key[:-1]])]
    return (key >> 32).astype(np.int64), (key & 0xFFFFFFFF).astype(np.int64)


@dataclass
class Adjacency:
    """CSR adjacency (no self-loops) and the degrees of A + I."""

    indptr: np.ndarray
    indices: np.ndarray
    n: int

    @classmethod
    def from_triples(cls, triples: pd.DataFrame, n: int) -> "Adjacency":
        src, dst = undirected_edges(triples)  # sorted by src then dst
        indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))]).astype(np.int64)
        return cls(indptr, dst.astype(np.int64), n)

    @property
    def degree(self) -> np.ndarray:
        """Number of neighbours (without the self-loop)."""
        return np.diff(self.indptr)

    @property
    def degree_hat(self) -> np.ndarray:
        """Diagonal of D-hat: degree in A + I."""
        return self.degree + 1

    def normalized(self) -> sp.csr_matrix:
        """D^-1/2 (A + I) D^-1/2 as a scipy CSR matrix."""
        a = sp.csr_matrix((np.ones(len(self.indices), np.float64), self.indices, self.indptr), shape=(self.n, self.n))
        a = a + sp.identity(self.n, format="csr")
        d = 1.0 / np.sqrt(self.degree_hat.astype(np.float64))
        return sp.csr_matrix(sp.diags(d) @ a @ sp.diags(d))


def normalized_adjacency(triples: pd.DataFrame, n: int) -> sp.csr_matrix:
    """Eq. 1's propagation matrix D^-1/2 (A+I) D^-1/2 of an n-entity graph."""
    return Adjacency.from_triples(triples, n).normalized()


# -- neighbour sampling -------------------------------------------------------------------------------
class NeighbourSampler:
    """Fixed fan-out neighbour sampling with normalisation weights from the full-graph degrees."""

    def __init__(self, adj: Adjacency, k: int, rng: np.random.Generator):
        self.adj, self.k, self.rng = adj, k, rng
        self.dhat = adj.degree_hat.astype(np.float64)
        self.deg = adj.degree

    def sample(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(neighbours (n, k), weights (n, k), self weights (n,)) for ``nodes``.

        ``sum_j w[i, j] * x[nbr[i, j]] + self_w[i] * x[i]`` is row ``i`` of ``Â_norm @ x``,
        exactly for entities of degree <= k and in expectation otherwise.
        """
        k = self.k
        deg = self.deg[nodes]
        start = self.adj.indptr[nodes]
        j = np.arange(k)
        small = deg <= k
        rand = np.floor(self.rng.random((len(nodes), k)) * np.maximum(deg, 1)[:, None]).astype(np.int64)
        offs = np.where(small[:, None], j[None, :], rand)
        valid = (j[None, :] < deg[:, None]) | ~small[:, None]
        valid &= deg[:, None] > 0
        pos = np.where(valid, start[:, None] + offs, 0)
        nbr = np.where(valid, self.adj.indices[np.minimum(pos, max(len(self.adj.indices) - 1, 0))] if len(self.adj.indices) else 0, 0)
        scale = np.where(small, 1.0, deg / k)
        w = valid * scale[:, None] / np.sqrt(self.dhat[nodes][:, None] * self.dhat[nbr])
        return nbr.astype(np.int64), w.astype(np.float32), (1.0 / self.dhat[nodes]).astype(np.float32)


def sample_computation_graph(sampler: NeighbourSampler, targets: np.ndarray, layers: int):
    """Node sets and aggregation indices for ``layers`` GCN hops around ``targets``.

    Returns ``(nodes, hops)``: ``nodes`` the entity ids whose input embedding is needed (deepest
    set) and ``hops`` ``[(n_prev, nbr_pos, nbr_w, self_w), ...]`` from the deepest hop to the
    targets. Node sets are nested with the previous set first (pandas factorize keeps first
    occurrences in order), so a node's self term is row ``i`` of the deeper set.
    """
    sets = [targets]
    hops = []
    for _ in range(layers):
        prev = sets[-1]
        nbr, w, sw = sampler.sample(prev)
        codes, uniq = pd.factorize(np.concatenate([prev, nbr.ravel()]))
        sets.append(np.asarray(uniq, np.int64))
        hops.append((len(prev), codes[len(prev):].reshape(nbr.shape).astype(np.int32), w, sw))
    return sets[-1], hops[::-1]


# -- model --------------------------------------------------------------------------------------------
def _act(name: str):
    import tensorflow as tf

    return {"sigmoid": tf.sigmoid, "tanh": tf.tanh, "relu": tf.nn.relu, "linear": tf.identity}[name]


def _np_act(name: str):
    return {
        "sigmoid": expit,
        "tanh": np.tanh,
        "relu": lambda x: np.maximum(x, 0.0),
        "linear": lambda x: x,
    }[name]


@dataclass
class PretrainResult:
    entity: np.ndarray  # (n_entities, dim) GCN output, rows 0/1 zero
    relation: np.ndarray  # (n_relations, dim)
    base: np.ndarray  # (n_entities, dim) E, the GCN input
    weights: list[np.ndarray]  # W(i)
    history: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


class GCNTransE:
    """The joint model: free entity table E, per-layer W(i), relation vectors; eqs. 1-3."""

    def __init__(self, n_entities: int, n_relations: int, p: PretrainParams):
        import tensorflow as tf

        self.p = p
        g = tf.random.Generator.from_seed(p.seed)
        d = p.dim
        self.E = tf.Variable(g.normal((n_entities, d), stddev=0.1), name="E")
        self.mE = tf.Variable(tf.zeros((n_entities, d)), trainable=False)
        self.vE = tf.Variable(tf.zeros((n_entities, d)), trainable=False)
        lim = math.sqrt(6.0 / (2 * d))
        self.W = [tf.Variable(g.uniform((d, d), -lim, lim), name=f"W{i}") for i in range(p.gcn_layers)]
        bound = 6.0 / math.sqrt(d)
        r = g.uniform((max(n_relations, 1), d), -bound, bound)
        self.R = tf.Variable(r / tf.norm(r, axis=1, keepdims=True), name="R")
        self.opt = tf.keras.optimizers.Adam(learning_rate=p.lr)
        self.t = tf.Variable(0.0, trainable=False)
        self.act = _act(p.activation)
        self._step = None

    def gcn(self, H, hops):
        """H: input embeddings of the deepest node set -> GCN output of the targets."""
        import tensorflow as tf

        for layer, (n_prev, nbr_pos, nbr_w, self_w) in enumerate(hops):
            agg = self_w[:, None] * H[:n_prev] + tf.reduce_sum(nbr_w[:, :, None] * tf.gather(H, nbr_pos), axis=1)
            H = self.act(tf.matmul(agg, self.W[layer]))
        return H

    def loss(self, H0, hops, pos, rel):
        import tensorflow as tf

        X = self.gcn(H0, hops)
        h, t, nh, nt = (tf.gather(X, pos[:, i]) for i in range(4))
        r = tf.gather(self.R, rel)
        f_pos = tf.sqrt(tf.reduce_sum(tf.square(h + r - t), axis=1) + 1e-12)
        f_neg = tf.sqrt(tf.reduce_sum(tf.square(nh + r - nt), axis=1) + 1e-12)
        return tf.reduce_mean(tf.nn.relu(f_pos + self.p.margin - f_neg))

    def build_step(self):
        import tensorflow as tf

        L, k = self.p.gcn_layers, self.p.neighbours
        b1, b2, eps, lr = 0.9, 0.999, 1e-7, self.p.lr
        sig = [tf.TensorSpec([None], tf.int64)]
        for _ in range(L):
            sig += [tf.TensorSpec([], tf.int32), tf.TensorSpec([None, k], tf.int32),
                    tf.TensorSpec([None, k], tf.float32), tf.TensorSpec([None], tf.float32)]
        sig += [tf.TensorSpec([None, 4], tf.int32), tf.TensorSpec([None], tf.int32)]

        @tf.function(input_signature=sig)
        def step(nodes, *rest):
            hops = [tuple(rest[4 * i: 4 * i + 4]) for i in range(L)]
            pos, rel = rest[4 * L], rest[4 * L + 1]
            H0 = tf.gather(self.E, nodes)
            dense_vars = self.W + [self.R]
            with tf.GradientTape() as tape:
                tape.watch(H0)
                loss = self.loss(H0, hops, pos, rel)
            grads = tape.gradient(loss, [H0] + dense_vars)
            self.opt.apply_gradients(zip(grads[1:], dense_vars))
            # lazy Adam on the rows of E this batch touched (nodes are unique)
            self.t.assign_add(1.0)
            g = grads[0]
            m = b1 * tf.gather(self.mE, nodes) + (1 - b1) * g
            v = b2 * tf.gather(self.vE, nodes) + (1 - b2) * tf.square(g)
            self.mE.scatter_update(tf.IndexedSlices(m, nodes))
            self.vE.scatter_update(tf.IndexedSlices(v, nodes))
            lr_t = lr * tf.sqrt(1 - tf.pow(b2, self.t)) / (1 - tf.pow(b1, self.t))
            self.E.scatter_sub(tf.IndexedSlices(lr_t * m / (tf.sqrt(v) + eps), nodes))
            return loss

        self._step = step
        return step

    # -- exact full-graph forward (export / evaluation) -------------------------------------------
    def full_output(self, a_norm: sp.csr_matrix) -> np.ndarray:
        act = _np_act(self.p.activation)
        X = self.E.numpy().astype(np.float32)
        for W in self.W:
            X = act(np.asarray(a_norm @ X, np.float32) @ W.numpy()).astype(np.float32)
        return X


class TypedSampler:
    """Uniform draws of an entity of the same type as given entities."""

    def __init__(self, types: np.ndarray):
        codes, _ = pd.factorize(types)
        self.codes = codes.astype(np.int64)
        self.members = np.argsort(self.codes, kind="stable").astype(np.int64)
        counts = np.bincount(self.codes)
        self.count = counts
        self.start = np.concatenate([[0], np.cumsum(counts)[:-1]])

    def draw(self, like: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        c = self.codes[like]
        return self.members[self.start[c] + np.floor(rng.random(len(like)) * self.count[c]).astype(np.int64)]


def _batches(triples: np.ndarray, n_entities: int, sampler: NeighbourSampler, p: PretrainParams,
             rng: np.random.Generator, epochs: int, typed: TypedSampler | None = None):
    """Yields the step inputs of every batch (numpy), epoch after epoch."""
    lo = 2 if n_entities > 2 else 0
    for _ in range(epochs):
        order = rng.permutation(len(triples))
        for s in range(0, len(order), p.batch_size):
            b = triples[order[s: s + p.batch_size]]
            h, r, t = b[:, 0].astype(np.int64), b[:, 1], b[:, 2].astype(np.int64)
            corrupt_head = rng.random(len(b)) < 0.5
            rnd = rng.integers(lo, n_entities, len(b))
            if typed is not None:
                same = typed.draw(np.where(corrupt_head, h, t), rng)
                rnd = same if p.negatives == "typed" else np.where(rng.random(len(b)) < 0.5, same, rnd)
            nh = np.where(corrupt_head, rnd, h)
            nt = np.where(corrupt_head, t, rnd)
            codes, targets = pd.factorize(np.concatenate([h, t, nh, nt]))
            targets = np.asarray(targets, np.int64)
            nodes, hops = sample_computation_graph(sampler, targets, p.gcn_layers)
            flat = [nodes]
            for n_prev, nbr_pos, w, sw in hops:
                flat += [np.int32(n_prev), nbr_pos, w, sw]
            flat += [codes.reshape(4, -1).T.astype(np.int32), r.astype(np.int32)]
            yield tuple(flat)


def pretrain(ckg: CKG, params: PretrainParams | dict | None = None, log=None) -> PretrainResult:
    """Jointly train GCN + TransE on ``ckg``; returns the exported (exact full-graph) embeddings."""
    import tensorflow as tf

    p = params if isinstance(params, PretrainParams) else PretrainParams(**(params or {}))
    n = ckg.num_entities
    t_adj = time.perf_counter()
    adj = Adjacency.from_triples(ckg.triples, n)
    adj_s = time.perf_counter() - t_adj
    rng = np.random.default_rng(p.seed)
    sampler = NeighbourSampler(adj, p.neighbours, rng)
    model = GCNTransE(n, len(ckg.relations), p)
    step = model.build_step()
    tri = ckg.triples[["head", "relation", "tail"]].to_numpy(np.int64)

    L, k = p.gcn_layers, p.neighbours
    sig = [tf.TensorSpec([None], tf.int64)]
    for _ in range(L):
        sig += [tf.TensorSpec([], tf.int32), tf.TensorSpec([None, k], tf.int32),
                tf.TensorSpec([None, k], tf.float32), tf.TensorSpec([None], tf.float32)]
    sig += [tf.TensorSpec([None, 4], tf.int32), tf.TensorSpec([None], tf.int32)]
    typed = TypedSampler(ckg.entity_types()) if p.negatives != "uniform" else None
    ds = tf.data.Dataset.from_generator(lambda: _batches(tri, n, sampler, p, rng, p.epochs, typed),
                                        output_signature=tuple(sig))
    from core.tfdata import without_autotuning

    ds = without_autotuning(ds.prefetch(4))

    steps_per_epoch = max(1, math.ceil(len(tri) / p.batch_size))
    total = steps_per_epoch * p.epochs if p.max_steps is None else min(p.max_steps, steps_per_epoch * p.epochs)
    history: list[dict] = []
    t0 = time.perf_counter()
    losses: list[float] = []
    all_losses: list[float] = []
    seen = 0
    nodes_sum = 0
    warm = min(10, total // 5)  # steady-state throughput excludes tracing / pipeline warm-up
    t_warm, seen_warm = t0, 0
    for i, batch in enumerate(ds):
        if i >= total:
            break
        if i == warm:
            t_warm, seen_warm = time.perf_counter(), seen
        losses.append(float(step(*batch)))
        all_losses.append(losses[-1])
        seen += int(batch[-1].shape[0])
        nodes_sum += int(batch[0].shape[0])
        if (i + 1) % steps_per_epoch == 0 or i + 1 == total:
            epoch = len(history) + 1
            history.append({"epoch": epoch, "steps": i + 1, "loss": float(np.mean(losses)),
                            "seconds": round(time.perf_counter() - t0, 3)})
            if log:
                log(f"ckg pretrain epoch {epoch}: loss {history[-1]['loss']:.4f} ({history[-1]['seconds']:.1f}s)")
            losses = []
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    X = model.full_output(adj.normalized())
    X[:2] = 0.0
    base = model.E.numpy().astype(np.float32)
    base[:2] = 0.0
    stats = {
        "entities": n, "triples": int(len(tri)), "steps": len(history) and history[-1]["steps"],
        "adjacency_seconds": round(adj_s, 3), "undirected_edges": int(len(adj.indices) // 2),
        "train_seconds": round(train_s, 3), "export_seconds": round(time.perf_counter() - t1, 3),
        "triples_per_second": round(seen / max(train_s, 1e-9), 1),
        "steady_triples_per_second": round((seen - seen_warm) / max(t0 + train_s - t_warm, 1e-9), 1),
        "loss_first_20_steps": round(float(np.mean(all_losses[:20])), 4) if all_losses else None,
        "loss_last_20_steps": round(float(np.mean(all_losses[-20:])), 4) if all_losses else None,
        "mean_sampled_nodes_per_step": round(nodes_sum / max(1, len(history) and history[-1]["steps"]), 1),
    }
    return PretrainResult(X, model.R.numpy(), base, [w.numpy() for w in model.W], history, stats)


# -- export / load ------------------------------------------------------------------------------------
def w2v_key(entity: str) -> str:
    return "_".join(entity.split()) or "_"


def w2v_keys(entities: list[str]) -> list[str]:
    """word2vec keys of the entities: whitespace -> ``_``; a key that collides after that gets
    ``#<entity id>`` appended, so keys stay unique."""
    keys = [w2v_key(e) for e in entities]
    seen: dict[str, int] = {}
    for k in keys:
        seen[k] = seen.get(k, 0) + 1
    return [k if seen[k] == 1 else f"{k}#{i}" for i, k in enumerate(keys)]


def save_embeddings(out_dir: str | Path, ckg: CKG, res: PretrainResult, w2v: bool = True) -> None:
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / ENTITY_FILE, res.entity.astype(np.float32))
    np.save(d / RELATION_FILE, res.relation.astype(np.float32))
    np.save(d / BASE_FILE, res.base.astype(np.float32))
    if w2v:
        keys = w2v_keys(ckg.entities)
        with open(d / W2V_FILE, "w", encoding="utf-8") as f:
            f.write(f"{len(ckg.entities) - 2} {res.entity.shape[1]}\n")
            for key, row in zip(keys[2:], res.entity[2:]):
                f.write(key + " " + " ".join(f"{x:.6g}" for x in row) + "\n")
    (d / "pretrain.json").write_text(json.dumps({"history": res.history, "stats": res.stats}, indent=1))


def load_entity_embeddings(ckg_dir: str | Path) -> np.ndarray:
    """``(n_entities, dim)`` float32, aligned to ``entities.json`` (rows 0/1 zero)."""
    return np.load(Path(ckg_dir) / ENTITY_FILE).astype(np.float32)


def build_and_pretrain(corpus, out_dir: str | Path, params: CKGParams | dict | None = None,
                       tokenizer=None, log=None) -> CKG:
    """Build the CKG of ``corpus``, pretrain it and write graph + embeddings into ``out_dir``.

    The one call the feature pipeline needs (``ctx.resource_dir("ckg", params, build)`` wraps it).
    """
    p = params if isinstance(params, CKGParams) else CKGParams(**(params or {}))
    gp = GraphParams(**{k: getattr(p, k) for k in GraphParams.model_fields})
    pp = PretrainParams(**{k: getattr(p, k) for k in PretrainParams.model_fields})
    g = build_ckg(corpus, gp, tokenizer)
    if log:
        st = g.stats()
        log(f"ckg: {st['entities']:,} entities, {st['triples']:,} triples ({g.meta['build_seconds']:.1f}s)")
    res = pretrain(g, pp, log=log)
    g.meta["pretrain"] = res.stats
    g.save(out_dir)
    save_embeddings(out_dir, g, res, w2v=p.export_w2v)
    return g


# -- evaluation helper --------------------------------------------------------------------------------
def tail_ranks(entity: np.ndarray, relation: np.ndarray, triples: np.ndarray, candidates: np.ndarray | None = None) -> np.ndarray:
    """Raw rank (1 = best) of each true tail among ``candidates`` (default: all real entities) by
    TransE score ``||h + r - t||``."""
    cand = np.arange(2, len(entity)) if candidates is None else np.asarray(candidates)
    q = entity[triples[:, 0]] + relation[triples[:, 1]]
    dist = np.linalg.norm(q[:, None, :] - entity[cand][None, :, :], axis=2)
    true = np.linalg.norm(q - entity[triples[:, 2]], axis=1)
    return 1 + (dist < true[:, None] - 1e-9).sum(axis=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m features.kg.pretrain", description="pretrain a saved CKG")
    ap.add_argument("dir", help="a CKG directory written by features.kg.graph (embeddings are written next to it)")
    ap.add_argument("--epochs", type=int, default=PretrainParams().epochs)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=PretrainParams().batch_size)
    args = ap.parse_args(argv)
    g = CKG.load(args.dir)
    res = pretrain(g, PretrainParams(epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size), log=print)
    save_embeddings(args.dir, g, res)
    print(json.dumps(res.stats, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
