"""The layering of the code base: core <- features, rankers, synth <- pipelines <- benchmarks.

Every import statement is checked, function-local ones included, so a lazy import cannot hide
an upward dependency.
"""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = {"core", "features", "rankers", "synth", "pipelines", "benchmarks"}
ALLOWED = {
    "core": set(),
    "features": {"core"},
    "rankers": {"core"},
    "synth": {"core"},
    "pipelines": {"core", "features", "rankers", "synth"},
    "benchmarks": {"core", "features", "rankers", "synth", "pipelines"},
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_no_import_runs_upwards(package):
    bad = {}
    for path in sorted((REPO / package).rglob("*.py")):
        up = imported_packages(path) - ALLOWED[package] - {package}
        if up:
            bad[path.relative_to(REPO).as_posix()] = sorted(up)
    assert bad == {}


def test_the_checker_sees_a_lazy_upward_import(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def g():\n    from pipelines.run import main\n    import rankers.base\n")
    assert imported_packages(f) == {"pipelines", "rankers"}


def test_no_source_file_over_800_lines():
    long = {p.relative_to(REPO).as_posix(): n for pkg in ALLOWED for p in (REPO / pkg).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 800}
    assert long == {}
