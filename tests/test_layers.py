"""The layering of the code base: core <- features, rankers, synth <- pipelines <- benchmarks.

Every import statement is checked, function-local ones included, so a lazy import cannot hide
an upward dependency; the README's architecture diagram is the one the code gives today.
"""
from pipelines import architecture as A


def test_no_import_runs_upwards():
    assert A.upward_imports() == {}


def test_the_checker_sees_lazy_and_upward_imports(tmp_path):
    (tmp_path / "core").mkdir()
    for pkg in A.LAYERS[1:]:
        (tmp_path / pkg).mkdir()
    (tmp_path / "core" / "m.py").write_text("import numpy\ndef g():\n    from pipelines.run import main\n"
                                            "    import rankers.base\n")
    (tmp_path / "features" / "ok.py").write_text("from core.io import write_json\n")
    assert A.imported_packages(tmp_path / "core" / "m.py") == {"pipelines", "rankers"}
    assert A.upward_imports(tmp_path) == {"core/m.py": ["pipelines", "rankers"]}
    assert A.package_graph(tmp_path)["features"] == {"core"}


def test_readme_diagram_is_generated_from_the_code():
    readme = (A.REPO / "README.md").read_text()
    assert A.readme_with_diagram(readme, A.mermaid()) == readme, "run: python -m pipelines.architecture --write"


def test_no_source_file_over_800_lines():
    long = {p.relative_to(A.REPO).as_posix(): n for pkg in A.LAYERS for p in A.modules(pkg)
            if (n := len(p.read_text().splitlines())) > 800}
    assert long == {}
