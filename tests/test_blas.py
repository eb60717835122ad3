"""features.blas: one BLAS thread inside, the process's setting restored after, also when threads overlap."""
import threading

import numpy as np
from threadpoolctl import threadpool_info

from features.blas import one_blas_thread


def blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_one_blas_thread_limits_and_restores_under_overlap():
    before = blas_threads()
    with one_blas_thread():
        assert set(blas_threads()) <= {1}
        with one_blas_thread():
            assert set(blas_threads()) <= {1}
    assert blas_threads() == before

    def work():
        for _ in range(100):
            with one_blas_thread():
                np.ones((40, 40)) @ np.ones((40, 40))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert blas_threads() == before
