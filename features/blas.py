"""Small matrix products of feature extraction on the calling thread.

A scoring batch's products are small (glove_cosine: ~300 preference words x ~560 attribute values x
100 dims; the reaction detector: ~100 replies x its prototypes). On a busy 2-core host, OpenBLAS
handing half of one to its second thread made the caller wait for that thread's next time slice:
13-16 ms per product in the scoring process instead of 0.3 ms on one thread (measured). Each output
element is computed the same way on one thread, so the values do not change.
"""
from __future__ import annotations

_CONTROLLER = None


def one_blas_thread():
    """Context manager: BLAS calls inside it use one thread (threadpoolctl; cheap to enter)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")
