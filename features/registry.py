"""Registry of feature kinds: the extractors a YAML spec can name with ``kind:``.

An extractor is a pure, vectorised function over a partition of candidate rows::

    def transform(rows: pd.DataFrame, ctx: FeatureContext, params: P, state: dict) -> pd.DataFrame

``rows`` is a slice of ``Corpus.candidate_rows()`` (whole samples, never split across
partitions); the result has ``rows.index`` and one column per declared output. ``fit`` (optional)
learns state from the training split once (vocabularies of keywords, trained word vectors, ...);
the state must be JSON-serialisable; large artefacts go to files under ``ctx.artifacts`` and the
state keeps their *relative* path. Training and scoring call the very same ``transform``.
``warm`` (optional) fills the kind's caches for catalogue items ahead of traffic, e.g. the title
embeddings of ``bert_cosine``: a service calls it when it loads and on ``PUT /items``, so a request
encodes only its new utterances. It changes no value ``transform`` returns, only when work is done.
``prefetch`` (optional) starts, for a scoring call's user utterances, work ``transform`` will need, in
the background, e.g. ``bert_cosine`` encoding a request's new utterances while the call's corpus is
built and the other extractors run; the serving path calls it first, with the texts of the requests'
user turns as sent. It too changes no value.

Output kinds (what the materialiser does with a column before a ranker sees it):

* ``categorical``: strings; a vocabulary is fitted on the training rows (``max_vocab``,
  ``min_count``), unseen values go to the OOV id.
* ``numeric``: floats; ``transform`` (none|log1p|standard|minmax) fitted on training rows, NaN filled.
* ``ids``: int sequences already indexed into a shared vocabulary (e.g. knowledge-graph entities);
  the ``OutputColumn`` carries ``vocab`` and ``maxlen``; the vocabulary size comes from the state
  (``state["vocab_sizes"][vocab]``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # pragma: no cover
    from features.context import FeatureContext

OutputKind = Literal["categorical", "numeric", "ids"]


class KindParams(BaseModel):
    """Parameters every kind accepts; extractors subclass this with their own fields.

    ``extra="forbid"`` makes an unknown parameter in YAML a validation error.
    """

    model_config = ConfigDict(extra="forbid")

    # categorical outputs
    max_vocab: int = 500
    min_count: int = 1
    # numeric outputs
    transform: Literal["none", "log1p", "standard", "minmax"] = "standard"
    fill: float = 0.0
    # Values outside the training rows' range are clipped to it (the numeric counterpart of the OOV
    # id): a request unlike any training row (no preference utterance where every training sample
    # had one) must not become a z-score of -79 that a model extrapolates on.
    clip: bool = True


@dataclass(frozen=True)
class OutputColumn:
    key: str  # "" for the feature's single output, else a sub-name; column = name or name__key
    kind: OutputKind
    vocab: str | None = None  # ids: shared vocabulary name
    maxlen: int = 1  # ids: sequence length (padded/truncated)

    def column(self, feature_name: str) -> str:
        return feature_name if not self.key else f"{feature_name}__{self.key}"


@dataclass(frozen=True)
class Kind:
    name: str
    help: str
    params: type[KindParams]
    transform: Callable[..., pd.DataFrame]
    outputs: Callable[[Any, dict], list[OutputColumn]]
    fit: Callable[..., dict] | None = None
    # Bump when the extractor's semantics change: part of the cache key.
    version: str = "1"
    warm: Callable[..., None] | None = None  # (ctx, params, state, items) -> None
    prefetch: Callable[..., None] | None = None  # (cache root, params, state, utterances) -> None


_KINDS: dict[str, Kind] = {}


def register(
    name: str,
    *,
    params: type[KindParams] = KindParams,
    outputs: Callable[[Any, dict], list[OutputColumn]] | list[OutputColumn],
    fit: Callable[..., dict] | None = None,
    version: str = "1",
    warm: Callable[..., None] | None = None,
    prefetch: Callable[..., None] | None = None,
):
    """Decorator registering ``transform`` as feature kind ``name``.

    ``outputs`` is a list of OutputColumn, or a function ``(params, state) -> list[OutputColumn]``
    when the columns depend on parameters or fitted state. The first docstring line is the help.
    """

    def deco(fn: Callable[..., pd.DataFrame]) -> Callable[..., pd.DataFrame]:
        if name in _KINDS:
            raise ValueError(f"feature kind '{name}' is registered twice")
        out_fn = outputs if callable(outputs) else (lambda p, s, _o=tuple(outputs): list(_o))
        doc = (fn.__doc__ or "").strip().splitlines()
        _KINDS[name] = Kind(name, doc[0] if doc else "", params, fn, out_fn, fit, version, warm, prefetch)
        return fn

    return deco


def _load_builtin() -> None:
    # Importing the extractor modules runs their @register decorators.
    import features.extractors  # noqa: F401


def get_kind(name: str) -> Kind:
    _load_builtin()
    if name not in _KINDS:
        raise KeyError(name)
    return _KINDS[name]


def kinds() -> dict[str, Kind]:
    _load_builtin()
    return dict(sorted(_KINDS.items()))


def describe_kinds() -> str:
    """One line of help per kind and its parameters (the ``features kinds`` command)."""
    lines = []
    base = set(KindParams.model_fields)
    for k in kinds().values():
        own = [
            f"{n} (required)" if f.is_required() else f"{n}={f.get_default(call_default_factory=True)!r}"
            for n, f in k.params.model_fields.items()
            if n not in base or f.default != KindParams.model_fields[n].default
        ]
        lines.append(f"{k.name:<22} {k.help}")
        if own:
            lines.append(f"{'':<22}   params: {', '.join(own)}")
    lines.append(f"common params: {', '.join(f'{n}={f.default!r}' for n, f in KindParams.model_fields.items())}")
    return "\n".join(lines)
