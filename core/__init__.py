"""The ground floor: corpus contract and loader, feature space and table, IO, metrics, environment.

Imports nothing else of ours. Importing it (or any of its modules) first prepares the environment
for TensorFlow (``core.env``): every other package imports ``core`` before TensorFlow.
"""
from core import env  # noqa: F401  (Keras 2 and quiet TensorFlow logging, before TensorFlow is imported)
