"""Packaging contracts: Keras 2 selected in one place, README commands match CI."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("first", ["core.space", "rankers", "core.corpus", "features.materialize", "synth", "pipelines"])
def test_importing_our_module_first_makes_tfrs_work(first):
    code = (
        "import os; os.environ.pop('TF_USE_LEGACY_KERAS', None)\n"
        f"import {first}\n"
        "import tensorflow_recommenders as tfrs, tensorflow as tf\n"
        "x = tf.ones((2, 4)); y = tfrs.layers.dcn.Cross()(x)\n"
        "assert 'tf_keras' in type(tf.keras.layers.Dense).__module__ or tf.keras.__name__.startswith('tf_keras'), tf.keras\n"
        "print(tuple(y.shape))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "TF_USE_LEGACY_KERAS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("(2, 4)")


def test_legacy_keras_is_set_in_exactly_one_place():
    # Our own sources only: hidden folders (.venv, .venv312, .git) hold other people's code, some of it
    # not even UTF-8.
    ours = [p.relative_to(REPO) for p in REPO.rglob("*.py")]
    ours = [p for p in ours if not any(part.startswith(".") for part in p.parts)
            and p.parts[0] not in ("tests", "benchmarks", "build")]
    hits = [p.as_posix() for p in ours if re.search(r"TF_USE_LEGACY_KERAS['\"]\]\s*=", (REPO / p).read_text())]
    assert hits == ["core/env.py"]


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    assert "python -m pipelines.run econvrec_rank" in blocks[0]
    test_cmd = blocks[1].strip()
    assert "pytest" in test_cmd
    assert test_cmd in (REPO / ".ci" / "run").read_text()


def test_empty_cache_variable_means_the_default_cache_not_the_current_directory(monkeypatch, tmp_path):
    from core.env import cache_root

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ECONVREC_CACHE", "")
    assert cache_root() == tmp_path / ".cache" / "econvrec_rank"
    monkeypatch.setenv("ECONVREC_CACHE", str(tmp_path / "c"))
    assert cache_root() == tmp_path / "c"


TF_NOISE = re.compile(r"^(?:[IWEF]\d{4} |WARNING: All log messages|.*oneDNN custom operations|.*cuda drivers|.*cuInit)", re.M)


@pytest.mark.parametrize("command", [
    ["-m", "pipelines.run", "--help"],
    ["-m", "pipelines.score", "--help"],
    ["-m", "pipelines.stats", "--help"],
    ["-m", "features", "kinds"],
    ["-c", "import rankers.registry as r, synth.planted as p\n"
           "t = p.planted_table(n_rows=300, n_cat=2, n_dense=1, n_seq=0, seed=1)\n"
           "m = r.build('deepfm', t.space, config=False, epochs=1, jit_compile=False)\n"
           "X, y, g = t.part('train'); m.fit(X, y); print(m.predict(X).shape)"],
])
def test_commands_print_no_tensorflow_log_lines(command):
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "ECONVREC_VERBOSE")}
    out = subprocess.run([sys.executable, *command], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert TF_NOISE.search(out.stderr) is None, out.stderr[-2000:]
    assert TF_NOISE.search(out.stdout) is None, out.stdout[-2000:]


def test_verbose_keeps_tensorflow_log_lines():
    env = {k: v for k, v in __import__("os").environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["ECONVREC_VERBOSE"] = "1"
    out = subprocess.run([sys.executable, "-c", "import core, tensorflow"], capture_output=True, text=True, cwd=REPO,
                         env=env, timeout=300)
    assert out.returncode == 0 and TF_NOISE.search(out.stderr), out.stderr[-2000:]
