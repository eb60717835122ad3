"""``kind: python``: a user-defined feature without changing the framework.

    - name: title_length
      group: USER
      kind: python
      function: "my_features:title_length"   # module:callable, importable from the working dir
      outputs: {"": numeric}                 # optional; default one numeric column
      args: {min_len: 5}                      # optional keyword arguments

The callable receives ``(rows, ctx, **args)`` and returns a Series (one output) or a DataFrame
whose columns are the output keys. This is the only way user code enters a feature pipeline.
"""
from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import Field, field_validator

from features.registry import KindParams, OutputColumn, OutputKind, register


class PythonParams(KindParams):
    function: str
    outputs: dict[str, OutputKind] = Field(default_factory=lambda: {"": "numeric"})
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("function")
    @classmethod
    def _module_colon_callable(cls, v: str) -> str:
        if v.count(":") != 1 or not all(v.split(":")):
            raise ValueError("must look like 'package.module:callable'")
        return v


def resolve_function(spec: str):
    module_name, attr = spec.split(":")
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # user modules next to the config, like `python -m`
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"kind python: cannot import module '{module_name}' for function '{spec}': {e}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ValueError(f"kind python: '{spec}' is not a callable in module '{module_name}'")
    return fn


def code_version(p: PythonParams) -> str:
    """Source of the user's function: part of the cache key, so editing it recomputes the feature."""
    try:
        return inspect.getsource(resolve_function(p.function))
    except (OSError, TypeError):
        return p.function


@register(
    "python",
    params=PythonParams,
    outputs=lambda p, s: [OutputColumn(k, kind) for k, kind in p.outputs.items()],
)
def python_feature(rows: pd.DataFrame, ctx, p: PythonParams, state: dict) -> pd.DataFrame:
    """A user-defined feature: calls function(rows, ctx, **args) from an importable module."""
    out = resolve_function(p.function)(rows, ctx, **p.args)
    if isinstance(out, pd.Series):
        if len(p.outputs) != 1:
            raise ValueError(f"kind python: '{p.function}' returned one Series but declares outputs {list(p.outputs)}")
        out = out.to_frame(next(iter(p.outputs)))
    if not isinstance(out, pd.DataFrame) or len(out) != len(rows):
        raise ValueError(f"kind python: '{p.function}' must return a Series or DataFrame with one value per row")
    missing = [k for k in p.outputs if k not in out.columns]
    if missing:
        raise ValueError(f"kind python: '{p.function}' did not return declared output(s) {missing}")
    return out.set_axis(rows.index)
