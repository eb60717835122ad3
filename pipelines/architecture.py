"""The layers of the code base, read from the code: ``python -m pipelines.architecture [--write]``.

Parses every module's import statements (function-local ones included) and draws the package
graph as a Mermaid diagram: one box per package listing its modules, one arrow per package
dependency. ``--write`` puts the diagram into README.md between the ``architecture`` markers;
``tests/test_layers.py`` checks that the README's diagram is the current one and that no import
runs upwards.
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Lowest layer first; a package may import only packages listed in its ALLOWED entry.
LAYERS: tuple[str, ...] = ("core", "features", "rankers", "synth", "pipelines", "benchmarks")
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "features": {"core"},
    "rankers": {"core"},
    "synth": {"core"},
    "pipelines": {"core", "features", "rankers", "synth"},
    "benchmarks": {"core", "features", "rankers", "synth", "pipelines"},
}
BEGIN, END = "<!-- architecture:begin -->", "<!-- architecture:end -->"


def imported_packages(path: Path) -> set[str]:
    """Our top-level packages that ``path`` imports anywhere in its body."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(LAYERS)


def modules(package: str, repo: Path = REPO) -> list[Path]:
    return sorted(p for p in (repo / package).rglob("*.py") if "__pycache__" not in p.parts)


def package_graph(repo: Path = REPO) -> dict[str, set[str]]:
    """package -> the other packages of ours it imports."""
    return {pkg: set().union(*(imported_packages(p) for p in modules(pkg, repo))) - {pkg} for pkg in LAYERS}


def upward_imports(repo: Path = REPO) -> dict[str, list[str]]:
    """``module path -> forbidden packages it imports`` (empty when the layering holds)."""
    bad = {}
    for pkg in LAYERS:
        for p in modules(pkg, repo):
            up = imported_packages(p) - ALLOWED[pkg] - {pkg}
            if up:
                bad[p.relative_to(repo).as_posix()] = sorted(up)
    return bad


def mermaid(repo: Path = REPO) -> str:
    lines = ["```mermaid", "flowchart BT"]
    for pkg in LAYERS:
        names = [p.relative_to(repo / pkg).with_suffix("").as_posix() for p in modules(pkg, repo)]
        names = [n for n in names if not n.endswith("__init__") and n != "__main__"]
        shown = ", ".join(names[:14]) + (", ..." if len(names) > 14 else "")
        lines.append(f'    {pkg}["<b>{pkg}/</b><br/>{shown}"]')
    graph = package_graph(repo)
    for pkg in LAYERS:
        for dep in sorted(graph[pkg], key=LAYERS.index):
            lines.append(f"    {pkg} --> {dep}")
    lines.append("```")
    return "\n".join(lines)


def readme_with_diagram(readme: str, diagram: str) -> str:
    head, sep, rest = readme.partition(BEGIN)
    if not sep:
        raise ValueError(f"README.md has no {BEGIN} marker")
    _, sep2, tail = rest.partition(END)
    if not sep2:
        raise ValueError(f"README.md has no {END} marker")
    return f"{head}{BEGIN}\n{diagram}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.architecture", description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="update the diagram in README.md")
    args = ap.parse_args(argv)
    diagram = mermaid()
    bad = upward_imports()
    if args.write:
        readme = REPO / "README.md"
        readme.write_text(readme_with_diagram(readme.read_text(), diagram))
    else:
        print(diagram)
    for path, pkgs in bad.items():
        print(f"error: {path} imports {', '.join(pkgs)} (a higher layer)", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
