"""Wide & Deep (Cheng et al. 2016; K-DCN baseline WDN)."""
from __future__ import annotations

from rankers.base import KerasRanker
from rankers.registry import register


@register("wide_deep")
class WideDeepRanker(KerasRanker):
    """``logit = linear(x) + Dense(1)(MLP(f))``.

    The wide part is the first-order term over all raw features (``rankers.layers.Linear``);
    hand-made cross-product transformations are not generated (add them as categorical fields of
    the feature space if wanted).
    """

    def build_logit(self, x):
        wide = self.linear_logit(x)  # (B, 1)
        deep = self.logit_layer("deep_logit")(self.mlp()(self.representation(x)))  # (B, 1)
        return wide + deep
