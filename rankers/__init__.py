"""Pluggable CTR rankers over one feature space (see ``rankers.registry``).

Builds on ``core`` only (never on ``features`` or ``pipelines``).
"""
import core  # noqa: F401  (Keras 2 and quiet TensorFlow logging, before TensorFlow is imported)
