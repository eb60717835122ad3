"""Feature specs: features declared as data in YAML, validated up front.

A spec file looks like::

    version: 1
    features:
      - name: mention_flag      # column name in the feature table
        group: IF               # BF, IF, CF, KF or any group of your own
        kind: mention_flag      # a registered kind (``python -m features kinds`` lists them)
        # ... the kind's own parameters
    feature_sets:               # named combinations of groups, chosen on the command line
      BF+IF: [BF, IF]

Every error names the file, the line and the feature, and says how to fix it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from features.registry import KindParams, kinds

BUILTIN_GROUPS = ("BF", "IF", "CF", "KF")
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class SpecError(ValueError):
    """A feature spec is invalid. The message lists every problem found, one per line."""


class _EntryHeader(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    group: str
    kind: str


@dataclass(frozen=True)
class FeatureEntry:
    name: str
    group: str
    kind: str
    params: KindParams
    line: int  # 1-based line of the entry in its file (0 when built in code)

    def params_dict(self) -> dict[str, Any]:
        return self.params.model_dump(mode="json")


@dataclass(frozen=True)
class FeatureSpec:
    features: tuple[FeatureEntry, ...]
    feature_sets: dict[str, tuple[str, ...]]
    source: str = "<spec>"

    @property
    def groups(self) -> list[str]:
        return sorted({f.group for f in self.features})

    def entries_for(self, feature_set: str) -> list[FeatureEntry]:
        """Entries of a named feature set (``all`` = every group when not defined in the file)."""
        if feature_set not in self.feature_sets:
            known = ", ".join(self.feature_sets)
            raise SpecError(f"{self.source}: unknown feature set '{feature_set}'; defined sets: {known}")
        groups = set(self.feature_sets[feature_set])
        return [f for f in self.features if f.group in groups]

    def entry(self, name: str) -> FeatureEntry:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {
            "version": 1,
            "features": [{"name": f.name, "group": f.group, "kind": f.kind, **f.params_dict()} for f in self.features],
            "feature_sets": {k: list(v) for k, v in self.feature_sets.items()},
        }


def _line_marks(text: str) -> list[int]:
    """1-based line numbers of the items of the top-level ``features`` list (via yaml.compose,
    which only builds nodes, never objects)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if key.value == "features" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _format_pydantic(err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(entry)"
        if e["type"] == "extra_forbidden":
            out.append(f"unknown parameter '{loc}'")
        elif e["type"] == "missing":
            out.append(f"missing required parameter '{loc}'")
        else:
            out.append(f"parameter '{loc}': {e['msg']} (got {e.get('input')!r})")
    return out


def parse_spec(raw: Any, source: str = "<spec>", lines: list[int] | None = None) -> FeatureSpec:
    """Validate an already-parsed spec mapping. Collects all problems before raising."""
    problems: list[str] = []
    lines = lines or []
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: a feature spec must be a mapping with 'features' and 'feature_sets'")
    unknown_top = sorted(set(raw) - {"version", "features", "feature_sets", "description"})
    if unknown_top:
        problems.append(f"{source}: unknown top-level key(s) {unknown_top}; allowed: version, description, features, feature_sets")
    items = raw.get("features")
    if not isinstance(items, list) or not items:
        raise SpecError(f"{source}: 'features' must be a non-empty list of feature entries")
    registered = kinds()
    entries: list[FeatureEntry] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        line = lines[i] if i < len(lines) else 0
        where = f"{source}:{line}" if line else f"{source} (feature #{i + 1})"
        if not isinstance(item, dict):
            problems.append(f"{where}: each feature must be a mapping with name, group and kind")
            continue
        label = item.get("name", f"#{i + 1}")
        try:
            head = _EntryHeader.model_validate(item)
        except ValidationError as e:
            problems.extend(f"{where}: feature '{label}': {m}" for m in _format_pydantic(e))
            continue
        if not _NAME_RE.match(head.name):
            problems.append(
                f"{where}: feature '{head.name}': name must start with a letter and use only ASCII letters, digits and _"
            )
        if head.name in seen:
            problems.append(f"{where}: feature '{head.name}': duplicate name (first defined at line {seen[head.name]})")
        seen[head.name] = line
        if head.kind not in registered:
            problems.append(
                f"{where}: feature '{head.name}': unknown kind '{head.kind}'; registered kinds: {', '.join(registered)}"
            )
            continue
        params_in = {k: v for k, v in item.items() if k not in ("name", "group", "kind")}
        try:
            params = registered[head.kind].params.model_validate(params_in)
        except ValidationError as e:
            problems.extend(f"{where}: feature '{head.name}' (kind {head.kind}): {m}" for m in _format_pydantic(e))
            continue
        entries.append(FeatureEntry(head.name, head.group, head.kind, params, line))

    groups = {e.group for e in entries} | {str(item.get("group")) for item in items if isinstance(item, dict)}
    sets_raw = raw.get("feature_sets") or {}
    sets: dict[str, tuple[str, ...]] = {}
    if not isinstance(sets_raw, dict):
        problems.append(f"{source}: 'feature_sets' must map a set name to a list of groups")
        sets_raw = {}
    for name, members in sets_raw.items():
        if isinstance(members, str):
            members = [m.strip() for m in members.split("+")]
        if not isinstance(members, list) or not members:
            problems.append(f"{source}: feature set '{name}': must be a non-empty list of groups")
            continue
        bad = [m for m in members if m not in groups]
        if bad:
            problems.append(
                f"{source}: feature set '{name}' names unknown group(s) {bad}; groups in this spec: {sorted(groups)}"
            )
        sets[str(name)] = tuple(str(m) for m in members)
    sets.setdefault("all", tuple(sorted(groups)))
    if problems:
        raise SpecError(f"{len(problems)} problem(s) in feature spec:\n" + "\n".join(f"  {p}" for p in problems))
    return FeatureSpec(tuple(entries), sets, source)


def load_spec(path: str | Path) -> FeatureSpec:
    """Read and validate a YAML feature spec (``yaml.safe_load`` only)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{p}: feature spec file not found") from None
    except UnicodeDecodeError as e:
        raise SpecError(f"{p}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark else str(p)
        raise SpecError(f"{where}: invalid YAML: {getattr(e, 'problem', e)}") from None
    return parse_spec(raw, str(p), _line_marks(text))
