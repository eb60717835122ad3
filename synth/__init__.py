"""The corpus simulator: an E-ConvRec-like corpus in the documented format, with a known purchase model.

Public API (imported on first use, so ``import synth`` stays light and ``python -m synth.generate``
runs without a second copy of the module): ``generate_corpus``, ``default_corpus_dir``,
``load_truth``, ``main`` (``synth.generate``), ``truth_diagnostics`` (``synth.diagnostics``),
``GENERATOR_VERSION``, ``SCALES`` (``synth.model``), ``planted_table`` (``synth.planted``: feature
tables with a planted signal).
"""
import importlib

import core  # noqa: F401  (core.env: Keras 2 and quiet TF logging before anything imports TF)

_EXPORTS = {
    "generate_corpus": "synth.generate", "default_corpus_dir": "synth.generate", "load_truth": "synth.generate",
    "main": "synth.generate", "TRUTH_FILE": "synth.generate", "INFO_FILE": "synth.generate",
    "truth_diagnostics": "synth.diagnostics", "GENERATOR_VERSION": "synth.model", "SCALES": "synth.model",
    "planted_table": "synth.planted",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'synth' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
