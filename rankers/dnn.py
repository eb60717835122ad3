"""DNN (K-DCN baseline; Covington et al. 2016 style): MLP over [field embeddings, dense]."""
from __future__ import annotations

from rankers.base import KerasRanker
from rankers.registry import register


@register("dnn")
class DNNRanker(KerasRanker):
    """``logit = Dense(1)(MLP(f))`` with ``f = representation(x)`` (flattened field vectors, dense)."""

    def build_logit(self, x):
        f = self.representation(x)  # (B, d)
        return self.logit_layer()(self.mlp()(f))  # (B, 1)
