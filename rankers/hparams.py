"""Hyperparameter schemas (pydantic): types, ranges and allowed values, checked when a ranker is built.

Each ranker class names its schema in ``Hyperparameters``; every field is required and has no
default here: the values live in ``configs/models/*.yaml`` only (see :mod:`rankers.config`), so
there is one source of truth per value. A wrong type, an out-of-range value or an unknown key
raises :class:`HyperparameterError` naming where the value came from (file and line, or the
keyword argument) and the key::

    configs/models/deepfm.yaml:3: epochs: input should be a valid integer (got 'ten')
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


class HyperparameterError(ValueError):
    """A hyperparameter of the wrong type, out of range, unknown or missing."""


class Hyperparameters(BaseModel):
    """Base of every schema: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class KerasHyperparameters(Hyperparameters):
    """Shared by every Keras ranker (``configs/models/base.yaml``)."""

    embedding_dim: PositiveInt
    embedding_init_std: float = Field(gt=0)
    l2_embedding: NonNegativeFloat
    l2_dnn: NonNegativeFloat
    dnn_hidden_units: list[PositiveInt]
    dnn_dropout: float = Field(ge=0, lt=1)
    dnn_batch_norm: bool
    dnn_precision: Literal["float32", "bfloat16", "auto"]
    pretrained_trainable: bool
    batch_size: PositiveInt
    epochs: PositiveInt
    learning_rate: float = Field(gt=0)
    listwise_weight: float = Field(ge=0, le=1)  # 0: pointwise BCE; > 0: + softmax CE over each request
    patience: PositiveInt
    seed: int = Field(ge=0, lt=2**32)
    deterministic: bool
    jit_compile: bool
    steps_per_execution: PositiveInt
    predict_batch_size: PositiveInt


# where a value came from: a file (+ line) or a keyword argument
Source = str


def validate(schema: type[Hyperparameters], values: Mapping[str, Any], sources: Mapping[str, Source] | None = None,
             *, model: str = "", default_source: Source | None = None) -> dict[str, Any]:
    """Validate ``values`` against ``schema``; returns the plain dict of the validated values.

    ``sources[key]`` says where ``key`` was set (shown in the error, e.g. ``file.yaml:12``); keys
    without one are reported at ``default_source`` (by default: the ``build`` keyword arguments).
    """
    sources = sources or {}
    where_kw = default_source or (f"rankers.registry.build({model!r})" if model else schema.__name__)
    try:
        return schema.model_validate(dict(values)).model_dump()
    except ValidationError as exc:
        raise HyperparameterError(_message(exc, sources, schema, model, where_kw)) from None


def _message(exc: ValidationError, sources: Mapping[str, Source], schema: type[Hyperparameters], model: str,
             where_kw: Source) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        key = str(loc[0]) if loc else "?"
        path = ".".join(str(p) for p in loc)
        where = sources.get(key, where_kw)
        if err["type"] == "extra_forbidden":
            msg = f"unknown hyperparameter of {model or schema.__name__!s}; valid: {sorted(schema.model_fields)}"
        elif err["type"] == "missing":
            msg = "missing (no value in the model's YAML nor in the arguments)"
        else:
            msg = f"{err['msg'][:1].lower()}{err['msg'][1:]} (got {err.get('input')!r})"
        lines.append(f"{where}: {path or key}: {msg}")
    return "\n".join(lines)
