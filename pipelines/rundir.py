"""The run directory: the one place that knows where a run keeps what.

::

    runs/<name>-<tag>-seed<seed>/
        config.yaml  feature_spec.yaml          the experiment as run
        features/                               fitted feature pipeline (state.json, resources/)
        reference/                              users, items, behaviours the scorer looks ids up in
        results/<model>__<feature set>/         one finished (model, feature set) pair, trained with
            model/                              the run's first training seed (the one the scorer loads):
            result.json  test_predictions.parquet   saved ranker (SavedModel + feature space), results
        results/seed<k>/<model>__<feature set>/ the same pair trained with each further seed (--seeds)
        metrics.json  metrics.csv  differences.json  report.md  *.png
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def default(cls, name: str, tag: str, seed: int) -> "RunDir":
        return cls(Path("runs") / f"{name}-{tag}-seed{seed}")

    # -- fixed files -------------------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def feature_spec(self) -> Path:
        return self.root / "feature_spec.yaml"

    @property
    def features(self) -> Path:
        return self.root / "features"

    @property
    def reference(self) -> Path:
        return self.root / "reference"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def metrics_json(self) -> Path:
        return self.root / "metrics.json"

    @property
    def metrics_csv(self) -> Path:
        return self.root / "metrics.csv"

    @property
    def insights_json(self) -> Path:
        return self.root / "insights.json"

    @property
    def differences_json(self) -> Path:
        return self.root / "differences.json"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    def plot(self, name: str) -> Path:
        return self.root / f"{name}.png"

    # -- one (model, feature set) pair ------------------------------------------------------------------------
    # ``seed``: a further training seed of ``--seeds``; None = the run's first seed, whose models are
    # the ones ``trained``/``find_model`` (and so the scorer) see.
    def result_dir(self, model: str, feature_set: str, seed: int | None = None) -> Path:
        # '+' is legal in file names but awkward in shells and URLs
        base = self.results if seed is None else self.results / f"seed{seed}"
        return base / f"{model}__{feature_set.replace('+', '_')}"

    def result_json(self, model: str, feature_set: str, seed: int | None = None) -> Path:
        return self.result_dir(model, feature_set, seed) / "result.json"

    def predictions(self, model: str, feature_set: str, seed: int | None = None) -> Path:
        return self.result_dir(model, feature_set, seed) / "test_predictions.parquet"

    def model_dir(self, model: str, feature_set: str, seed: int | None = None) -> Path:
        return self.result_dir(model, feature_set, seed) / "model"

    def trained(self) -> list[tuple[str, str]]:
        """``(model, feature set)`` of every finished pair, from each pair's ``result.json``."""
        if not self.results.is_dir():
            return []
        out = []
        for p in sorted(self.results.iterdir()):
            f = p / "result.json"
            if not p.name.startswith(".") and f.is_file() and (p / "model").is_dir():
                r = json.loads(f.read_text())
                out.append((r["model"], r["feature_set"]))
        return out

    def find_model(self, model: str, feature_set: str | None = None) -> tuple[str, Path]:
        """``(feature set, model directory)`` of a trained ``model``; without ``feature_set``, the
        set with the most fields (the full set). Raises ``FileNotFoundError`` listing what there is."""
        if not self.results.is_dir():
            raise FileNotFoundError(f"{self.root}: not a finished run directory (no results/)")
        pairs = self.trained()
        found = [fs for m, fs in pairs if m == model and (feature_set is None or fs == feature_set)]
        if not found:
            have = ", ".join(f"{m} on {fs}" for m, fs in pairs) or "nothing"
            raise FileNotFoundError(f"{self.root}: no trained '{model}'"
                                    + (f" on {feature_set}" if feature_set else "") + f"; available: {have}")

        def n_fields(fs: str) -> int:
            return len(json.loads((self.model_dir(model, fs) / "feature_space.json").read_text())["fields"])

        best = max(found, key=n_fields)
        return best, self.model_dir(model, best)
