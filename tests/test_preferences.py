"""Preference words: extraction rules, annotation first, no leakage, evaluation against annotations."""
import pandas as pd
import pytest

from features.context import FeatureContext
from features.preferences import (
    PreferenceExtractor,
    evaluate_extractor,
    preferences_for_context,
    rejected_value,
)
from tests.fixtures import make_corpus


ITEMS = {
    "G": ("手机", "华为 金色 手机", {"颜色": "金色", "品牌": "华为", "内存": "256G", "续航时间": "30小时", "变频/定频": "变频"}),
    "D": ("笔记本电脑", "戴尔 游戏本", {"品牌": "戴尔", "类型": "游戏本", "颜色": "#999 正红色"}),
    "B": ("手机", "华为 黑色 手机", {"颜色": "黑色", "品牌": "华为"}),
    "L": ("口红", "小女生 暗红色 口红", {"颜色": "暗红色", "适用人群": "小女生"}),
}


@pytest.fixture(scope="module")
def extractor():
    c = make_corpus(ITEMS, {"C": [("user", "x", None)]}, [])
    return PreferenceExtractor.from_kb(c.items, c.item_attrs)


@pytest.mark.parametrize(
    "text,expected",
    [
        # negative expressions: the negation stays in the word (as the annotations write it)
        ("不要金色的", [("不要金色", "negative")]),
        ("别太贵", [("别太贵", "negative")]),
        ("除了黑色还有吗", [("除了黑色", "negative")]),
        ("我不喜欢暗红色的。", [("不喜欢暗红色", "negative")]),
        ("我不要黑色, 我要亮色的。", [("不要黑色", "negative"), ("亮色", "descriptive")]),
        # comparative expressions
        ("低于3000", [("低于3000", "comparative")]),
        ("大于200G的", [("大于200g", "comparative")]),
        ("便宜一点", [("便宜一点", "comparative")]),
        ("3000以内的手机", [("3000以内", "comparative"), ("手机", "category")]),
        ("有没有比之前那个轻的", [("比之前那个轻", "comparative")]),
        # KB words: category names -> category, attribute values / descriptive words -> descriptive
        ("想要华为手机，拍照清晰的", [("华为", "descriptive"), ("手机", "category"), ("拍照清晰", "descriptive")]),
        ("内存256G", [("256g", "descriptive")]),
        ("你好，在吗", []),
        # the annotations' other forms
        ("别推荐橙色的", [("别推荐橙色", "negative")]),
        ("戴尔的就不考虑了，不考虑戴尔", [("不考虑戴尔", "negative")]),  # 戴尔 is rejected, not wanted
        ("还有别的推荐吗", []),  # a bare 别 is no rejection
        ("还有更便宜些的吗", [("便宜些", "comparative")]),
        ("预算3000元以内", [("3000元以内", "comparative")]),
        ("续航要30小时以上", [("30小时以上", "comparative")]),
        ("我比较看重拍照清晰", [("拍照清晰", "descriptive")]),  # 比较 is no comparison
        # attribute names are questions about an attribute, not values
        ("这款续航时间是多少？", []),
        ("请问变频/定频是多少呀", []),
        # synonyms of categories are categories; a built-in category word that is a KB value is descriptive
        ("想看看智能手机", [("智能手机", "category")]),
        ("最好是游戏本的", [("游戏本", "descriptive")]),
        ("有没有#999 正红色的", [("#999 正红色", "descriptive")]),
    ],
)
def test_extraction_rules(extractor, text, expected):
    assert list(extractor.extract(text)) == expected


def test_negated_value_is_not_also_descriptive(extractor):
    words = extractor.extract("不要金色的手机")
    assert ("金色", "descriptive") not in words
    assert ("不要金色", "negative") in words and ("手机", "category") in words


@pytest.mark.parametrize(
    "text,value",
    [("不要金色的", "金色"), ("别太贵", "贵"), ("除了黑色", "黑色"), ("不喜欢暗红色", "暗红色"), ("我不想要白色的了", "白色")],
)
def test_rejected_value_strips_negation(text, value):
    assert rejected_value(text) == value


def test_extract_frame_processes_distinct_texts_once(extractor):
    calls = []
    orig = extractor.extract

    def counting(t):
        calls.append(t)
        return orig(t)

    extractor.extract = counting
    try:
        s = pd.Series(["不要金色的", "低于3000", "不要金色的", None], index=[10, 11, 12, 13])
        out = extractor.extract_frame(s)
    finally:
        del extractor.extract
    assert sorted(calls) == sorted(["不要金色的", "低于3000", ""])
    assert list(out.index) == [10, 11, 12]
    assert list(out["type"]) == ["negative", "comparative", "negative"]


def _ctx(c, tmp_path):
    return FeatureContext(c, tmp_path / "art", tmp_path / "cache")


def test_annotation_first_extraction_otherwise_and_no_leakage(tmp_path):
    sessions = {
        "C": [
            ("user", "想要华为手机", [("华为手机", "category")]),  # annotated: annotation wins
            ("staff", "金色的怎么样", None),  # staff turns never count
            ("user", "不要金色的", None),  # not annotated: extracted
            ("user", "有黑色的吗", []),  # annotated as having no preference word: nothing
            ("staff", "推荐这款", None),  # recommendation turn of X1
            ("user", "低于3000的", None),  # after X1's turn: visible to X2 only
            ("staff", "那这款", None),
        ]
    }
    c = make_corpus(ITEMS, sessions, [("X1", "C", 4, ["G", "B"], "B", "train"), ("X2", "C", 6, ["G"], "G", "train")])
    prefs = preferences_for_context(_ctx(c, tmp_path))
    got = {(r.sample_id, r.turn_idx, r.text, r.type) for r in prefs.itertuples()}
    assert got == {
        ("X1", 0, "华为手机", "category"),
        ("X1", 2, "不要金色", "negative"),
        ("X2", 0, "华为手机", "category"),
        ("X2", 2, "不要金色", "negative"),
        ("X2", 5, "低于3000", "comparative"),
    }
    # leakage: nothing at or after the recommendation turn
    assert (prefs.loc[prefs["sample_id"] == "X1", "turn_idx"] < 4).all()
    assert list(prefs.columns) == ["sample_id", "turn_idx", "text", "type"]


def test_evaluate_extractor_exact_and_loose(tmp_path):
    sessions = {
        "C": [
            ("user", "想要华为手机", [("华为", "descriptive"), ("手机", "category")]),  # 2/2 found
            ("user", "不要金色的", [("不要金色", "negative")]),  # found
            ("user", "要拍照好的", [("拍照好", "descriptive")]),  # missed
            ("user", "黑色的", [("黑色", "category")]),  # found with another type: loose only
            ("user", "低于3000", None),  # not annotated: not evaluated
        ]
    }
    c = make_corpus(ITEMS, sessions, [])
    r = evaluate_extractor(c)
    # predictions: 华为/d, 手机/c, 不要金色/n, 黑色/d  -> exact tp 3 of 4 predicted, 5 gold
    assert r["n_pred"] == 4 and r["n_gold"] == 5 and r["tp"] == 3
    assert r["precision"] == pytest.approx(3 / 4) and r["recall"] == pytest.approx(3 / 5)
    assert r["f1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert r["loose"]["tp"] == 4
    assert r["per_type"]["negative"]["recall"] == 1.0
    assert r["per_type"]["descriptive"]["tp"] == 1 and r["per_type"]["descriptive"]["n_gold"] == 2


def test_normalise_series_is_normalise_text_per_row_and_keeps_index_and_missing():
    from features.text import normalise_series

    s = pd.Series([" ＡＢＣ 红色 ", None, "ＡＢＣ", " ＡＢＣ 红色 ", "Ｘ"], index=[5, 3, 9, 1, 0])
    out = normalise_series(s)
    assert out.index.tolist() == [5, 3, 9, 1, 0]
    assert out.tolist()[:1] + out.tolist()[2:] == ["abc 红色", "abc", "abc 红色", "x"] and pd.isna(out[3])
    assert normalise_series(s, strip=False)[5] == " abc 红色 "
