"""Pluggable CTR rankers over one feature space (see ``rankers.registry``)."""
import features  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
