"""The one place that prepares the process environment before TensorFlow is imported.

* Keras 2: tensorflow-recommenders only works with ``tf-keras``, and TensorFlow reads
  ``TF_USE_LEGACY_KERAS`` once, at its own first import.
* Quiet TensorFlow: its C++ log lines (``oneDNN custom operations``, ``failed call to cuInit`` on a
  machine without a GPU) read as failures to a user. ``ECONVREC_VERBOSE=1`` (or ``--verbose`` on
  the commands) keeps them. A user's own ``TF_CPP_MIN_LOG_LEVEL`` always wins.

* TensorFlow's CPU tensors come from its BFC pool allocator (``TF_CPU_ALLOCATOR_USE_BFC``) instead
  of malloc: training allocates and frees tensors of tens of MB every step, and after the cold
  feature stage glibc handed them back to the kernel and page-faulted them in again (290 million
  minor faults and 1,093 s of system time in one cold default run, FGCNN epochs 2x slower). A
  user's own setting wins.

``core/__init__`` imports this module, so importing anything of ours sets all of these first.
"""
import functools
import importlib.abc
import importlib.util
import os
import sys
import tempfile

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")


def verbose() -> bool:
    return os.environ.get("ECONVREC_VERBOSE", "").strip() not in ("", "0", "false", "no")


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Silences the C++ lines TensorFlow prints while its shared libraries load.

    Those lines (``oneDNN custom operations are on``, ``Could not find cuda drivers``) are written by
    abseil before its logging is initialised, so ``TF_CPP_MIN_LOG_LEVEL`` cannot stop them. During the
    first ``import tensorflow`` only, file descriptor 2 points at a temporary file; if the import
    fails, what was written there is replayed to the real stderr, so real errors are never hidden.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once: later imports are cached anyway
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def quiet_exec(module):
            sys.stderr.flush()
            saved = os.dup(2)
            with tempfile.TemporaryFile() as sink:
                os.dup2(sink.fileno(), 2)
                try:
                    exec_module(module)
                except BaseException:
                    os.dup2(saved, 2)
                    sink.seek(0)
                    sys.stderr.write(sink.read().decode("utf-8", "replace"))
                    raise
                finally:
                    os.dup2(saved, 2)
                    os.close(saved)
            module.get_logger().setLevel("ERROR")  # AutoGraph / retracing warnings: Python logging

        spec.loader.exec_module = quiet_exec
        return spec


if not verbose():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX-BF16, Linux's flags):
    there TensorFlow's (oneDNN's) bfloat16 matmuls run ~2-4x its float32 ones; elsewhere they are
    emulated and slower than float32. Read once per process (rankers resolve ``dnn_precision: auto`` by it)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


CACHE_ENV = "ECONVREC_CACHE"


def cache_root() -> "Path":
    """Where corpora, feature caches and text embeddings are kept: ``$ECONVREC_CACHE`` when set
    and non-empty (an empty value would otherwise mean the current directory), else
    ``~/.cache/econvrec_rank``."""
    from pathlib import Path

    value = os.environ.get(CACHE_ENV, "").strip()
    return Path(value).expanduser() if value else Path.home() / ".cache" / "econvrec_rank"


def shared_cache() -> "Path":
    """The extractors' cross-run cache (sentence embeddings keyed by encoder and text): one for every
    run on this machine and for the scorer of any run, so a text is encoded once per machine."""
    return cache_root() / "cache"
