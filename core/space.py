"""The feature space: what a ranker sees of the materialised features.

Conventions shared by every ranker (DeepCTR-style feature columns, kept as plain data):

* ``categorical`` field: int32 ids of shape ``(n,)``; id 0 = missing, id 1 = out-of-vocabulary,
  known values start at 2. All categorical fields share one fused embedding table; field ``i``
  owns rows ``offsets[i] : offsets[i] + vocab_size``.
* ``dense`` field: float32 of shape ``(n,)`` when ``dim == 1`` else ``(n, dim)``, already normalised.
* ``sequence`` field: int32 ids of shape ``(n, dim)`` (``dim`` = max length), 0 = padding, 1 = OOV.
  Sequence fields that name the same ``vocab`` share one embedding table, which may be initialised
  from ``FeatureSpace.pretrained[vocab]`` (e.g. the conversation knowledge graph's entities).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Mapping

import numpy as np

FieldKind = Literal["categorical", "dense", "sequence"]
PAD_ID = 0
OOV_ID = 1


class FeatureInputError(ValueError):
    """A feature array handed to a ranker does not match the feature space it was built with."""


@dataclass(frozen=True)
class Field:
    name: str
    kind: FieldKind
    vocab_size: int = 0  # categorical / sequence: number of ids, including PAD and OOV
    dim: int = 1  # dense: width; sequence: max length
    vocab: str | None = None  # sequence: name of a shared vocabulary / embedding table
    group: str = ""  # BF, IF, CF, KF or user-defined

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32) if self.kind == "dense" else np.dtype(np.int32)

    @property
    def shape(self) -> tuple[int, ...]:
        """Per-row shape."""
        if self.kind == "dense":
            return () if self.dim == 1 else (self.dim,)
        if self.kind == "sequence":
            return (self.dim,)
        return ()


@dataclass
class FeatureSpace:
    fields: list[Field]
    # Shared vocabularies of sequence fields: name -> (vocab_size, pretrained matrix or None).
    pretrained: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature space has duplicate field names: {dupes}")

    # -- views -------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def of_kind(self, kind: FieldKind) -> list[Field]:
        return [f for f in self.fields if f.kind == kind]

    @property
    def categorical(self) -> list[Field]:
        return self.of_kind("categorical")

    @property
    def dense(self) -> list[Field]:
        return self.of_kind("dense")

    @property
    def sequence(self) -> list[Field]:
        return self.of_kind("sequence")

    @property
    def dense_width(self) -> int:
        return sum(f.dim for f in self.dense)

    @property
    def offsets(self) -> np.ndarray:
        """Start row of each categorical field in the fused embedding table."""
        sizes = [f.vocab_size for f in self.categorical]
        return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if sizes else np.zeros(0, np.int64)

    @property
    def total_vocab(self) -> int:
        return int(sum(f.vocab_size for f in self.categorical))

    def shared_vocab_sizes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.sequence:
            key = f.vocab or f.name
            out[key] = max(out.get(key, 0), f.vocab_size)
        return out

    def subset(self, names: list[str]) -> "FeatureSpace":
        by_name = {f.name: f for f in self.fields}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise KeyError(f"unknown feature(s) {missing}; the space has {self.names}")
        keep = [by_name[n] for n in names]
        vocabs = {f.vocab or f.name for f in keep if f.kind == "sequence"}
        return FeatureSpace(keep, {k: v for k, v in self.pretrained.items() if k in vocabs})

    # -- validation ----------------------------------------------------------------------------
    def validate(self, X: Mapping[str, np.ndarray]) -> int:
        """Check a feature dict against the space; return the number of rows.

        Raises FeatureInputError naming the offending feature (missing, unexpected, wrong dtype
        or shape, id out of range).
        """
        extra = sorted(set(X) - set(self.names))
        if extra:
            raise FeatureInputError(
                f"feature(s) {extra} were not part of the feature space this ranker was built with "
                f"(expected exactly: {self.names})"
            )
        n = None
        for f in self.fields:
            if f.name not in X:
                raise FeatureInputError(f"feature '{f.name}' ({f.kind}) is missing from the input")
            a = np.asarray(X[f.name])
            want_float = f.kind == "dense"
            if want_float and not np.issubdtype(a.dtype, np.floating):
                raise FeatureInputError(f"feature '{f.name}' must be float ({f.kind}), got dtype {a.dtype}")
            if not want_float and not np.issubdtype(a.dtype, np.integer):
                raise FeatureInputError(f"feature '{f.name}' must hold integer ids ({f.kind}), got dtype {a.dtype}")
            if a.shape[1:] != f.shape:
                raise FeatureInputError(
                    f"feature '{f.name}' must have per-row shape {f.shape}, got {a.shape[1:]}"
                )
            if n is None:
                n = a.shape[0]
            elif a.shape[0] != n:
                raise FeatureInputError(f"feature '{f.name}' has {a.shape[0]} rows, others have {n}")
            if not want_float and a.size and (a.min() < 0 or a.max() >= f.vocab_size):
                raise FeatureInputError(
                    f"feature '{f.name}' has ids outside [0, {f.vocab_size}); ids must come from its vocabulary"
                )
        return int(n or 0)

    # -- persistence ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"fields": [asdict(f) for f in self.fields], "pretrained": sorted(self.pretrained)}

    def save(self, directory: str | Path) -> None:
        """Write ``feature_space.json`` and ``pretrained_<vocab>.npy`` into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        for name, mat in self.pretrained.items():
            np.save(d / f"pretrained_{name}.npy", np.asarray(mat, np.float32))
        (d / "feature_space.json").write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False))

    @classmethod
    def load(cls, directory: str | Path) -> "FeatureSpace":
        d = Path(directory)
        raw = json.loads((d / "feature_space.json").read_text())
        fields = [Field(**f) for f in raw["fields"]]
        pretrained = {name: np.load(d / f"pretrained_{name}.npy") for name in raw.get("pretrained", [])}
        return cls(fields, pretrained)
