"""Materialisation: one code path for training and scoring, cached per feature, OOV-safe."""
import textwrap

import numpy as np
import pytest

from features.materialize import FeaturePipeline
from core.space import OOV_ID, PAD_ID
from features.spec import load_spec
from core.corpus import Corpus
from tests.fixtures import tiny_records

SPEC = """\
version: 1
features:
  - name: profile
    group: BF
    kind: user_profile
    fields: [sex, age, avg_pay_monthly, top3_categories_recent]
    numeric_bins: 2
  - name: attrs
    group: BF
    kind: item_attributes
    top_k: 3
  - name: price
    group: BF
    kind: price
  - name: mention_flag
    group: IF
    kind: mention_flag
  - name: title_jaccard
    group: IF
    kind: title_jaccard
feature_sets:
  BF: [BF]
  BF+IF: [BF, IF]
"""


@pytest.fixture
def spec(tmp_path):
    p = tmp_path / "spec.yaml"
    p.write_text(SPEC, encoding="utf-8")
    return load_spec(p)


def test_vocabularies_fit_on_training_rows_only(spec, tiny_corpus, tmp_path):
    pipe = FeaturePipeline(spec, tmp_path / "store", show_progress=False).fit(tiny_corpus)
    enc = pipe.state["features"]["profile"]["encoders"]
    # Only X1 (user U1) is a training sample: U2's sex "男" is not in the vocabulary.
    assert enc["profile__sex"]["values"] == ["女"]
    table = pipe.transform(tiny_corpus)
    sex = table.arrays["profile__sex"]
    x2 = table.mask("test")
    assert (sex[~x2] == 2).all() and (sex[x2] == OOV_ID).all()
    # U2 has no age: the missing id, not OOV.
    assert (table.arrays["profile__age"][x2] == PAD_ID).all()
    # Lists are order-free categorical values.
    assert enc["profile__top3_categories_recent"]["values"] == ["手机|耳机"]
    # Attribute columns follow KB frequency: 品牌 and 颜色 (3 items) before 内存 (2 items).
    assert pipe.state["features"]["attrs"]["state"]["attributes"] == ["品牌", "颜色", "内存"]


def test_feature_space_per_set(spec, tiny_corpus, tmp_path):
    pipe = FeaturePipeline(spec, tmp_path / "store", show_progress=False).fit(tiny_corpus)
    bf = pipe.feature_space("BF")
    assert "mention_flag" not in bf.names and "price__to_budget" in bf.names
    full = pipe.feature_space("BF+IF")
    assert {"mention_flag", "title_jaccard", "title_jaccard__no_mention"} <= set(full.names)
    table = pipe.transform(tiny_corpus)
    n = full.validate(table.X(full))
    assert n == 5


def test_cache_reused_and_only_changed_feature_recomputed(spec, tiny_corpus, tmp_path, monkeypatch):
    store = tmp_path / "store"
    FeaturePipeline(spec, store, show_progress=False).fit(tiny_corpus)
    files = {p.name for p in (store / "raw").iterdir()}
    assert len(files) == 5

    calls = []
    import features.materialize as m

    real = m.FeaturePipeline._compute_raw
    monkeypatch.setattr(m.FeaturePipeline, "_compute_raw",
                        lambda self, ctx, rows, entry: calls.append(entry.name) or real(self, ctx, rows, entry))
    FeaturePipeline(spec, store, show_progress=False).fit(tiny_corpus)
    assert calls == []  # nothing changed: everything from the parquet cache

    changed = load_spec_text(tmp_path, SPEC.replace("top_k: 3", "top_k: 2"))
    FeaturePipeline(changed, store, show_progress=False).fit(tiny_corpus)
    assert calls == ["attrs"]


def load_spec_text(tmp_path, text):
    p = tmp_path / "changed.yaml"
    p.write_text(text, encoding="utf-8")
    return load_spec(p)


def test_scoring_path_reproduces_training_values(spec, tiny_corpus, tmp_path):
    pipe = FeaturePipeline(spec, tmp_path / "store", show_progress=False).fit(tiny_corpus)
    pipe.save(tmp_path / "saved")
    full = pipe.transform(tiny_corpus)
    # Scoring: a fresh pipeline loaded from disk, a corpus holding only the test request.
    rec = tiny_records()
    rec["samples"] = [s for s in rec["samples"] if s["sample_id"] == "X2"]
    request = Corpus.from_records(**rec)
    served = FeaturePipeline.load(tmp_path / "saved", show_progress=False).transform(request, use_cache=False)
    m = full.mask("test")
    for name, arr in served.arrays.items():
        np.testing.assert_array_equal(arr, full.arrays[name][m], err_msg=name)


def test_unseen_values_at_scoring_go_to_oov(spec, tiny_corpus, tmp_path):
    pipe = FeaturePipeline(spec, tmp_path / "store", show_progress=False).fit(tiny_corpus)
    rec = tiny_records()
    rec["users"].append({"user_id": "U9", "profile": {"sex": "未知", "avg_pay_monthly": 1e9}})
    rec["items"].append({"item_id": "I9", "category": "新品类", "shop_id": "S9", "title": "全新 未见过 的 商品",
                         "price": None, "attributes": {"品牌": "新品牌", "材质": "钛"}})
    rec["sessions"].append({"session_id": "C9", "user_id": "U9", "shop_id": "S9", "turns": [
        {"role": "user", "text": "随便看看", "items": [], "intent": None, "recommend": None},
        {"role": "staff", "text": "这款", "items": ["I9"], "intent": None, "recommend": True}]})
    rec["samples"] = [{"sample_id": "X9", "session_id": "C9", "turn": 1, "candidates": ["I9", "I1"],
                       "label_item": "I9", "split": "test"}]
    table = pipe.transform(Corpus.from_records(**rec), use_cache=False)
    assert table.arrays["profile__sex"][0] == OOV_ID
    assert table.arrays["attrs__attr00"][0] == OOV_ID  # 品牌=新品牌 unseen
    assert np.isfinite(table.arrays["price"]).all()  # missing price filled, not NaN


def test_numeric_values_outside_the_training_range_are_clipped_to_it():
    from features.materialize import _apply_numeric, _fit_numeric

    enc = _fit_numeric(np.array([1.0, 2.0, 3.0, np.nan]), "standard", fill=0.0)
    std = np.std([1.0, 2.0, 3.0])
    got = _apply_numeric(np.array([10.0, -5.0, 2.5, np.nan]), enc)
    np.testing.assert_allclose(got, [(3 - 2) / std, (1 - 2) / std, 0.5 / std, 0.0], rtol=1e-6)
    # log1p clips on the log scale; clip: false keeps the extrapolation
    enc = _fit_numeric(np.array([0.0, np.e - 1]), "log1p", fill=0.0)
    np.testing.assert_allclose(_apply_numeric(np.array([1e9]), enc), [(1.0 - 0.5) / 0.5], rtol=1e-6)
    enc = _fit_numeric(np.array([1.0, 2.0, 3.0]), "standard", fill=0.0, clip=False)
    np.testing.assert_allclose(_apply_numeric(np.array([10.0]), enc), [8 / std], rtol=1e-6)


def test_python_kind_runs_user_function(tmp_path, tiny_corpus, monkeypatch):
    (tmp_path / "my_feats.py").write_text(textwrap.dedent("""
        def title_length(rows, ctx, scale=1.0):
            titles = rows["item_id"].map(ctx.corpus.items.set_index("item_id")["title"])
            return titles.str.len() * scale
    """), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = load_spec_text(tmp_path, """\
version: 1
features:
  - name: title_len
    group: USER
    kind: python
    function: "my_feats:title_length"
    transform: none
    args: {scale: 2.0}
feature_sets:
  USER: [USER]
""")
    pipe = FeaturePipeline(spec, tmp_path / "store", show_progress=False).fit(tiny_corpus)
    table = pipe.transform(tiny_corpus)
    titles = tiny_corpus.candidate_rows()["item_id"].map({i["item_id"]: i["title"] for i in tiny_records()["items"]})
    np.testing.assert_allclose(table.arrays["title_len"], titles.str.len().to_numpy() * 2.0)
    assert pipe.feature_space("USER").names == ["title_len"]
