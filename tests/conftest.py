"""Shared fixtures: a small hand-written Chinese corpus with known feature values."""
import pytest

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


@pytest.fixture
def tiny_corpus() -> Corpus:
    return Corpus.from_records(**tiny_records())
