"""Hyperparameters: one YAML source per value (base.yaml + per-model differences), pydantic
validation at build with errors naming the file, line and key."""
import json
from pathlib import Path

import pytest
import yaml

from core.space import FeatureSpace, Field
from rankers.config import CONFIG_DIR, load_model_config, read_model_config
from rankers.hparams import HyperparameterError
from rankers.registry import available, build, get, load

SPACE = FeatureSpace([Field("a", "dense")])
ALL = ["lr", "dnn", "wide_deep", "deepfm", "fgcnn", "dcn", "kdcn", "gbdt"]


def test_every_model_builds_from_its_yaml_with_exactly_its_schema():
    assert set(ALL) <= set(available())
    for name in ALL:
        hp = build(name, SPACE).hparams
        assert set(hp) == set(get(name).Hyperparameters.model_fields), name


def test_model_files_hold_only_what_differs_from_what_they_extend():
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        own = yaml.safe_load(path.read_text())
        parent = own.pop("extends", None)
        if parent is None:
            continue
        inherited = load_model_config(parent)
        repeated = {k: v for k, v in own.items() if k in inherited and inherited[k] == v}
        assert not repeated, f"{path.name} repeats {repeated} from {parent}.yaml"


def test_effective_values_follow_the_extends_chain():
    base = load_model_config("base")
    assert load_model_config("dnn") == base
    assert load_model_config("lr") == {"C": 1.0, "max_iter": 2000, "tol": 1e-6}  # scikit-learn, no base
    dcn = load_model_config("dcn")
    assert dcn["n_cross"] == 4 and dcn["dnn_hidden_units"] == [512, 512] and dcn["jit_compile"] is True
    kdcn, src = read_model_config("kdcn")
    assert kdcn["n_cross"] == 4 and kdcn["batch_size"] == 512 and kdcn["jit_compile"] is False
    assert Path(src["n_cross"].split(":")[0]).name == "dcn.yaml"
    assert Path(src["epochs"].split(":")[0]).name == "base.yaml"
    assert {Path(s.split(":")[0]).name for s in read_model_config("gbdt")[1].values()} == {"gbdt.yaml"}


def _override(tmp_path, name, text):
    (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


def test_wrong_type_in_yaml_names_file_line_and_key(tmp_path):
    cfg = _override(tmp_path, "deepfm", "# my settings\nbatch_size: 64\nepochs: ten\n")
    with pytest.raises(HyperparameterError, match=r"deepfm\.yaml:3: epochs: input should be a valid integer.*\(got 'ten'\)"):
        build("deepfm", SPACE, config=cfg)


def test_unknown_key_in_yaml_fails_at_build(tmp_path):
    cfg = _override(tmp_path, "dcn", "n_cross: 2\nn_crosses: 3\n")
    with pytest.raises(HyperparameterError, match=r"dcn\.yaml:2: n_crosses: unknown hyperparameter of dcn"):
        build("dcn", SPACE, config=cfg)


def test_ranges_and_allowed_values(tmp_path):
    with pytest.raises(HyperparameterError, match=r"build\('deepfm'\): epochs: input should be greater than or equal to 1"):
        build("deepfm", SPACE, epochs=0)
    with pytest.raises(HyperparameterError, match=r"learning_rate: input should be greater than 0"):
        build("dnn", SPACE, learning_rate=-0.1)
    with pytest.raises(HyperparameterError, match=r"build\('lr'\): C: input should be greater than 0"):
        build("lr", SPACE, C=-0.1)
    with pytest.raises(HyperparameterError, match=r"dnn_precision: input should be 'float32', 'bfloat16' or 'auto'"):
        build("fgcnn", SPACE, dnn_precision="float16")
    with pytest.raises(HyperparameterError, match=r"dnn_hidden_units\.1: input should be greater than or equal to 1"):
        build("dnn", SPACE, dnn_hidden_units=[64, 0])
    with pytest.raises(HyperparameterError, match="need equal lengths"):
        build("fgcnn", SPACE, conv_filters=[8, 8, 8])
    with pytest.raises(HyperparameterError, match=r"dialogue_pooling: input should be 'flatten' or 'mean'"):
        build("kdcn", SPACE, dialogue_pooling="max")
    with pytest.raises(HyperparameterError, match=r"max_bins: input should be less than or equal to 255"):
        build("gbdt", SPACE, max_bins=1000)
    # a keyword argument overrides (and is reported instead of) the YAML value
    cfg = _override(tmp_path, "deepfm", "epochs: ten\n")
    assert build("deepfm", SPACE, config=cfg, epochs=3).hparams["epochs"] == 3


def test_several_errors_are_reported_together():
    with pytest.raises(HyperparameterError) as e:
        build("dnn", SPACE, epochs="x", dnn_dropout=1.5)
    lines = str(e.value).splitlines()
    assert len(lines) == 2 and lines[0].startswith("rankers.registry.build('dnn'): dnn_dropout:")


def test_extends_errors(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b\n")
    (tmp_path / "b.yaml").write_text("extends: a\n")
    with pytest.raises(HyperparameterError, match="cycle"):
        read_model_config("a", tmp_path)
    (tmp_path / "c.yaml").write_text("extends: nowhere\n")
    with pytest.raises(HyperparameterError, match=r"c\.yaml: extends: no file .*nowhere\.yaml"):
        read_model_config("c", tmp_path)
    (tmp_path / "d.yaml").write_text("- a list\n")
    with pytest.raises(HyperparameterError, match=r"d\.yaml: expected a mapping"):
        read_model_config("d", tmp_path)


def test_a_custom_directory_extends_its_own_base(tmp_path):
    (tmp_path / "base.yaml").write_text((CONFIG_DIR / "base.yaml").read_text().replace("epochs: 10", "epochs: 4"))
    (tmp_path / "dnn.yaml").write_text("extends: base\nbatch_size: 128\n")
    hp = build("dnn", SPACE, config=tmp_path).hparams
    assert hp["epochs"] == 4 and hp["batch_size"] == 128 and hp["learning_rate"] == 0.001


def test_a_tampered_saved_ranker_json_is_named(tmp_path):
    from synth.planted import planted_table

    t = planted_table(n_rows=300, n_cat=2, n_dense=1, n_seq=0, seed=2)
    X, y, _ = t.part("train")
    path = build("dnn", t.space, epochs=1).fit(X, y).save(tmp_path / "dnn")
    meta = json.loads((path / "ranker.json").read_text())
    meta["hparams"]["epochs"] = "many"
    (path / "ranker.json").write_text(json.dumps(meta))
    with pytest.raises(HyperparameterError, match=r"ranker\.json: epochs: input should be a valid integer"):
        load(path)
