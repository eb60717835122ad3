"""K-DCN (knowledge-enhanced deep cross network), section III-B of the K-DCN paper, eqs. 4-13.

K-DCN is DCN (``rankers.dcn``: the shared cross + deep tower, training loop, save/load) whose
feature vector gets two extra representations built from the pretrained CKG entity table
(``FeatureSpace.pretrained["ckg_entity"]``, from ``features.kg``)::

    f = [c_1 .. c_k (categorical embeddings), x_dense, u, d]                           (eq. 9)

* user state ``u`` (eqs. 4-5): per behaviour type ``i`` (the ``user_state__<type>`` sequence
  fields) the masked average of its items' entity embeddings ``b_i`` (eq. 4); the ``k`` vectors
  are stacked into ``B`` (k x d) and convolved with kernels of height ``N`` in
  ``user_state_kernel_heights`` (paper: 2 and 4) spanning the whole embedding width
  (``N x d``), ``user_state_filters`` maps each, ReLU; all outputs flattened and concatenated
  (eq. 5). Fewer than ``N`` behaviour rows are zero-padded to ``N``. The average skips padding
  only: unknown items (OOV id 1, a zero row when pretrained) count, and a type without
  behaviours gives a zero vector.
* dialogue interaction ``d`` (eqs. 6-8): the query keyword embeddings (``..__query``) and the
  candidate-title keyword embeddings (``..__title``) are concatenated into ``W`` ((m+n) x d) and
  fed through multi-head self-attention (``attention_heads`` = 4, key size ``d / heads``, padding
  masked on both sides; eqs. 6-7), padded positions are zeroed and the updated vectors flattened
  into ``d`` (eq. 8; ``dialogue_pooling: mean`` averages them instead).
* ``f`` -> ``n_cross`` (4) ``tfrs`` Cross layers in parallel with the deep network
  (``dnn_hidden_units`` [512, 512]) -> concat -> Dense(1) -> sigmoid, trained with
  log loss (eqs. 10-13), all from DCN.

Entity table: ONE shared table for the ``kg_vocab`` vocabulary (all KF fields). It starts from the
pretrained CKG embeddings when the space carries them; ``freeze_pretrained: true`` keeps them fixed,
``false`` fine-tunes them. Without a pretrained matrix the table is random (``kg_dim`` wide):
"DCN + KF features without pretraining", the ablation.

Which sequence fields play which role: by default every sequence field of ``kg_vocab`` whose name
ends in ``__query`` is a query field, ``__title`` a title field, and every other one a behaviour
type of the user state (the outputs of the ``user_state`` / ``dialogue_keywords`` feature kinds);
``user_state_fields`` / ``query_fields`` / ``title_fields`` name them explicitly. Sequence fields
of other vocabularies keep DCN's default mean-pooled treatment.
"""
from __future__ import annotations

from typing import Any, Literal, Optional

import numpy as np
import tensorflow as tf

from core.space import FeatureSpace, Field
from rankers import inputs as rin
from rankers import layers as L
from rankers.dcn import DCNHyperparameters, DCNRanker
from rankers.layers import DialogueSelfAttention, UserStateCNN
from rankers.hparams import PositiveInt
from rankers.registry import register


class KDCNHyperparameters(DCNHyperparameters):
    kg_vocab: str  # the vocabulary of the CKG entity table
    freeze_pretrained: bool  # keep the pretrained CKG entity embeddings fixed
    kg_dim: PositiveInt  # entity embedding width when the space has no pretrained matrix (ablation)
    user_state_fields: Optional[list[str]]  # None = auto (see module docstring)
    query_fields: Optional[list[str]]
    title_fields: Optional[list[str]]
    user_state_kernel_heights: list[PositiveInt]
    user_state_filters: PositiveInt
    attention_heads: PositiveInt
    dialogue_pooling: Literal["flatten", "mean"]


@register("kdcn")
class KDCNRanker(DCNRanker):
    """DCN + user-state CNN (eqs. 4-5) + dialogue self-attention (eqs. 6-8) over CKG entity embeddings."""

    Hyperparameters = KDCNHyperparameters

    def __init__(self, space: FeatureSpace, **hparams: Any):
        super().__init__(space, **hparams)
        self.roles = self._roles()

    # -- which KF field is what ------------------------------------------------------------------
    def _roles(self) -> dict[str, list[Field]]:
        hp = self.hparams
        vocab = hp["kg_vocab"]
        by_name = {f.name: f for f in self.space.sequence}
        kg = [f for f in self.space.sequence if (f.vocab or f.name) == vocab]

        def pick(key: str, auto) -> list[Field]:
            names = hp[key]
            if names is None:
                return [f for f in kg if auto(f.name)]
            missing = [n for n in names if n not in by_name]
            if missing:
                raise ValueError(f"kdcn: {key} names unknown sequence field(s) {missing}; sequence fields: {sorted(by_name)}")
            return [by_name[n] for n in names]

        query = pick("query_fields", lambda n: n.endswith("__query"))
        title = pick("title_fields", lambda n: n.endswith("__title"))
        taken = {f.name for f in query + title}
        state = pick("user_state_fields", lambda n: n not in taken)
        dup = {f.name for f in state} & taken
        if dup:
            raise ValueError(f"kdcn: field(s) {sorted(dup)} named both as user-state and dialogue fields")
        return {"user_state": state, "query": query, "title": title}

    def pooled_sequence_fields(self) -> list[Field]:
        used = {f.name for fs in self.roles.values() for f in fs}
        return [f for f in self.space.sequence if f.name not in used]

    # -- the shared entity table ------------------------------------------------------------------
    def sequence_embedding(self, vocab: str) -> L.VocabEmbedding:
        hp = self.hparams
        if vocab == hp["kg_vocab"] and vocab not in self._seq_tables:
            size = self.space.shared_vocab_sizes()[vocab]
            pre = self.space.pretrained.get(vocab)
            dim = int(np.asarray(pre).shape[1]) if pre is not None else int(hp["kg_dim"])
            table = L.VocabEmbedding(size, dim, pretrained=pre, l2=float(hp["l2_embedding"]),
                                     initializer=self._init(), name=f"vocab_{rin._safe(vocab)}")
            table.trainable = not bool(hp["freeze_pretrained"]) if pre is not None else True
            self._seq_tables[vocab] = table
        return super().sequence_embedding(vocab)

    # -- eqs. 4-8 --------------------------------------------------------------------------------
    def user_state(self, x: dict[str, tf.Tensor]) -> tf.Tensor | None:
        fields = self.roles["user_state"]
        if not fields:
            return None
        table = self.sequence_embedding(self.hparams["kg_vocab"])
        pool = L.SequencePooling("mean", name="user_state_mean")
        rows = []
        for f in fields:
            ids = x[rin.seq_key(f.name)]
            rows.append(pool([table(ids), ids]))  # b_i (B, d), eq. 4
        B = tf.stack(rows, axis=1)  # (B, k, d)
        return UserStateCNN(self.hparams["user_state_kernel_heights"], int(self.hparams["user_state_filters"]),
                            l2=float(self.hparams["l2_dnn"]), name="user_state_cnn")(B)  # u, eq. 5

    def dialogue_interaction(self, x: dict[str, tf.Tensor]) -> tf.Tensor | None:
        fields = self.roles["query"] + self.roles["title"]
        if not fields:
            return None
        table = self.sequence_embedding(self.hparams["kg_vocab"])
        ids = tf.concat([x[rin.seq_key(f.name)] for f in fields], axis=1)  # (B, m+n)
        W = table(ids)  # (B, m+n, d)
        return DialogueSelfAttention(int(self.hparams["attention_heads"]), self.hparams["dialogue_pooling"],
                                     name="dialogue_attention")([W, ids])  # d, eq. 8

    def extra_representations(self, x: dict[str, tf.Tensor]) -> list[tf.Tensor]:
        return [t for t in (self.user_state(x), self.dialogue_interaction(x)) if t is not None]
