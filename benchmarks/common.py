"""What every benchmark script shares: a plain-text table and an atomically written JSON result."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core.io import write_json  # noqa: E402


def format_table(rows: Sequence[dict], columns: Sequence[tuple[str, str, str]]) -> str:
    """``columns``: ``(header, key, format spec)``; a spec with ``<`` left-aligns, else right.
    Each column is as wide as its header or widest value."""
    cells = [[format(r[key], spec) for _, key, spec in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (h, _, _) in enumerate(columns)]

    def line(values):
        return " ".join(v.ljust(w) if "<" in spec else v.rjust(w)
                        for v, w, (_, _, spec) in zip(values, widths, columns)).rstrip()

    head = line([h for h, _, _ in columns])
    return "\n".join([head, "-" * len(head)] + [line(c) for c in cells])


def write_results(path: str | os.PathLike, result: Any) -> Path:
    """Write ``result`` as JSON to a temporary file beside ``path``, then rename it into place, so
    an interrupted benchmark never leaves a half-written result."""
    return write_json(path, result)


def training_step_ms(fn, variables, x, repeat: int):
    """Milliseconds per training step of ``fn`` (forward, then gradients with respect to ``x`` and
    ``variables``) as a compiled ``tf.function``, ``repeat`` times after one tracing call."""
    import numpy as np
    import tensorflow as tf

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(fn(x)))
        return tape.gradient(loss, [x] + list(variables))

    step(x)  # trace
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        step(x)
        times.append(time.perf_counter() - t0)
    return np.array(times) * 1e3


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; the platform string elsewhere): run times on these
    machines differ ~2x between CPU kinds, so every timed result says which it ran on."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
