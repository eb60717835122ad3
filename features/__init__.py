"""Feature specs, extractors and the feature space for conversational-recommendation ranking.

This package is imported first by every other package of the project (``rankers`` and
``pipelines`` import it in their ``__init__``), so it is the one place that selects Keras 2:
tensorflow-recommenders only works with ``tf-keras``, and TensorFlow reads this variable once,
at its own first import.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
