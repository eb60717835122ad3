"""Small matrix products of feature extraction on the calling thread.

A scoring batch's products are small (glove_cosine: ~300 preference words x ~560 attribute values x
100 dims; the reaction detector: ~100 replies x its prototypes). On a busy 2-core host, OpenBLAS
handing half of one to its second thread made the caller wait for that thread's next time slice:
13-16 ms per product in the scoring process instead of 0.3 ms on one thread (measured). Each output
element is computed the same way on one thread, so the values do not change.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

_LOCK = threading.Lock()
_STATE: dict = {"controller": None, "depth": 0, "limiter": None}


@contextmanager
def one_blas_thread():
    """BLAS calls inside use one thread (threadpoolctl; cheap to enter). The limit is the process's:
    the first of overlapping uses (other threads) sets it, the last one out restores the original."""
    with _LOCK:
        if _STATE["controller"] is None:
            from threadpoolctl import ThreadpoolController

            _STATE["controller"] = ThreadpoolController()
        if _STATE["depth"] == 0:
            _STATE["limiter"] = _STATE["controller"].limit(limits=1, user_api="blas")
        _STATE["depth"] += 1
    try:
        yield
    finally:
        with _LOCK:
            _STATE["depth"] -= 1
            if _STATE["depth"] == 0:
                _STATE["limiter"].restore_original_limits()
