"""Feature spec validation: every error names the file, the line and the feature."""
import subprocess
import sys
import textwrap

import pytest

from features.registry import kinds
from features.spec import SpecError, load_spec

GOOD = """\
version: 1
features:
  - name: mention_flag
    group: IF
    kind: mention_flag
  - name: category
    group: BF
    kind: item_field
    field: category
feature_sets:
  BF: [BF]
  BF+IF: [BF, IF]
"""


def write(tmp_path, text, name="spec.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_good_spec_loads_with_sets_and_lines(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    assert [f.name for f in spec.features] == ["mention_flag", "category"]
    assert [f.line for f in spec.features] == [3, 6]
    assert [e.name for e in spec.entries_for("BF")] == ["category"]
    assert [e.name for e in spec.entries_for("BF+IF")] == ["mention_flag", "category"]
    assert set(spec.feature_sets["all"]) == {"BF", "IF"}
    assert spec.entry("category").params.field == "category"


@pytest.mark.parametrize(
    "patch, expected",
    [
        (("kind: mention_flag", "kind: mention_flagg"), ["spec.yaml:3", "'mention_flag'", "unknown kind 'mention_flagg'", "title_jaccard"]),
        (("field: category", "field: category\n    colour: red"), ["spec.yaml:6", "'category'", "unknown parameter 'colour'"]),
        (("field: category", "field: colour"), ["spec.yaml:6", "'category'", "parameter 'field'"]),
        (("field: category", "field: category\n    max_vocab: many"), ["spec.yaml:6", "max_vocab"]),
        (("  - name: category", "  - name: mention_flag"), ["spec.yaml:6", "duplicate name", "line 3"]),
        (("BF+IF: [BF, IF]", "BF+IF: [BF, XF]"), ["feature set 'BF+IF'", "unknown group(s) ['XF']"]),
        (("    field: category\n", ""), ["spec.yaml:6", "missing required parameter 'field'"]),
        (("  - name: category", "  - name: 9lives"), ["spec.yaml:6", "name must start with a letter"]),
    ],
)
def test_spec_errors_name_file_line_feature(tmp_path, patch, expected):
    text = GOOD.replace(*patch)
    with pytest.raises(SpecError) as e:
        load_spec(write(tmp_path, text))
    for part in expected:
        assert part in str(e.value), str(e.value)


def test_all_problems_reported_together(tmp_path):
    text = GOOD.replace("kind: mention_flag", "kind: nope").replace("field: category", "field: category\n    x: 1")
    with pytest.raises(SpecError) as e:
        load_spec(write(tmp_path, text))
    assert str(e.value).startswith("2 problem(s)")


def test_invalid_yaml_and_missing_file(tmp_path):
    with pytest.raises(SpecError, match=r"spec.yaml:3: invalid YAML"):
        load_spec(write(tmp_path, "features:\n  - name: a\n  kind: [oops\n"))
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "missing.yaml")


def test_safe_load_refuses_python_tags(tmp_path):
    with pytest.raises(SpecError, match="invalid YAML"):
        load_spec(write(tmp_path, "features: !!python/object/apply:os.system ['echo pwned']\n"))


def test_kinds_command_lists_every_kind_with_help():
    out = subprocess.run([sys.executable, "-m", "features", "kinds"], capture_output=True, text=True, check=True).stdout
    for name, kind in kinds().items():
        assert name in out
        assert kind.help, f"kind {name} has no help line"
    assert "field (required)" in out


def test_check_command_exit_code(tmp_path):
    bad = write(tmp_path, GOOD.replace("kind: mention_flag", "kind: nope"))
    r = subprocess.run([sys.executable, "-m", "features", "check", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown kind 'nope'" in r.stderr and "Traceback" not in r.stderr


def test_repository_spec_is_valid():
    spec = load_spec("configs/features/econvrec.yaml")
    assert {"BF", "IF"} <= set(spec.groups)
