"""The one place that prepares the process environment before TensorFlow is imported.

* Keras 2: tensorflow-recommenders only works with ``tf-keras``, and TensorFlow reads
  ``TF_USE_LEGACY_KERAS`` once, at its own first import.
* Quiet TensorFlow: its C++ log lines (``oneDNN custom operations``, ``failed call to cuInit`` on a
  machine without a GPU) read as failures to a user. ``ECONVREC_VERBOSE=1`` (or ``--verbose`` on
  the commands) keeps them. A user's own ``TF_CPP_MIN_LOG_LEVEL`` always wins.

``core/__init__`` imports this module, so importing anything of ours sets both first.
"""
import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"


def verbose() -> bool:
    return os.environ.get("ECONVREC_VERBOSE", "").strip() not in ("", "0", "false", "no")


if not verbose():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # absl's Python logger and the C++ logger of XLA / abseil write to stderr before TF_CPP_MIN_LOG_LEVEL
    # is consulted; these keep their startup lines quiet too.
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


CACHE_ENV = "ECONVREC_CACHE"


def cache_root() -> "Path":
    """Where corpora, feature caches and text embeddings are kept: ``$ECONVREC_CACHE`` when set
    and non-empty (an empty value would otherwise mean the current directory), else
    ``~/.cache/econvrec_rank``."""
    from pathlib import Path

    value = os.environ.get(CACHE_ENV, "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "econvrec_rank"
