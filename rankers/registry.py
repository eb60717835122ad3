"""Registry of rankers: ``build(name, space, **hparams)``, ``load(path)``, ``available()``.

Adding a ranker = one new module in ``rankers/`` whose class carries ``@register("name")`` and
one entry in :data:`MODEL_MODULES` (modules are imported lazily, on first use of the registry).
The training loop never changes.

Hyperparameters of ``build``: ``configs/models/<name>.yaml`` (with the files it ``extends``, see
:mod:`rankers.config`) <- an optional ``config`` file <- the keyword arguments; validated by the
class's pydantic schema (:mod:`rankers.hparams`), so a wrong type or unknown key fails here with a
:class:`~rankers.hparams.HyperparameterError` naming the file and line (or the argument) and the key.

``load(path)`` reads ``ranker.json`` of a saved ranker, looks its class up here and restores it.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Callable, TypeVar

from core.space import FeatureSpace
from rankers.hparams import validate

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


def build(name: str, space: FeatureSpace, *, config: str | Path | bool | None = None, **hparams: Any):
    """Build an unfitted ranker.

    Hyperparameters: ``configs/models/<name>.yaml`` (always: the one place defaults live) <-
    ``config`` when it is a path (a file, or a directory holding ``<name>.yaml``; its ``extends``
    are read beside it) <- ``hparams``. ``config`` ``None``/``True``/``False``: no extra file.
    """
    from rankers.config import read_model_config

    cls = get(name)
    values, sources = read_model_config(name)
    if config is not None and not isinstance(config, bool):
        more, more_sources = read_model_config(name, config)
        values.update(more)
        sources.update(more_sources)
    values.update(hparams)
    for key in hparams:
        sources.pop(key, None)  # reported as a keyword argument of build
    return cls(space, **validate(cls.Hyperparameters, values, sources, model=name))


def load(path: str | Path):
    """Load a ranker saved with ``Ranker.save``: read ``ranker.json``, look its class up, restore it."""
    from rankers.base import FORMAT_VERSION

    path = Path(path)
    meta_path = path / "ranker.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{path}: not a saved ranker (no ranker.json)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{meta_path}: unsupported ranker format {meta.get('format_version')}")
    cls = get(meta["name"])
    hparams = validate(cls.Hyperparameters, meta["hparams"], model=meta["name"], default_source=str(meta_path))
    return cls.restore(path, hparams, meta.get("history", {}))
