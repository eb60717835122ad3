"""Deep & Cross Network (Wang et al. 2017; K-DCN eqs 10-12) with ``tfrs.layers.dcn.Cross``.

For K-DCN: subclass :class:`DCNRanker` and override ``extra_representations(x)`` to append the
user-state and dialogue-interaction vectors to ``f`` (eq. 9) — the cross/deep tower and the logit
stay as they are; or compose ``rankers.layers.CrossDeep`` / ``cross_and_deep`` directly.
"""
from __future__ import annotations

from typing import Annotated, Optional

from pydantic import Field

from rankers.base import KerasRanker
from rankers.hparams import KerasHyperparameters, PositiveInt
from rankers.layers import CrossDeep
from rankers.registry import register


class DCNHyperparameters(KerasHyperparameters):
    n_cross: Annotated[int, Field(ge=0)]  # 0: deep network only
    cross_projection_dim: Optional[PositiveInt]  # None: full-rank DCN-V2 matrix; int: low-rank


@register("dcn")
class DCNRanker(KerasRanker):
    """``f = [field embeddings, dense, extras]``; ``logit = Dense(1)([cross^n_cross(f), MLP(f)])``.

    Hparams (``configs/models/dcn.yaml``): ``n_cross``, ``cross_projection_dim`` (``null`` =
    full-rank DCN-V2 matrix, an int = low-rank), ``dnn_hidden_units``.
    """

    # dcn.yaml sets jit_compile: XLA fuses the cross layers' x0 * (W x + b) + x element-wise work
    # (measured 1.10x training throughput, benchmarks/results/rankers.json).
    Hyperparameters = DCNHyperparameters

    def tower(self) -> CrossDeep:
        hp = self.hparams
        return CrossDeep(int(hp["n_cross"]), hp["dnn_hidden_units"], projection_dim=hp["cross_projection_dim"],
                         dropout=float(hp["dnn_dropout"]), batch_norm=bool(hp["dnn_batch_norm"]),
                         l2=float(hp["l2_dnn"]), precision=hp["dnn_precision"], name="cross_deep")

    def build_logit(self, x):
        f = self.representation(x)  # (B, d), eq. 9
        return self.logit_layer()(self.tower()(f))  # eqs. 10-12 -> (B, 1)
