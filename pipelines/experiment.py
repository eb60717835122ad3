"""Experiment configs (``configs/<name>.yaml``): which rankers on which feature sets, on what data.

FuxiCTR style: data and features are named here and described in the feature spec; model
hyperparameters live in ``configs/models/``. A run is named ``<name>-<scale|data>-seed<seed>``
so the same config and seed always map to the same run directory (and a rerun resumes it).
"""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

REPO = Path(__file__).resolve().parents[1]


class ConfigError(ValueError):
    """An experiment config or a command-line choice is invalid."""


class RunEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    feature_sets: list[str]
    hparams: dict = Field(default_factory=dict)  # overrides of configs/models/<model>.yaml


class ExperimentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    seed: int = 0                   # corpus generation and split (and the first training seed)
    seeds: list[int] | None = None  # training seeds: each (model, feature set) trained once per seed
    data: str | None = None
    scale: str = "default"
    # train:valid:test shares of the sessions of a corpus whose samples carry no split
    split: list[float] = [0.8, 0.1, 0.1]
    feature_spec: str = "configs/features/econvrec.yaml"
    models_dir: str = "configs/models"
    runs: list[RunEntry]

    @field_validator("split")
    @classmethod
    def _shares(cls, v: list[float]) -> list[float]:
        if len(v) != 3 or min(v) < 0 or min(v[0], v[2]) == 0 or abs(sum(v) - 1) > 1e-9:
            raise ValueError(f"split {list(v)}: train, valid and test shares >= 0 (train and test > 0) summing to 1")
        return v

    def resolve(self, path: str) -> Path:
        p = Path(path)
        if p.is_absolute() or p.exists():
            return p
        return REPO / p

    def training_seeds(self) -> list[int]:
        """Seeds each pair is trained with; the first one's models are saved for scoring."""
        return list(dict.fromkeys(self.seeds)) if self.seeds else [self.seed]

    def pairs(self) -> list[tuple[str, str, dict]]:
        """(model, feature set, hparams) in config order, without repeats."""
        out, seen = [], set()
        for r in self.runs:
            for fs in r.feature_sets:
                if (r.model, fs) not in seen:
                    seen.add((r.model, fs))
                    out.append((r.model, fs, r.hparams))
        return out


def find_config(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        if not p.exists():
            raise ConfigError(f"{p}: experiment config not found")
        return p
    cand = REPO / "configs" / f"{name_or_path}.yaml"
    if not cand.exists():
        known = sorted(q.stem for q in (REPO / "configs").glob("*.yaml"))
        raise ConfigError(f"unknown experiment '{name_or_path}'; known: {', '.join(known)} (or pass --config FILE)")
    return cand


def load_experiment(path: Path) -> ExperimentConfig:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as e:
        msgs = [f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()]
        raise ConfigError(f"{path}: " + "; ".join(msgs)) from None
