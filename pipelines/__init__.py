"""Corpus loading and generation, the main experiment, batch scoring and reports."""
import features  # noqa: F401  (selects Keras 2 before TensorFlow is imported)
