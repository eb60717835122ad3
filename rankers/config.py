"""Model hyperparameters from YAML (FuxiCTR style: ``configs/models/<name>.yaml``).

A file holds either the hyperparameters of one model as a flat mapping, or one section per model
(``{deepfm: {...}, dcn: {...}}``); :func:`load_model_config` accepts both.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "models"


def load_model_config(name: str, path: str | Path | None = None, *, missing_ok: bool = False) -> dict[str, Any]:
    """Hyperparameters of model ``name``.

    ``path``: ``None`` -> ``configs/models/<name>.yaml``; a directory -> ``<dir>/<name>.yaml``;
    a file -> that file (its ``name`` section when it has one, else the whole mapping).
    With ``missing_ok`` a missing default file gives ``{}``.
    """
    p = Path(path) if path is not None else CONFIG_DIR
    if p.is_dir():
        p = p / f"{name}.yaml"
    if not p.exists():
        if missing_ok:
            return {}
        raise FileNotFoundError(f"no hyperparameter file for model '{name}' at {p}")
    raw = yaml.safe_load(p.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{p}: expected a mapping of hyperparameters")
    if isinstance(raw.get(name), dict):
        raw = raw[name]
    return dict(raw)
