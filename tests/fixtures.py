"""The hand-written corpora of the test suite, in one place.

* :func:`tiny_records` -- two sessions, three items, request-shaped records with hand-known feature
  values (``tiny_corpus`` in conftest.py builds it through ``Corpus.from_records``);
* :func:`loader_records` and :func:`write_corpus` -- the loader's reference corpus and its JSON
  Lines writer (raw lines can replace a table verbatim, to plant malformed input);
* :func:`make_corpus` -- a corpus from compact item / dialogue / sample descriptions, for the
  preference, word-vector and context-feature tests;
* :func:`kg_corpus` -- the knowledge-graph tests' corpus (off the contract on purpose).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from core.corpus import Corpus


def tiny_records():
    """Two sessions. S1 links I1 at turn 1 and I2 at the recommendation turn 3 (so I2 must not
    count as mentioned); S2 recommends at turn 1 with nothing linked before."""
    users = [
        {"user_id": "U1", "profile": {"sex": "女", "age": "26-35", "avg_pay_monthly": 5000.0,
                                       "top3_categories_recent": ["手机", "耳机"], "brand_preference": "华为"}},
        {"user_id": "U2", "profile": {"sex": "男", "avg_pay_monthly": 800.0}},
    ]
    items = [
        {"item_id": "I1", "category": "手机", "shop_id": "S", "title": "华为 Mate60 雅川青 手机", "price": 5999.0,
         "attributes": {"品牌": "华为", "颜色": "雅川青", "内存": "12GB"}},
        {"item_id": "I2", "category": "手机", "shop_id": "S", "title": "华为拍照手机曜金黑", "price": 4999.0,
         "attributes": {"品牌": "华为", "颜色": "曜金黑", "内存": "12GB", "系统": "鸿蒙"}},
        {"item_id": "I3", "category": "手机", "shop_id": "S", "title": "小米 白色 手机", "price": 1999.0,
         "attributes": {"品牌": "小米", "颜色": "白色"}},
    ]
    sessions = [
        {"session_id": "C1", "user_id": "U1", "shop_id": "S", "turns": [
            {"role": "user", "text": "想买个华为手机，拍照清晰的", "items": [], "intent": "商品咨询", "recommend": None,
             "preference_words": [{"text": "华为", "type": "descriptive"}, {"text": "拍照清晰", "type": "descriptive"}]},
            {"role": "staff", "text": "您看看这款", "items": ["I1"], "intent": None, "recommend": False},
            {"role": "user", "text": "不要金色的，还有别的吗", "items": [], "intent": "商品咨询", "recommend": None,
             "preference_words": [{"text": "不要金色的", "type": "negative"}]},
            {"role": "staff", "text": "推荐这款", "items": ["I2"], "intent": None, "recommend": True},
            {"role": "user", "text": "好的就它了", "items": ["I3"], "intent": "其他", "recommend": None},
        ]},
        {"session_id": "C2", "user_id": "U2", "shop_id": "S", "turns": [
            {"role": "user", "text": "有便宜的手机吗", "items": [], "intent": "价格咨询", "recommend": None},
            {"role": "staff", "text": "这款性价比高", "items": ["I3"], "intent": None, "recommend": True},
        ]},
    ]
    behaviors = [
        {"user_id": "U1", "type": "click", "item_id": "I1", "ts": 1},
        {"user_id": "U1", "type": "click", "item_id": "I2", "ts": 2},
        {"user_id": "U2", "type": "purchase", "item_id": "I3", "ts": 3},
    ]
    samples = [
        {"sample_id": "X1", "session_id": "C1", "turn": 3, "candidates": ["I1", "I2", "I3"], "label_item": "I2",
         "split": "train"},
        {"sample_id": "X2", "session_id": "C2", "turn": 1, "candidates": ["I3", "I1"], "label_item": "I3",
         "split": "test"},
    ]
    return dict(users=users, items=items, sessions=sessions, behaviors=behaviors, samples=samples)


def loader_records() -> dict:
    """Three users, three items, two sessions, two behaviours, two samples: every field of the
    format used once (tests/test_corpus_loader.py breaks them one at a time)."""
    users = [
        {"user_id": "U1", "profile": {"sex": "女", "age": "26-35", "avg_pay_monthly": 5000.0,
                                       "top3_categories_recent": ["手机", "耳机"], "brand_preference": "华为"}},
        {"user_id": "U2", "profile": {"sex": "男", "avg_pay_monthly": 800}},
        {"user_id": "U3", "profile": {}},
    ]
    items = [
        {"item_id": "I1", "category": "手机", "shop_id": "S", "title": "华为 Mate 60 雅川青 手机", "price": 5999.0,
         "attributes": {"品牌": "华为", "颜色": "雅川青", "运行内存": "12GB"}},
        {"item_id": "I2", "category": "手机", "shop_id": "S", "title": "华为 拍照手机", "price": 4999,
         "attributes": {"品牌": "华为", "颜色": "曜金黑"}},
        {"item_id": "I3", "category": "手机", "shop_id": "S", "title": "小米 白色 手机", "price": None,
         "attributes": {}},
    ]
    sessions = [
        {"session_id": "C1", "user_id": "U1", "shop_id": "S", "turns": [
            {"role": "user", "text": "想买个华为手机，拍照清晰的", "items": [], "intent": "Inform Preference",
             "recommend": None, "preference_words": [{"text": "华为", "type": "descriptive"},
                                                     {"text": "手机", "type": "category"}]},
            {"role": "staff", "text": "您看看这款", "items": ["I1"], "intent": None, "recommend": True},
            {"role": "user", "text": "不要金色的", "items": [], "intent": "Inform Preference", "recommend": None,
             "preference_words": [{"text": "不要金色", "type": "negative"}]},
            {"role": "staff", "text": "推荐这款", "items": ["I2"], "intent": None, "recommend": True},
        ]},
        {"session_id": "C2", "user_id": "U2", "shop_id": "S", "turns": [
            {"role": "user", "text": "有便宜的手机吗", "items": [], "intent": "Other", "recommend": None},
            {"role": "staff", "text": "这款性价比高", "items": ["I3"], "intent": None, "recommend": True},
        ]},
    ]
    behaviors = [
        {"user_id": "U1", "type": "click", "item_id": "I1", "ts": 1},
        {"user_id": "U2", "type": "purchase", "item_id": "I3", "ts": 3},
    ]
    samples = [
        {"sample_id": "X1", "session_id": "C1", "turn": 3, "candidates": ["I1", "I2", "I3"], "label_item": "I2",
         "split": "train"},
        {"sample_id": "X2", "session_id": "C2", "turn": 1, "candidates": ["I3", "I1"], "label_item": "I3",
         "split": None},
    ]
    return dict(users=users, items=items, sessions=sessions, behaviors=behaviors, samples=samples)


def write_corpus(root: Path, recs: dict, raw_lines: dict[str, list] | None = None) -> Path:
    """Write ``recs`` as JSON Lines; ``raw_lines[name]`` (str or bytes lines) replaces a table verbatim."""
    root.mkdir(parents=True, exist_ok=True)
    for name, rows in recs.items():
        if raw_lines and name in raw_lines:
            data = b"".join((x if isinstance(x, bytes) else x.encode("utf-8")) + b"\n" for x in raw_lines[name])
        else:
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        (root / f"{name}.jsonl").write_bytes(data)
    return root


def write_corpus(root: Path, recs: dict, raw_lines: dict[str, list] | None = None) -> Path:
    """Write ``recs`` as JSON Lines; ``raw_lines[name]`` (str or bytes lines) replaces a table verbatim."""
    root.mkdir(parents=True, exist_ok=True)
    for name, rows in recs.items():
        if raw_lines and name in raw_lines:
            data = b"".join((x if isinstance(x, bytes) else x.encode("utf-8")) + b"\n" for x in raw_lines[name])
        else:
            data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
        (root / f"{name}.jsonl").write_bytes(data)
    return root


def make_corpus(items: dict, sessions: dict, samples: list) -> Corpus:
    """A corpus from compact descriptions, through ``Corpus.from_records`` (one user ``U``, shop ``S``).

    items: {item_id: (category, title, {attribute: value})}; the k-th item costs k
    sessions: {session_id: [(role, text, prefs)]} -- prefs None = not annotated, else [(text, type)]
    samples: [(sample_id, session_id, turn, [candidates], label_item, split)]
    """
    return Corpus.from_records(
        users=[{"user_id": "U", "profile": {}}],
        items=[{"item_id": i, "category": c, "shop_id": "S", "title": t, "price": float(k), "attributes": a}
               for k, (i, (c, t, a)) in enumerate(items.items())],
        sessions=[{"session_id": sid, "user_id": "U", "shop_id": "S", "turns": [
            {"role": role, "text": text, "items": [],
             **({} if prefs is None else {"preference_words": [{"text": w, "type": ty} for w, ty in prefs]})}
            for role, text, prefs in turns]} for sid, turns in sessions.items()],
        samples=[{"sample_id": x, "session_id": s, "turn": t, "candidates": cs, "label_item": lab, "split": sp}
                 for x, s, t, cs, lab, sp in samples],
    )


def kg_corpus() -> Corpus:
    """The knowledge-graph corpus, built straight from DataFrames because it is deliberately off
    the contract: a behaviour on an item missing from the KB (I9, must map to OOV) and a numeric
    ``age``. Triple counts in tests/test_kg.py are checked by hand against it."""
    users = pd.DataFrame({
        "user_id": ["U1", "U2", "U3"],
        "sex": ["男", "女", None],
        "age": [20.0, 35.0, 50.0],
        "top3_categories_recent": [["手机", "耳机"], ["手机"], []],
    })
    items = pd.DataFrame({
        "item_id": ["I1", "I2", "I3", "I4"],
        "category": ["手机", "手机", "耳机", "耳机"],
        "shop_id": ["S1", "S1", "S2", "S2"],
        "title": ["华为 手机 拍照 黑色", "小米 手机 拍照 白色", "蓝牙 耳机 降噪 黑色", "蓝牙 耳机 运动"],
        "price": [3999.0, 1999.0, 299.0, None],
    })
    item_attrs = pd.DataFrame({
        "item_id": ["I1", "I1", "I2", "I2", "I3", "I3", "I4"],
        "name": ["颜色", "品牌", "颜色", "品牌", "颜色", "品牌", "颜色"],
        "value": ["黑色", "华为", "白色", "小米", "黑色", "华为", "白色"],
    })
    sessions = pd.DataFrame({"session_id": ["D1", "D2"], "user_id": ["U1", "U2"], "shop_id": ["S1", "S2"]})
    turns = pd.DataFrame({
        "session_id": ["D1", "D1", "D1", "D1", "D2", "D2", "D2"],
        "turn_idx": [0, 1, 2, 3, 0, 1, 2],
        "role": ["user", "staff", "user", "staff", "user", "staff", "user"],
        "text": ["想要 拍照 手机", "您好", "黑色 华为 手机", "推荐 这款", "蓝牙 耳机 降噪", "推荐", "运动 耳机"],
        "intent": ["ask_rec", None, "ask_attr", None, "ask_rec", None, "ask_attr"],
        "recommend": [False, False, False, True, False, True, False],
        "pref_annotated": [False] * 7,
    })
    turn_items = pd.DataFrame({"session_id": ["D1"], "turn_idx": [3], "item_id": ["I1"]})
    pref_words = pd.DataFrame({"session_id": ["D1"], "turn_idx": [2], "text": ["黑色"], "type": ["descriptive"]})
    behaviors = pd.DataFrame({
        "user_id": ["U1", "U1", "U1", "U2", "U1"],
        "type": ["click", "click", "cart", "purchase", "click"],
        "item_id": ["I1", "I3", "I2", "I4", "I9"],  # I9 is not in the item KB -> OOV
        "ts": [1, 2, 3, 4, 5],
    })
    samples = pd.DataFrame({
        "sample_id": ["X1", "X2"], "session_id": ["D1", "D2"], "user_id": ["U1", "U2"],
        "turn": [3, 1], "label_item": ["I1", "I3"], "split": ["train", "valid"],
    })
    candidates = pd.DataFrame({
        "sample_id": ["X1", "X1", "X2", "X2"], "position": [0, 1, 0, 1],
        "item_id": ["I1", "I2", "I3", "I4"], "label": pd.array([1, 0, 1, 0], dtype="int8"),
    })
    return Corpus(users, items, item_attrs, sessions, turns, turn_items, pref_words, behaviors, samples, candidates)
