"""A tiny hand-written corpus for the CKG / KF / K-DCN tests (counts are checked by hand)."""
from __future__ import annotations

import pandas as pd

from pipelines.corpus import Corpus


def tiny_corpus() -> Corpus:
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
