"""The application: the main experiment, batch scoring, serving, corpus statistics and reports."""
import core  # noqa: F401  (Keras 2 and quiet TensorFlow logging, before TensorFlow is imported)
