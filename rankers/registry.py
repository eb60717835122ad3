"""Registry of rankers: ``build(name, space, **hparams)``, ``load(path)``, ``available()``.

Adding a ranker = one new module in ``rankers/`` whose class carries ``@register("name")`` and
one entry in :data:`MODEL_MODULES` (modules are imported lazily, on first use of the registry).
The training loop never changes.

Hyperparameters of ``build``: the class ``defaults`` <- ``configs/models/<name>.yaml`` (when
present, see :func:`rankers.config.load_model_config`) <- the keyword arguments.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable, TypeVar

from core.space import FeatureSpace

# Modules (under ``rankers``) that define registered rankers. Add one line per new model.
MODEL_MODULES: tuple[str, ...] = (
    "lr",
    "dnn",
    "wide_deep",
    "deepfm",
    "fgcnn",
    "dcn",
    "kdcn",
    "gbdt",
)

_REGISTRY: dict[str, type] = {}
_imported = False
T = TypeVar("T", bound=type)


def register(name: str) -> Callable[[T], T]:
    """Class decorator: make a ``Ranker`` subclass buildable as ``name``."""

    def deco(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"ranker name '{name}' is already registered by {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _import_all() -> None:
    global _imported
    if not _imported:
        for mod in MODEL_MODULES:
            importlib.import_module(f"rankers.{mod}" if "." not in mod else mod)
        _imported = True


def available() -> list[str]:
    """Names of all registered rankers."""
    _import_all()
    return sorted(_REGISTRY)


def get(name: str) -> type:
    _import_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown ranker '{name}'; available: {available()}") from None


def build(name: str, space: FeatureSpace, *, config: str | Path | bool | None = True, **hparams: Any):
    """Build an unfitted ranker.

    ``config``: ``True`` (default) merges ``configs/models/<name>.yaml`` when it exists; a path
    merges that file (or directory) instead; ``False``/``None`` uses the class defaults only.
    """
    from rankers.config import load_model_config

    cls = get(name)
    params: dict[str, Any] = {}
    if config is not None and config is not False:
        params.update(load_model_config(name, None if config is True else config, missing_ok=config is True))
    params.update(hparams)
    return cls(space, **params)


def load(path: str | Path):
    """Load a ranker saved with ``Ranker.save``."""
    from rankers.base import Ranker

    return Ranker.load(path)
