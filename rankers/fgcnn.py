"""FGCNN (Liu et al. 2019; E-ConvRec Table 8): CNN feature generation + IPNN deep classifier."""
from __future__ import annotations

import tensorflow as tf
from pydantic import model_validator

from rankers.base import KerasRanker
from rankers.hparams import KerasHyperparameters, PositiveInt
from rankers.layers import FGCNNBlock, InnerProduct
from rankers.registry import register


class FGCNNHyperparameters(KerasHyperparameters):
    """One entry per convolution layer in each list (empty lists: no feature generation)."""

    conv_filters: list[PositiveInt]
    conv_kernel_width: list[PositiveInt]
    new_maps: list[PositiveInt]
    pooling_width: list[PositiveInt]

    @model_validator(mode="after")
    def _same_lengths(self):
        lengths = {k: len(getattr(self, k)) for k in ("conv_filters", "conv_kernel_width", "new_maps", "pooling_width")}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"conv_filters, conv_kernel_width, new_maps and pooling_width need equal lengths, got {lengths}")
        return self


@register("fgcnn")
class FGCNNRanker(KerasRanker):
    """Feature generation on its own embedding ``E_fg`` (as in the paper: not shared with the
    classifier) produces new field vectors ``N``; the classifier embeds the raw fields ``E`` and
    feeds ``[flatten([E, N]), inner products of all pairs in [E, N], dense]`` to an MLP (IPNN).
    A first-order linear term is added to the logit (as DeepCTR's FGCNN does).

    With fewer than 2 field vectors no inner products exist and the model degrades to a DNN.
    Pooling uses ``'same'`` padding, so any number of fields works with any number of layers.
    """

    Hyperparameters = FGCNNHyperparameters

    def build_logit(self, x):
        hp = self.hparams
        e = self.field_vectors(x, name="embedding")  # (B, F, k)
        logit = self.linear_logit(x)  # (B, 1)
        if e is not None and hp["conv_filters"]:
            e_fg = self.field_vectors(x, name="fg_embedding")  # (B, F, k), separate table
            new = FGCNNBlock(hp["conv_filters"], hp["conv_kernel_width"], hp["new_maps"], hp["pooling_width"],
                             l2=float(hp["l2_dnn"]), precision=hp["dnn_precision"], name="fgcnn")(e_fg)  # (B, F_new, k)
            e = tf.concat([e, new], axis=1)  # (B, F + F_new, k)
        f = self.representation(x, fields=e)
        if e is not None and e.shape[1] >= 2:
            f = tf.concat([f, InnerProduct(name="inner_product")(e)], axis=1)
        return logit + self.logit_layer("deep_logit")(self.mlp()(f))
