"""Feature specs, extractors, text, embeddings and the conversation knowledge graph.

Builds on ``core`` only (never on ``rankers`` or ``pipelines``).
"""
import core  # noqa: F401  (Keras 2 and quiet TensorFlow logging, before TensorFlow is imported)
