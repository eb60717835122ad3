"""Logistic regression (K-DCN baseline LR): the first-order term over every feature, in Keras."""
from __future__ import annotations

from rankers.base import KerasRanker
from rankers.registry import register


@register("lr")
class LRRanker(KerasRanker):
    """``logit = w0 + sum_i w[cat_i] + <w, dense> + sum_s mean(w[seq_s])`` (``rankers.layers.Linear``).

    DNN hparams (``dnn_*``, ``embedding_dim``) are accepted for a uniform vocabulary but unused.
    """

    def build_logit(self, x):
        return self.linear_logit(x)  # (B, 1)
