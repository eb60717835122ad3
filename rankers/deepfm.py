"""DeepFM (Guo et al. 2017; E-ConvRec Table 8): FM and DNN sharing one embedding."""
from __future__ import annotations

from rankers.base import KerasRanker
from rankers.layers import FM
from rankers.registry import register


@register("deepfm")
class DeepFMRanker(KerasRanker):
    """``logit = linear(x) + FM(V) + Dense(1)(MLP([flatten(V), dense]))``.

    ``V (B, F, k)``: one vector per categorical field and per mean-pooled sequence field, shared by
    the FM and the DNN. Dense features enter the first-order term and the DNN (they have no
    embedding, so no FM interactions — as in DeepCTR). Without any field vector the FM term is
    dropped and the model is linear + DNN.
    """

    # configs/models/deepfm.yaml sets jit_compile: XLA fuses the embedding / FM / first-order
    # element-wise work around the MLP's matmuls: measured 1.20x the training throughput of the
    # unfused graph (benchmarks/results/rankers.json).

    def build_logit(self, x):
        v = self.field_vectors(x)  # (B, F, k) or None
        logit = self.linear_logit(x)  # (B, 1)
        if v is not None:
            logit = logit + FM(name="fm")(v)  # (B, 1)
        deep = self.mlp()(self.representation(x, fields=v))  # (B, units[-1])
        return logit + self.logit_layer("deep_logit")(deep)
