"""Model hyperparameters from YAML (FuxiCTR style): the ONE place their values live.

``configs/models/base.yaml`` holds the settings shared by the Keras rankers; each
``configs/models/<name>.yaml`` holds only what differs and names the file it builds on with
``extends: base`` (or ``extends: dcn``: K-DCN starts from DCN). A file holds either the
hyperparameters of one model as a flat mapping, or one section per model
(``{deepfm: {...}, dcn: {...}}``). Types and ranges are checked by the ranker's pydantic schema
(:mod:`rankers.hparams`) when it is built; errors name the file and line each value came from.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from rankers.hparams import HyperparameterError, Source

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "models"
EXTENDS = "extends"


def _shown(p: Path) -> str:
    """A path as the user would write it (relative to the working directory when inside it)."""
    try:
        return os.path.relpath(p) if Path(os.path.relpath(p)).parts[:1] != ("..",) else str(p)
    except ValueError:  # another drive
        return str(p)


def _read(p: Path, name: str) -> tuple[dict[str, Any], dict[str, Source]]:
    """The mapping of one file (its ``name`` section when it has one) and ``key -> 'file:line'``."""
    text = p.read_text()
    try:
        raw = yaml.safe_load(text) or {}
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise HyperparameterError(f"{_shown(p)}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise HyperparameterError(f"{_shown(p)}: expected a mapping of hyperparameters, got {type(raw).__name__}")
    if isinstance(raw.get(name), dict):
        raw = raw[name]
        node = next(v for k, v in node.value if k.value == name)
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value} if isinstance(node, yaml.MappingNode) else {}
    shown = _shown(p)
    return dict(raw), {k: f"{shown}:{lines[k]}" if k in lines else shown for k in raw}


def read_model_config(name: str, path: str | Path | None = None, *, missing_ok: bool = False,
                      ) -> tuple[dict[str, Any], dict[str, Source]]:
    """Hyperparameters of model ``name`` with ``extends`` resolved, and where each came from.

    ``path``: ``None`` -> ``configs/models/<name>.yaml``; a directory -> ``<dir>/<name>.yaml``;
    a file -> that file. ``extends: other`` reads ``other.yaml`` beside the file first.
    With ``missing_ok`` a missing file gives ``({}, {})``.
    """
    p = Path(path) if path is not None else CONFIG_DIR
    if p.is_dir():
        p = p / f"{name}.yaml"
    if not p.exists():
        if missing_ok:
            return {}, {}
        raise FileNotFoundError(f"no hyperparameter file for model '{name}' at {p}")
    values: dict[str, Any] = {}
    sources: dict[str, Source] = {}
    seen: list[Path] = []
    chain: list[tuple[dict, dict]] = []
    while True:
        if p.resolve() in seen:
            raise HyperparameterError(f"{_shown(p)}: '{EXTENDS}' cycle: {' -> '.join(map(_shown, seen + [p]))}")
        seen.append(p.resolve())
        v, s = _read(p, name)
        parent = v.pop(EXTENDS, None)
        s.pop(EXTENDS, None)
        chain.append((v, s))
        if parent is None:
            break
        if not isinstance(parent, str):
            raise HyperparameterError(f"{_shown(p)}: {EXTENDS}: expected the name of a file beside it, got {parent!r}")
        nxt = p.parent / f"{parent}.yaml"
        if not nxt.exists():
            raise HyperparameterError(f"{_shown(p)}: {EXTENDS}: no file {_shown(nxt)}")
        p = nxt
    for v, s in reversed(chain):  # the base first, the most specific file last
        values.update(v)
        sources.update(s)
    return values, sources


def load_model_config(name: str, path: str | Path | None = None, *, missing_ok: bool = False) -> dict[str, Any]:
    """Hyperparameters of model ``name`` (see :func:`read_model_config`), without their sources."""
    return read_model_config(name, path, missing_ok=missing_ok)[0]
