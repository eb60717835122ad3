"""Embedded synthetic E-ConvRec-like corpus: Chinese pre-sales dialogues, user profiles, a product KB.

``generate_corpus(out_dir, scale, seed)`` writes the JSON Lines format of ``docs/data_format.md``
deterministically from the seed (identical seed => byte-identical files), into a temporary
directory that is renamed when complete. ``default_corpus_dir()`` generates the default corpus
into a cache directory on first use. CLI: ``python -m synth.generate --out DIR --scale default``.

World
-----
* 10 categories (手机 笔记本电脑 冰箱 洗衣机 口红 耳机 运动鞋 空调 电视 面霜), each with a brand list
  (price tier, popularity, series) and its own attribute schema (9-13 KB attributes plus 品牌 and
  型号; 50+ distinct attribute names overall) with Zipf-weighted value vocabularies (long tails of
  colour names such as 雅川青 / 远峰蓝). Prices come from the category base price, the brand tier
  and per-value price effects (more memory, bigger capacity cost more) with log-normal noise.
  JD-style titles: brand, series, key values, marketing words (descriptive words such as 拍照清晰
  appear in titles of items that have the matching attribute value). ~7% of the items have no KB
  attributes (E-ConvRec: "items without the KB").
* Shops sell 1-3 categories (brand flagship stores or multi-brand retailers); a (shop, category)
  catalogue has 10-66 items. Sizes: ``tiny`` 200 sessions / ~1.7k items, ``default`` 2,000 sessions
  / ~10k items / ~2.2k samples / ~68k candidate rows, ``full`` 25,440 sessions / 24,358 users /
  ~118k items / ~28k samples / ~860k candidate rows (E-ConvRec size).
* Users: the 20 E-ConvRec profile fields; ~1.4% have an empty profile, ~4% of fields are missing.
  Latent tastes: a budget multiplier tied to ``avg_pay_monthly`` (log budget = 0.5 log(pay/1500)
  + N(0, 0.25)), a price sensitivity (``price_sensitivity`` shows it with 80% accuracy), a
  favourite brand per category group (数码 / 家电 / 美妆 / 运动; ``brand_preference`` shows the
  one of the user's first session's group 60% of the time) and a favourite colour family
  (``preferred_color`` shows it 75% of the time). Behaviour logs (click / cart / favorite /
  purchase, before the user's first session) pick items by the same taste utility.
* Dialogues: 2..100 exchanges (user block + staff block, 1-2 utterances each), mostly 3-12, mode
  ~7. Greeting, category request, preference statements of the four E-ConvRec kinds (descriptive:
  attribute values, colour families, brands, descriptive words mapped to attribute values;
  category; negative: 不要金色 / 别太贵 / 除了黑色; comparative: 3000以内 / 低于3000 / 便宜一点 /
  大于200G), staff questions and answers, staff recommendations linking items, user feedback,
  logistics / invoice / promotion chatter, the recommendation turn (staff, ``recommend=true``,
  links the purchased item) and post-purchase turns. User utterances carry an intent of
  E-ConvRec table 5 (Inform Preference, Request Attributes, Don't care, Confirmation, Other) and
  ``preference_words`` annotations (text is a substring of the utterance). ~12% of the sessions
  have a second purchase episode (E-ConvRec: 32.6k cases in 25.4k sessions).
* Samples: the purchased item plus up to 30 hard negatives: items of the same shop and category
  (the staff only links those), filled from other shops of the category when the catalogue is
  small; ~5% of samples have fewer candidates (15-30), ~30.6 on average. Candidate order is random.

Purchase model (the "true utility")
-----------------------------------
For a sample of user u in category c with candidate set C, the bought item is
``argmax_{i in C} U_i + G_i`` with ``G_i ~ Gumbel(0, TAU)``, ``TAU = 0.3``, and
``U_i = BF_i + CF_i + IF_i`` (weights are the ``W_*`` constants below):

* BF, profile fit: ``-a_u |ln(price_i / B_uc)| + 1.2 [brand_i = fav_brand_u(group of c)]
  + 0.8 [colour family_i = fav_colour_u]`` with ``B_uc = median price of c * budget_u`` and
  ``a_u`` = 1.8 / 1.2 / 0.7 for high / medium / low latent price sensitivity. The profile shows
  these tastes only noisily (``avg_pay_monthly`` -> budget up to N(0, 0.25) in log space;
  ``brand_preference`` right 60%, ``preferred_color`` 75%, ``price_sensitivity`` 80%).
* CF, preferences stated in user turns before the recommendation turn: ``+0.7`` per positive
  preference the item matches (an attribute value, a descriptive word's value set such as
  拍照清晰 -> 后摄主像素 in {5000万像素, 1亿像素}, a colour family, a brand), ``-1.6`` per negative
  preference it matches (rejected colour family / brand / value; 别太贵: price above 1.15x the
  shop's median), ``-1.3`` per comparative constraint it violates (price above the stated
  threshold; 便宜一点: not cheaper than the last linked item; attribute thresholds such as
  大于200G). Category words have no effect (all candidates share the category). Users state 0-4
  positive preferences (plus a brand 30% of the time), a negative one in ~25% and a comparative
  one in ~22% of the episodes, drawn from an item they like (``p ~ exp(0.5 BF)``).
* IF, interaction: ``+1.0`` if the item was linked (by the staff or the user) in a turn before the
  recommendation turn, ``+0.6`` more if it was in the last linking staff turn (or linked by the
  user), ``+4.0 x`` its mean attribute overlap (KB attributes incl. 品牌 / 型号) with the other
  linked items. Items of a series (brand + 型号) share most specs, so variants of a linked item
  profit too: the purchase is often a sibling of a linked item rather than the linked item.

The staff links items of the shop's own catalogue chosen by a noisy reading of the user
(``0.8 CF so far + 0.5 BF + Gumbel(0, 3)``), 1-3 at a time, in a staff block with probability
0.6 decaying by 0.8 per linking block. So blocks are correlated but complementary.

Measured on ``default`` (seed 0; ``truth_diagnostics``; ``full`` is within 0.02):

==========================  =====  ======
ranking by                  Top@1  AUC
==========================  =====  ======
true utility (BF+CF+IF)     0.58   0.86
IF alone                    0.30   0.76
CF alone                    0.15   0.70
BF alone                    0.14   0.69
BF+CF                       0.27   0.78
BF+IF                       0.42   0.81
random (1/#candidates)      0.033  0.50
==========================  =====  ======

The purchased item is linked before the recommendation turn in ~57% of the samples; a sample has
~4.0 linked candidates (3.5 not bought). A logistic regression on observable proxies of each
block (``truth_diagnostics(learnable=True)``: BF from the profile fields, CF the stated-preference
score, IF linked / recency / attribute overlap) gives the E-ConvRec table 8 ordering:
AUC BF 0.65 < BF+CF 0.76 < BF+IF 0.80 < BF+IF+CF 0.86 (Top@1 0.09 / 0.23 / 0.27 / 0.34).
``_truth.parquet`` (ignored by the loader) holds, per candidate: sample_id, item_id, bf, cf, if_,
utility (= bf + cf + if_), gumbel (the noise drawn, scale TAU), mentioned, recent and sim.
"""
from __future__ import annotations

import argparse
import bisect
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import env
from core.corpus import BEHAVIOR_TYPES, PROFILE_FIELDS

GENERATOR_VERSION = 2
N_CANDIDATES = 31  # the purchased item + at most 30 hard negatives
# purchase model (module doc); tuned on `default` so that the blocks rank IF > CF > BF
TAU = 0.3  # Gumbel noise scale of the purchase
W_PRICE = {"高": 1.8, "中": 1.2, "低": 0.7}  # |log(price / budget)| weight by latent price sensitivity
W_BRAND, W_COLOUR = 1.2, 0.8
W_POS, W_NEG, W_CMP = 0.7, 1.6, 1.3
W_MENTION, W_RECENT, W_SIM = 1.0, 0.6, 4.0
SERIES_SHARE, SERIES_COLOUR_SHARE = 0.65, 0.25  # chance that an item keeps its series' value of an attribute
STAFF_NOISE = 3.0  # Gumbel scale of the staff's choice of items to link
P_MENTION, MENTION_DECAY = 0.6, 0.8  # chance that a staff block links items, decaying per linking block
TRUTH_FILE = "_truth.parquet"
INFO_FILE = "_generator.json"

SCALES = {
    "tiny": dict(n_sessions=200, n_users=190, n_catalogues=40),
    "default": dict(n_sessions=2000, n_users=1920, n_catalogues=240),  # the main job fits 10 min on 2 cores
    "full": dict(n_sessions=25440, n_users=24358, n_catalogues=2940),
}

# ------------------------------------------------------------------------------------------------
# knowledge: categories, brands, attributes
# ------------------------------------------------------------------------------------------------
COLOUR_FAMILY = {
    **{c: c for c in "黑色 白色 银色 灰色 金色 蓝色 红色 粉色 绿色 紫色 棕色 橙色".split()},
    "雅川青": "绿色", "远峰蓝": "蓝色", "冰霜银": "银色", "曜石黑": "黑色", "星河银": "银色", "深空灰": "灰色",
    "玫瑰金": "金色", "钛金属原色": "银色", "午夜色": "黑色", "星光色": "白色", "冰川蓝": "蓝色", "浅草绿": "绿色",
    "幻夜紫": "紫色", "钛晶灰": "灰色", "巴赫金": "金色", "星蕴银": "银色", "月光白": "白色", "黑白": "黑色",
    "樱花粉": "粉色", "薄荷绿": "绿色", "陶瓷白": "白色", "琥珀棕": "棕色", "日落橙": "橙色", "暗夜黑": "黑色",
    "#999 正红色": "红色", "#888 番茄红": "红色", "豆沙色": "粉色", "枫叶红": "红色", "斩男色": "粉色",
    "奶茶色": "棕色", "砖红色": "红色", "珊瑚橘": "橙色", "玫粉色": "粉色", "暗红色": "红色", "焦糖色": "棕色",
    "梅子色": "紫色", "烂番茄色": "红色", "蜜桃色": "粉色",
}
COLOUR_FAMILIES = ["黑色", "白色", "银色", "灰色", "金色", "蓝色", "红色", "粉色", "绿色", "紫色", "棕色", "橙色"]
_FAM_ID = {f: i for i, f in enumerate(COLOUR_FAMILIES)}


@dataclass
class _Spec:
    name: str
    words: list[str]  # category words used in dialogues (first = canonical)
    group: str
    base: float  # typical price
    sigma: float  # log-normal price noise
    pop: float  # share of sessions
    brands: list[tuple]  # (brand, price tier, popularity, [series])
    attrs: list[tuple]  # (name, [values], [log price effects] | None, zipf alpha)
    title: str  # format string over attribute names, 品牌, 型号, {tail}, {mk}
    tail: list[str]
    desc: list[tuple]  # (word, attribute, [values])
    comp: list[tuple]  # (phrase, template with {w}, attribute, [values that satisfy it])
    marketing: list[str]
    colour_attr: str | None = "颜色"
    pref_attrs: list[str] = field(default_factory=list)  # attributes users talk about
    exclusive: dict = field(default_factory=dict)  # attribute -> {brand: values only that brand has}
    forced: dict = field(default_factory=dict)  # attribute -> {brand: the value all its items have}


def _v(s: str) -> list[str]:
    return s.split("|")


SPECS: list[_Spec] = [
    _Spec(
        "手机", ["手机", "智能手机"], "数码", 2600, 0.12, 0.2,
        [("华为", 1.25, 20, ["Mate 60", "Mate 60 Pro", "P60", "nova 12", "畅享 70"]),
         ("苹果", 1.6, 20, ["iPhone 15", "iPhone 15 Pro", "iPhone 15 Pro Max", "iPhone 14"]),
         ("小米", 0.85, 18, ["小米14", "小米14 Pro", "Redmi K70", "Redmi Note 13"]),
         ("OPPO", 0.95, 10, ["Find X7", "Reno11", "A2"]), ("vivo", 0.95, 10, ["X100", "S18", "iQOO 12", "Y78"]),
         ("荣耀", 0.9, 9, ["Magic6", "荣耀100", "X50"]), ("一加", 0.85, 4, ["一加12", "一加Ace 3"]),
         ("三星", 1.2, 4, ["Galaxy S24", "Galaxy Z Flip5"]), ("魅族", 0.75, 2, ["魅族21"]),
         ("真我", 0.6, 2, ["GT5", "12 Pro"])],
        [("颜色", _v("黑色|白色|蓝色|紫色|绿色|金色|雅川青|远峰蓝|冰霜银|曜石黑|星河银|钛金属原色|樱花粉|幻夜紫"), None, 0.9),
         ("运行内存", _v("8GB|12GB|16GB"), [0, .12, .25], 0.6),
         ("机身存储", _v("256GB|128GB|512GB|1TB"), [.12, 0, .28, .5], 0.9),
         ("屏幕尺寸", _v("6.7英寸|6.1英寸|6.4英寸|6.8英寸|6.6英寸"), None, 0.8),
         ("处理器", _v("骁龙8 Gen3|天玑9300|骁龙8 Gen2|麒麟9000S|A17 Pro|天玑8200|骁龙7 Gen3"),
          [.2, .18, .1, .15, .3, -.1, -.15], 0.7),
         ("后摄主像素", _v("5000万像素|4800万像素|1亿像素|6400万像素|1300万像素"), [.05, 0, .1, 0, -.2], 0.8),
         ("电池容量", _v("5000mAh|4500mAh|5500mAh|4000mAh"), None, 0.8),
         ("充电功率", _v("66W|100W|120W|25W|45W"), [0, .05, .08, -.05, 0], 0.8),
         ("网络类型", _v("5G|4G"), [0, -.3], 1.5),
         ("屏幕材质", _v("OLED|LCD"), [.05, -.1], 1.2),
         ("机身重量", _v("190-210g|170-190g|210g以上|170g以下"), None, 0.8),
         ("上市时间", _v("2023年|2024年|2022年"), [0, .1, -.15], 1.0)],
        "{品牌} {型号} {运行内存}+{机身存储} {颜色} {网络类型}{tail} {mk}", ["手机", "智能手机", "全网通手机"],
        [("拍照清晰", "后摄主像素", ["5000万像素", "1亿像素"]), ("续航长", "电池容量", ["5000mAh", "5500mAh"]),
         ("打游戏", "处理器", ["骁龙8 Gen3", "天玑9300", "A17 Pro"]), ("快充", "充电功率", ["100W", "120W"]),
         ("大屏", "屏幕尺寸", ["6.7英寸", "6.8英寸"]), ("轻薄", "机身重量", ["170g以下", "170-190g"])],
        [("大于200G", "存储要{w}的", "机身存储", ["256GB", "512GB", "1TB"]),
         ("12G以上", "运行内存{w}", "运行内存", ["12GB", "16GB"])],
        ["旗舰", "新品", "官方正品", "学生", "游戏手机", "拍照手机", "5G"],
        pref_attrs=["颜色", "运行内存", "机身存储", "处理器", "后摄主像素", "电池容量", "屏幕尺寸", "充电功率"],
        exclusive={"处理器": {"苹果": ["A17 Pro"], "华为": ["麒麟9000S"]}},
    ),
    _Spec(
        "笔记本电脑", ["笔记本电脑", "笔记本", "电脑"], "数码", 5200, 0.12, 0.1,
        [("联想", 1.0, 20, ["ThinkPad X1", "小新Pro 14", "拯救者Y9000P", "YOGA Air"]),
         ("华为", 1.1, 12, ["MateBook 14", "MateBook X Pro", "MateBook D 16"]),
         ("苹果", 1.5, 14, ["MacBook Air", "MacBook Pro"]), ("戴尔", 1.0, 10, ["灵越14", "XPS 13", "游匣G15"]),
         ("惠普", 0.95, 10, ["星14", "暗影精灵9", "战66"]), ("华硕", 0.95, 10, ["无畏Pro", "天选4", "ROG幻16"]),
         ("小米", 0.8, 6, ["Redmi Book 14", "小米笔记本Pro"]), ("宏碁", 0.8, 5, ["传奇Young", "暗影骑士"])],
        [("颜色", _v("银色|深空灰|黑色|白色|蓝色|星光色|午夜色"), None, 1.0),
         ("屏幕尺寸", _v("14英寸|15.6英寸|16英寸|13.3英寸"), None, 0.8),
         ("处理器", _v("i5-13500H|i7-13700H|R7-7840H|Ultra5 125H|i9-13900HX|R5-7530U|M2|M3"),
          [0, .15, .08, .05, .35, -.2, .1, .25], 0.6),
         ("内存容量", _v("16GB|8GB|32GB"), [0, -.15, .2], 0.9),
         ("硬盘容量", _v("512GB SSD|1TB SSD|2TB SSD|256GB SSD"), [0, .12, .3, -.15], 0.9),
         ("显卡", _v("集成显卡|RTX4060|RTX4050|RTX4070"), [0, .3, .2, .45], 0.9),
         ("屏幕刷新率", _v("60Hz|120Hz|144Hz|165Hz"), [0, .05, .08, .1], 0.9),
         ("分辨率", _v("1920x1080|2560x1600|2880x1800"), [0, .08, .12], 0.8),
         ("类型", _v("轻薄本|游戏本|商务本|二合一"), None, 0.8),
         ("重量", _v("1.5-2kg|1-1.5kg|2kg以上|1kg以下"), None, 0.8),
         ("适用人群", _v("学生|商务人士|游戏玩家|设计师"), None, 0.8),
         ("操作系统", _v("Windows 11|macOS"), None, 2.0)],
        "{品牌} {型号} {屏幕尺寸} {处理器} {内存容量} {硬盘容量} {显卡} {类型}{tail} {mk}", ["笔记本电脑", "笔记本"],
        [("轻薄", "类型", ["轻薄本"]), ("打游戏", "显卡", ["RTX4060", "RTX4070"]), ("办公", "类型", ["商务本", "轻薄本"]),
         ("高清", "分辨率", ["2560x1600", "2880x1800"]), ("便携", "重量", ["1-1.5kg", "1kg以下"]),
         ("学生", "适用人群", ["学生"])],
        [("16G以上", "内存要{w}", "内存容量", ["16GB", "32GB"]), ("1T以上", "硬盘{w}", "硬盘容量", ["1TB SSD", "2TB SSD"])],
        ["高性能", "办公", "学生", "网课", "设计", "电竞", "超薄"],
        pref_attrs=["颜色", "屏幕尺寸", "处理器", "内存容量", "硬盘容量", "显卡", "类型", "重量"],
        exclusive={"处理器": {"苹果": ["M2", "M3"]}, "操作系统": {"苹果": ["macOS"]}},
        forced={"显卡": {"苹果": "集成显卡"}},
    ),
    _Spec(
        "冰箱", ["冰箱", "电冰箱"], "家电", 3000, 0.12, 0.1,
        [("海尔", 1.0, 22, ["BCD-470", "BCD-510", "BCD-218"]), ("美的", 0.9, 18, ["BCD-455", "BCD-606", "M60"]),
         ("容声", 0.85, 10, ["BCD-502", "BCD-401"]), ("西门子", 1.35, 10, ["KA92", "KM48"]),
         ("松下", 1.25, 6, ["NR-EW45", "NR-JD30"]), ("卡萨帝", 1.8, 5, ["揽光", "星蕴"]),
         ("小米", 0.75, 8, ["米家 540L", "米家 215L"]), ("TCL", 0.7, 6, ["R455", "R256"]),
         ("美菱", 0.75, 5, ["M鲜生", "BCD-360"]), ("博世", 1.3, 5, ["KGN", "KAN"])],
        [("颜色", _v("白色|银色|金色|黑色|灰色|星蕴银|玫瑰金|陶瓷白"), None, 0.8),
         ("容量", _v("451-550L|301-450L|200-300L|551L以上|200L以下"), [.15, 0, -.2, .35, -.45], 0.7),
         ("门款式", _v("对开门|十字对开门|三门|双门|多门|单门"), [.1, .15, -.05, -.15, .1, -.4], 0.7),
         ("能效等级", _v("一级能效|二级能效|三级能效"), [.08, 0, -.08], 0.8),
         ("制冷方式", _v("风冷无霜|风直冷混冷|直冷"), [.05, 0, -.15], 0.9),
         ("变频/定频", _v("变频|定频"), [.05, -.1], 1.2),
         ("面板材质", _v("钢化玻璃|金属|PCM"), None, 0.8),
         ("安装方式", _v("独立式|嵌入式"), [0, .2], 1.5),
         ("控温方式", _v("电脑控温|机械控温|智能控温"), None, 0.9),
         ("噪音", _v("36-38分贝|35分贝以下|39分贝以上"), None, 0.8),
         ("宽度", _v("70cm以上|60-70cm|60cm以下"), None, 0.8)],
        "{品牌} {型号} {容量} {门款式}{tail} {能效等级} {制冷方式} {颜色} {mk}", ["冰箱", "家用电冰箱"],
        [("省电", "能效等级", ["一级能效"]), ("大容量", "容量", ["451-550L", "551L以上"]),
         ("不结霜", "制冷方式", ["风冷无霜"]), ("静音", "噪音", ["35分贝以下"]), ("小户型", "宽度", ["60cm以下"])],
        [("400升以上", "容量要{w}的", "容量", ["451-550L", "551L以上"]),
         ("小于70cm", "宽度最好{w}", "宽度", ["60-70cm", "60cm以下"])],
        ["家用", "节能", "保鲜", "净味", "超薄", "大容量"],
        pref_attrs=["颜色", "容量", "门款式", "能效等级", "制冷方式", "变频/定频", "宽度"],
    ),
    _Spec(
        "洗衣机", ["洗衣机", "滚筒洗衣机"], "家电", 2200, 0.12, 0.08,
        [("海尔", 1.0, 22, ["EG100", "云溪", "精华洗"]), ("小天鹅", 0.95, 18, ["本色", "水魔方"]),
         ("美的", 0.85, 15, ["MG100", "元气轻氧"]), ("西门子", 1.4, 10, ["iQ300", "iQ500"]),
         ("松下", 1.2, 6, ["XQG100", "罗密欧"]), ("LG", 1.2, 5, ["蒸汽洗", "FLK"]),
         ("博世", 1.3, 5, ["WGA", "WNA"]), ("TCL", 0.65, 6, ["G100", "T10"]), ("小米", 0.7, 6, ["米家 10kg"])],
        [("颜色", _v("白色|银色|钛晶灰|巴赫金|黑色|月光白"), None, 0.8),
         ("洗涤容量", _v("10公斤|8公斤|12公斤|13公斤|3公斤"), [0, -.2, .15, .25, -.6], 0.7),
         ("产品类型", _v("滚筒|波轮|洗烘一体|迷你"), [0, -.3, .3, -.4], 0.8),
         ("能效等级", _v("一级能效|二级能效|三级能效"), [.05, 0, -.05], 0.8),
         ("电机类型", _v("变频|直驱变频|定频"), [0, .15, -.15], 0.8),
         ("烘干方式", _v("无烘干|热风烘干|热泵烘干"), [0, .15, .35], 0.8),
         ("除菌功能", _v("高温除菌|蒸汽除菌|无"), None, 0.8),
         ("智能控制", _v("APP控制|无|语音控制"), None, 0.8),
         ("开门方式", _v("前开|上开"), None, 1.2),
         ("噪音", _v("46-50分贝|45分贝以下|51分贝以上"), None, 0.8)],
        "{品牌} {型号} {洗涤容量}{产品类型}{tail} {电机类型} {能效等级} {mk}", ["洗衣机", "全自动洗衣机"],
        [("省电", "能效等级", ["一级能效"]), ("静音", "电机类型", ["直驱变频"]), ("大容量", "洗涤容量", ["12公斤", "13公斤"]),
         ("除菌", "除菌功能", ["高温除菌", "蒸汽除菌"]), ("能烘干", "产品类型", ["洗烘一体"]), ("智能", "智能控制", ["APP控制", "语音控制"])],
        [("10公斤以上", "容量{w}", "洗涤容量", ["10公斤", "12公斤", "13公斤"])],
        ["家用", "除螨", "速洗", "节能", "大容量", "智能投放"],
        pref_attrs=["颜色", "洗涤容量", "产品类型", "能效等级", "电机类型", "烘干方式", "除菌功能"],
    ),
    _Spec(
        "口红", ["口红", "唇膏"], "美妆", 260, 0.15, 0.1,
        [("迪奥", 1.3, 18, ["烈艳蓝金", "魅惑釉唇膏"]), ("圣罗兰", 1.3, 16, ["小金条", "方管"]),
         ("阿玛尼", 1.25, 14, ["红管", "权力"]), ("香奈儿", 1.4, 8, ["可可小姐", "丝绒"]),
         ("雅诗兰黛", 1.1, 8, ["花漾倾慕"]), ("MAC", 0.9, 10, ["子弹头", "时尚唇膏"]),
         ("完美日记", 0.35, 12, ["小细跟", "反重力"]), ("花西子", 0.55, 10, ["雕花口红", "玉女桃花"]),
         ("兰蔻", 1.15, 8, ["菁纯", "唇釉"]), ("纪梵希", 1.2, 6, ["小羊皮", "禁忌之吻"])],
        [("色号", _v("#999 正红色|豆沙色|枫叶红|斩男色|奶茶色|砖红色|#888 番茄红|珊瑚橘|玫粉色|暗红色|焦糖色|梅子色|烂番茄色|蜜桃色"),
          None, 0.8),
         ("质地", _v("哑光|滋润|丝绒|镜面|水光"), None, 0.8),
         ("规格", _v("3.5g|3.2g|2.5g|3.8g"), None, 0.8),
         ("功效", _v("持久不脱色|显白|保湿|不易沾杯|提气色"), None, 0.6),
         ("适用人群", _v("通用|学生党|上班族|新手"), None, 0.8),
         ("包装", _v("单支|礼盒装|套装"), [0, .35, .6], 0.9),
         ("适合肤色", _v("通用|黄皮|白皮|黑皮"), None, 0.9),
         ("产地", _v("法国|中国|美国|意大利|日本"), None, 0.9),
         ("保质期", _v("36个月|24个月|30个月"), None, 0.9)],
        "{品牌} {型号}{tail} {色号} {质地} {包装} {mk}", ["口红", "唇膏", "唇釉"],
        [("显白", "功效", ["显白"]), ("持久", "功效", ["持久不脱色"]), ("保湿", "质地", ["滋润"]),
         ("送礼", "包装", ["礼盒装", "套装"]), ("学生", "适用人群", ["学生党"]), ("不沾杯", "功效", ["不易沾杯"])],
        [],
        ["正品", "送女友", "生日礼物", "显白", "大牌", "秋冬"],
        colour_attr="色号",
        pref_attrs=["色号", "质地", "功效", "包装", "适合肤色", "适用人群"],
    ),
    _Spec(
        "耳机", ["耳机", "蓝牙耳机"], "数码", 600, 0.15, 0.1,
        [("苹果", 1.5, 18, ["AirPods Pro 2", "AirPods 3"]), ("华为", 1.1, 14, ["FreeBuds Pro 3", "FreeBuds 5i"]),
         ("索尼", 1.5, 12, ["WH-1000XM5", "WF-1000XM5", "WF-C700N"]), ("Bose", 1.6, 8, ["QC45", "QC Ultra"]),
         ("小米", 0.45, 14, ["Redmi Buds 5", "小米Buds 4 Pro"]), ("漫步者", 0.45, 12, ["W820NB", "Lolli Pro 3"]),
         ("森海塞尔", 1.7, 4, ["Momentum 4"]), ("JBL", 0.8, 6, ["Tune 230NC", "Wave Beam"]),
         ("铁三角", 1.0, 3, ["ATH-M50x"])],
        [("颜色", _v("黑色|白色|蓝色|银色|粉色|绿色|陶瓷白|薄荷绿"), None, 0.8),
         ("佩戴方式", _v("入耳式|头戴式|半入耳式|挂耳式"), [0, .3, -.1, -.05], 0.8),
         ("连接方式", _v("真无线蓝牙|头戴蓝牙|有线|蓝牙颈挂"), [0, .1, -.6, -.3], 0.8),
         ("降噪", _v("主动降噪|通话降噪|无降噪"), [.3, 0, -.2], 0.8),
         ("续航时间", _v("30小时|20小时|40小时以上|6小时"), None, 0.8),
         ("防水等级", _v("IPX4|IPX5|不防水|IPX7"), None, 0.8),
         ("蓝牙版本", _v("5.3|5.2|5.0|5.4"), None, 0.8),
         ("适用场景", _v("通勤|运动|游戏|音乐|办公"), None, 0.7),
         ("充电接口", _v("Type-C|Lightning"), None, 1.5),
         ("音质特点", _v("均衡|低音浑厚|高解析|人声清晰"), None, 0.8)],
        "{品牌} {型号} {连接方式}{tail} {降噪} {佩戴方式} {颜色} {mk}", ["耳机", "蓝牙耳机", "无线耳机"],
        [("降噪", "降噪", ["主动降噪"]), ("运动", "适用场景", ["运动"]), ("续航长", "续航时间", ["40小时以上", "30小时"]),
         ("打游戏", "适用场景", ["游戏"]), ("防水", "防水等级", ["IPX5", "IPX7"]), ("无线", "连接方式", ["真无线蓝牙", "头戴蓝牙"])],
        [("30小时以上", "续航要{w}", "续航时间", ["30小时", "40小时以上"])],
        ["通勤", "运动", "长续航", "高音质", "低延迟", "新款"],
        pref_attrs=["颜色", "佩戴方式", "连接方式", "降噪", "续航时间", "防水等级", "适用场景"],
    ),
    _Spec(
        "运动鞋", ["运动鞋", "跑鞋", "鞋子"], "运动", 450, 0.15, 0.1,
        [("耐克", 1.3, 20, ["Air Force 1", "Air Max 270", "Pegasus 40", "Dunk Low"]),
         ("阿迪达斯", 1.25, 18, ["Ultraboost", "Samba", "Superstar"]), ("李宁", 0.85, 14, ["超轻21", "韦德之道", "赤兔6"]),
         ("安踏", 0.7, 12, ["C202", "马赫", "KT9"]), ("新百伦", 1.1, 10, ["574", "990v6", "327"]),
         ("特步", 0.6, 8, ["160X", "动力巢"]), ("亚瑟士", 1.2, 8, ["GEL-KAYANO 30", "NIMBUS 25"]),
         ("匹克", 0.5, 4, ["态极"]), ("鸿星尔克", 0.45, 4, ["奇弹"]), ("361度", 0.5, 4, ["飞燃"])],
        [("颜色", _v("黑色|白色|黑白|灰色|蓝色|红色|粉色|绿色|琥珀棕|日落橙|樱花粉"), None, 0.8),
         ("适用场景", _v("跑步|休闲|篮球|训练|徒步"), [.05, 0, .1, 0, .05], 0.8),
         ("鞋面材质", _v("网面|飞织|皮革|合成革"), None, 0.8),
         ("功能", _v("减震|透气|轻便|防滑|耐磨"), None, 0.5),
         ("适用人群", _v("男士|女士|中性|儿童"), [0, 0, 0, -.3], 0.8),
         ("闭合方式", _v("系带|一脚蹬|魔术贴"), None, 1.2),
         ("鞋底材质", _v("橡胶|EVA|碳板|发泡中底"), [0, -.05, .35, .1], 0.8),
         ("款式", _v("低帮|中帮|高帮"), None, 1.0),
         ("上市季节", _v("2024年春季|2023年秋季|2024年夏季|2023年冬季"), None, 0.8)],
        "{品牌} {型号} {适用人群}{适用场景}{tail} {鞋面材质} {功能} {颜色} {mk}", ["运动鞋", "跑鞋", "休闲鞋"],
        [("透气", "功能", ["透气"]), ("轻便", "功能", ["轻便"]), ("跑步", "适用场景", ["跑步"]),
         ("打篮球", "适用场景", ["篮球"]), ("防滑", "功能", ["防滑"]), ("耐用", "功能", ["耐磨"]), ("减震", "功能", ["减震"])],
        [],
        ["官方正品", "新款", "百搭", "缓震", "情侣款", "爆款"],
        pref_attrs=["颜色", "适用场景", "鞋面材质", "功能", "适用人群", "款式"],
    ),
    _Spec(
        "空调", ["空调", "挂机空调"], "家电", 3200, 0.12, 0.08,
        [("格力", 1.15, 22, ["云佳", "云锦", "天仪"]), ("美的", 1.0, 20, ["酷省电", "风尊", "静新风"]),
         ("海尔", 1.0, 12, ["劲爽", "静悦"]), ("奥克斯", 0.7, 8, ["京鱼座"]), ("志高", 0.6, 4, ["智享"]),
         ("海信", 0.8, 6, ["速冷热", "易省电"]), ("TCL", 0.65, 6, ["小蓝翼", "真省电"]), ("小米", 0.7, 8, ["巨省电", "自然风"]),
         ("大金", 1.6, 5, ["康达氧", "变频系列"]), ("三菱电机", 1.5, 3, ["梦享家"])],
        [("颜色", _v("白色|银色|金色|月光白"), None, 1.0),
         ("匹数", _v("1.5匹|1匹|2匹|3匹|大1匹"), [0, -.2, .3, .6, -.1], 0.8),
         ("空调类型", _v("挂机|柜机|中央空调"), [0, .4, .9], 1.0),
         ("能效等级", _v("新一级能效|新三级能效|新二级能效"), [.1, -.1, 0], 0.8),
         ("变频/定频", _v("变频|定频"), [0, -.15], 1.5),
         ("适用面积", _v("16-25㎡|10-16㎡|25-35㎡|35-50㎡"), None, 0.8),
         ("冷暖类型", _v("冷暖|单冷"), [0, -.15], 1.5),
         ("自清洁", _v("有|无"), None, 1.0),
         ("智能控制", _v("APP控制|无|语音控制"), None, 0.8),
         ("噪音", _v("普通|静音18分贝"), [0, .08], 1.0),
         ("送风", _v("普通|无风感|防直吹"), [0, .1, .05], 0.9)],
        "{品牌} {型号} {匹数}{tail} {能效等级} {变频/定频} {冷暖类型} {空调类型} {mk}", ["空调", "变频空调"],
        [("省电", "能效等级", ["新一级能效"]), ("静音", "噪音", ["静音18分贝"]), ("冷暖两用", "冷暖类型", ["冷暖"]),
         ("客厅", "空调类型", ["柜机"]), ("智能", "智能控制", ["APP控制", "语音控制"]), ("防直吹", "送风", ["无风感", "防直吹"])],
        [("1.5匹以上", "{w}的", "匹数", ["1.5匹", "2匹", "3匹"])],
        ["节能", "家用", "卧室", "以旧换新", "省电", "速冷"],
        pref_attrs=["匹数", "空调类型", "能效等级", "变频/定频", "适用面积", "冷暖类型", "噪音"],
    ),
    _Spec(
        "电视", ["电视", "电视机"], "家电", 3500, 0.12, 0.08,
        [("小米", 0.7, 18, ["Redmi A65", "小米电视S Pro"]), ("海信", 1.0, 16, ["E8K", "U7K"]), ("TCL", 0.85, 14, ["Q10K", "T7G"]),
         ("创维", 0.8, 10, ["A5F", "G33"]), ("索尼", 1.6, 8, ["X91L", "A80L"]), ("三星", 1.4, 6, ["QX3C", "S90C"]),
         ("华为", 1.3, 8, ["智慧屏V5", "智慧屏S5"]), ("长虹", 0.65, 5, ["D6P"]), ("雷鸟", 0.65, 8, ["鹏7", "雀5"]),
         ("LG", 1.4, 3, ["C3", "G3"])],
        [("颜色", _v("黑色|银色|灰色|深空灰"), None, 1.2),
         ("屏幕尺寸", _v("65英寸|55英寸|75英寸|85英寸|43英寸|100英寸"), [0, -.35, .35, .7, -.7, 1.1], 0.7),
         ("分辨率", _v("4K超高清|全高清|8K"), [0, -.3, .6], 1.2),
         ("屏幕类型", _v("LED|Mini LED|QLED|OLED"), [0, .3, .2, .5], 0.8),
         ("刷新率", _v("60Hz|120Hz|144Hz|240Hz"), [0, .1, .15, .25], 0.8),
         ("运行内存", _v("2GB|3GB|4GB"), [0, .05, .1], 0.8),
         ("存储空间", _v("32GB|64GB|128GB"), [0, .05, .1], 0.8),
         ("能效等级", _v("二级能效|一级能效|三级能效"), None, 0.8),
         ("HDR", _v("支持|不支持"), None, 1.5),
         ("语音控制", _v("远场语音|遥控器语音|无"), None, 0.8),
         ("适用场景", _v("客厅|卧室|会议室"), None, 1.2)],
        "{品牌} {型号} {屏幕尺寸} {分辨率} {屏幕类型} {刷新率}{tail} {mk}", ["电视", "平板电视", "智能电视"],
        [("大屏", "屏幕尺寸", ["75英寸", "85英寸", "100英寸"]), ("高清", "分辨率", ["4K超高清", "8K"]),
         ("打游戏", "刷新率", ["144Hz", "240Hz"]), ("护眼", "屏幕类型", ["OLED", "Mini LED"]), ("卧室", "适用场景", ["卧室"]),
         ("智能", "语音控制", ["远场语音"])],
        [("65寸以上", "要{w}的", "屏幕尺寸", ["65英寸", "75英寸", "85英寸", "100英寸"])],
        ["家用", "游戏电视", "超薄", "全面屏", "护眼", "以旧换新"],
        pref_attrs=["屏幕尺寸", "分辨率", "屏幕类型", "刷新率", "运行内存", "适用场景"],
    ),
    _Spec(
        "面霜", ["面霜", "护肤霜"], "美妆", 420, 0.15, 0.06,
        [("兰蔻", 1.3, 14, ["菁纯面霜", "发光面霜"]), ("雅诗兰黛", 1.3, 14, ["多效智妍", "胶原霜"]),
         ("海蓝之谜", 2.8, 6, ["精华面霜"]), ("娇韵诗", 1.1, 8, ["双萃", "焕颜"]), ("珀莱雅", 0.5, 14, ["红宝石", "源力"]),
         ("薇诺娜", 0.55, 12, ["舒敏保湿", "特护霜"]), ("欧莱雅", 0.6, 12, ["复颜", "玻色因"]),
         ("自然堂", 0.4, 8, ["冰肌", "雪域"]), ("资生堂", 1.2, 6, ["红妍", "悦薇"]), ("科颜氏", 1.0, 8, ["高保湿霜"])],
        [("功效", _v("补水保湿|抗皱紧致|美白淡斑|舒缓修护|控油|提亮肤色"), None, 0.6),
         ("适用肤质", _v("任何肤质|干性|混合性|敏感肌|油性"), None, 0.8),
         ("规格", _v("50ml|30ml|75ml|100ml|15ml"), [0, -.3, .25, .45, -.7], 0.8),
         ("质地", _v("乳霜|凝露|啫喱|霜状"), None, 0.8),
         ("适用人群", _v("通用|孕妇|男士|学生"), None, 0.7),
         ("适用年龄", _v("25-29岁|18-24岁|30-39岁|40岁以上"), None, 0.8),
         ("产地", _v("法国|中国|美国|日本"), None, 0.9),
         ("包装", _v("单瓶|套装礼盒"), [0, .4], 1.0),
         ("保质期", _v("36个月|24个月|30个月"), None, 0.9)],
        "{品牌} {型号}{tail} {规格} {功效} {质地} {包装} {mk}", ["面霜", "保湿面霜"],
        [("补水", "功效", ["补水保湿"]), ("保湿", "功效", ["补水保湿"]), ("美白", "功效", ["美白淡斑"]),
         ("抗老", "功效", ["抗皱紧致"]), ("敏感肌", "适用肤质", ["敏感肌"]), ("孕妇", "适用人群", ["孕妇"]),
         ("送礼", "包装", ["套装礼盒"]), ("控油", "功效", ["控油"]), ("清爽", "质地", ["凝露", "啫喱"])],
        [("50ml以上", "容量{w}", "规格", ["50ml", "75ml", "100ml"])],
        ["正品", "补水", "修护", "送妈妈", "秋冬", "礼物"],
        colour_attr=None,
        pref_attrs=["功效", "适用肤质", "规格", "质地", "适用人群", "适用年龄", "包装"],
    ),
]
GROUPS = ["数码", "家电", "美妆", "运动"]
KB_EXTRA = ("品牌", "型号")  # attributes every KB entry carries besides the category schema

# profile vocabularies
AGES = ["16-25", "26-35", "36-45", "46-55", "56+"]
LEVELS = ["注册会员", "铜牌会员", "银牌会员", "金牌会员", "钻石会员", "PLUS会员"]
POWER = ["低", "中", "较高", "高"]
EDU = ["高中及以下", "大专", "本科", "硕士及以上"]
PROFESSIONS = ["学生", "白领", "公务员", "教师", "医护", "工人", "个体经营", "自由职业", "退休", "其他"]
CITY = ["一线城市", "新一线城市", "二线城市", "三线城市", "四线及以下"]
PROVINCES = ("广东 江苏 浙江 山东 北京 上海 河南 四川 湖北 湖南 河北 福建 安徽 陕西 辽宁 重庆 江西 天津 云南 广西 "
             "山西 黑龙江 吉林 贵州 内蒙古 新疆 甘肃 海南 宁夏 青海 西藏").split()
LHM = ["高", "中", "低"]
HOURS = ["上午", "下午", "晚上", "深夜"]
DEVICES = ["Android", "iOS", "PC"]
FREQ = ["低频", "中频", "高频"]
EVERYDAY = ["话费", "零食", "牛奶", "纸品", "水果", "洗发水", "护腰", "猫粮", "咖啡", "图书", "女装", "男装", "母婴用品",
            "酒水", "厨具", "床品"]

# ------------------------------------------------------------------------------------------------
# dialogue templates
# ------------------------------------------------------------------------------------------------
T_GREET_U = ["你好", "在吗", "您好", "在不在", "hello", "你好，在吗", "客服在吗"]
T_REQ = ["我想买个{c}", "想看看{c}", "有没有{c}推荐", "你们家{c}哪款好", "帮我推荐一款{c}", "我要买{c}，有什么推荐的吗",
         "想给家里换个{c}", "最近想入手一个{c}", "请问有{c}吗"]
T_REQ2 = ["再帮我看看{c}", "另外还想买个{c}", "对了，{c}有推荐的吗", "顺便再看一下{c}"]
T_GREET_S = ["您好，欢迎光临{shop}，很高兴为您服务~", "亲，在的呢，请问有什么可以帮您？", "您好，我是客服小{n}，请问您想了解哪款商品呢？",
             "欢迎光临{shop}，亲想看点什么呢？"]
STAFF_NAMES = ["美", "李", "王", "张", "刘", "陈", "杨", "赵", "雪", "米"]
T_POS = ["想要{w}的", "最好是{w}的", "有没有{w}的", "{w}的有吗？", "主要是要{w}", "我比较看重{w}", "要{w}一点的吧",
         "希望是{w}的"]
T_BRAND = ["有{w}的吗", "想要{w}的", "我比较喜欢{w}", "{w}的怎么样"]
T_NEG = [("不要{w}的", "不要{w}"), ("不喜欢{w}", "不喜欢{w}"), ("除了{w}，其他都行", "除了{w}"), ("别推荐{w}的", "别推荐{w}"),
         ("{w}的就不考虑了，不考虑{w}", "不考虑{w}")]
T_NEG_PRICE = [("别太贵", "别太贵"), ("不要太贵的", "不要太贵"), ("太贵的就算了，别太贵", "别太贵")]
T_CMP_PRICE = [("预算{x}以内", "{x}以内"), ("有没有低于{x}的", "低于{x}"), ("价格不超过{x}", "不超过{x}"),
               ("{x}元以内的有吗", "{x}元以内")]
T_CHEAPER = [("有没有便宜一点的", "便宜一点"), ("能再便宜一点吗，预算不多", "便宜一点"), ("还有更便宜些的吗", "便宜些")]
T_ASK_ATTR_S = ["请问您对{a}有要求吗？", "亲想要什么{a}的呢？", "{a}方面有什么偏好吗？", "您比较在意{a}吗？"]
T_ASK_BUDGET_S = ["您的预算大概多少呢？", "亲预算大概在什么范围呢？"]
T_ACK_S = ["好的亲，稍等我帮您看一下", "明白了亲", "好的，收到", "嗯嗯，了解了", "好的呢，我帮您查一下"]
T_MENTION_S = ["您可以看看这款", "给您推荐这款，{v}的，很多人买", "这款{v}的挺不错的，您看看", "这几款都挺符合您的需求的",
               "亲，这款是{v}的，卖得很好哦", "可以看下这个，{v}，性价比很高"]
T_FEED_POS = ["这款看着不错", "嗯，这个挺好看的", "这个可以", "看起来还行"]
T_FEED_NEU = ["还有其他款吗", "还有别的推荐吗", "我再看看", "嗯嗯"]
T_FEED_NEG = ["这款不太喜欢", "感觉一般", "这个不太行", "不太满意这个"]
T_ASK_ATTR_U = ["这款{a}是多少？", "这个{a}怎么样", "这款的{a}是什么？", "请问{a}是多少呀"]
T_ANS_ATTR_S = ["这款{a}是{v}的哦", "亲，这款是{v}的", "{a}是{v}，放心购买"]
T_DONTCARE = ["都可以", "{a}无所谓", "{a}没什么要求", "随便，你看着推荐吧", "这个不太懂，你推荐就行"]
T_CONFIRM = ["好的", "嗯嗯", "行", "好的谢谢", "明白了"]
T_OTHER = [("什么时候发货？", "今天下单今天发货哦，一般2-3天送达"), ("能开发票吗", "可以开电子发票的亲，下单时备注就行"),
           ("有优惠吗", "现在下单立减{n}元，还有满减券可以领"), ("包邮吗", "全国包邮的亲"), ("可以分期吗", "支持12期免息哦"),
           ("保修多久", "全国联保一年，放心购买"), ("是正品吗", "官方正品，假一赔十"), ("能送货上门吗", "可以的，送货上门")]
T_ASK_REC = ["那你帮我推荐一款吧", "哪款比较好？", "你觉得哪个合适", "推荐一个吧", "那选哪个好呢"]
T_REC_PRE_S = ["好的亲", "明白了，稍等", "好的，根据您的需求"]
T_REC_S = ["综合您的需求，推荐您这款", "那亲可以入手这款，{v}，很适合您", "根据您说的，这款最适合您了",
           "这款是我们店的爆款，{v}，您可以看看", "推荐您这款，{v}，性价比很高"]
T_STAFF_TAIL = ["，有什么问题随时问我哦~", "，您可以放心购买", "，现在下单还有优惠哦", "，亲可以参考一下", "，支持七天无理由退货",
                "，库存不多了亲"]
T_USER_HEAD = ["我想问一下，", "麻烦问下，", "嗯，", "是这样的，", "我看了一下，", "那个，"]
T_BUY = ["好的，就这款了", "那我下单了", "行，我拍了", "拍了，尽快发货哦", "好，就要这个"]
T_THANKS_S = ["好的亲，感谢您的支持~", "收到，马上为您安排发货", "感谢亲的信任，有问题随时找我哦"]


class _Dice:
    """Scalar random draws for the Python parts (text), from blocks of ``rng.random``."""

    __slots__ = ("rng", "buf", "pos")

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.buf: list[float] = []
        self.pos = 0

    def u(self) -> float:
        if self.pos >= len(self.buf):
            self.buf = self.rng.random(8192).tolist()
            self.pos = 0
        v = self.buf[self.pos]
        self.pos += 1
        return v

    def i(self, n: int) -> int:
        return min(int(self.u() * n), n - 1)

    def pick(self, seq):
        return seq[self.i(len(seq))]

    def bern(self, p: float) -> bool:
        return self.u() < p


def _zipf(n: int, alpha: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** alpha
    return w / w.sum()


def _nice_price(p: np.ndarray) -> np.ndarray:
    out = np.where(p >= 1000, np.round(p / 100) * 100 - 1, np.where(p >= 100, np.round(p / 10) * 10 - 1,
                                                                     np.round(p) - 0.1))
    return np.maximum(out, 9.9)


def _nice_threshold(x: float) -> int:
    if x >= 2000:
        return int(round(x / 500) * 500)
    if x >= 200:
        return int(round(x / 100) * 100)
    return int(max(50, round(x / 10) * 10))


# ------------------------------------------------------------------------------------------------
# compiled world
# ------------------------------------------------------------------------------------------------
@dataclass
class _Cat:
    cid: int
    spec: _Spec
    brands: list[str]
    brand_gid: np.ndarray  # local brand -> global brand id
    slots: list[str]  # attribute names of the value matrix columns
    values: list[list[str]]
    colour_slot: int  # -1 when the category has no colour
    val_fam: np.ndarray  # colour value -> family id
    desc: list[tuple[str, int, np.ndarray]]  # word, slot, value ids
    comp: list[tuple[str, str, int, np.ndarray]]
    pref_slots: list[int]
    median_price: float = 0.0


class _World:
    def __init__(self):
        self.cats: list[_Cat] = []
        self.brands: list[str] = []
        bid: dict[str, int] = {}
        for cid, sp in enumerate(SPECS):
            names = [b[0] for b in sp.brands]
            for b in names:
                if b not in bid:
                    bid[b] = len(self.brands)
                    self.brands.append(b)
            slots = [a[0] for a in sp.attrs]
            values = [list(a[1]) for a in sp.attrs]
            cs = slots.index(sp.colour_attr) if sp.colour_attr else -1
            fam = np.full(max(len(v) for v in values), -1, np.int64)
            if cs >= 0:
                for k, v in enumerate(values[cs]):
                    fam[k] = _FAM_ID[COLOUR_FAMILY[v]]
            desc = [(w, slots.index(a), np.array([values[slots.index(a)].index(x) for x in vs])) for w, a, vs in sp.desc]
            comp = [(ph, tpl, slots.index(a), np.array([values[slots.index(a)].index(x) for x in vs]))
                    for ph, tpl, a, vs in sp.comp]
            self.cats.append(_Cat(cid, sp, names, np.array([bid[b] for b in names]), slots, values, cs, fam, desc, comp,
                                  [slots.index(a) for a in sp.pref_attrs]))
        self.n_slots = max(len(c.slots) for c in self.cats)
        self.group_of_cat = np.array([GROUPS.index(c.spec.group) for c in self.cats])
        # global brand popularity within each group
        self.group_brand_w = np.zeros((len(GROUPS), len(self.brands)))
        for c in self.cats:
            g = GROUPS.index(c.spec.group)
            for (b, _tier, w, _s), gid in zip(c.spec.brands, c.brand_gid):
                self.group_brand_w[g, gid] += w
        self.cat_pop = np.array([c.spec.pop for c in self.cats])
        self.cat_pop = self.cat_pop / self.cat_pop.sum()


# ------------------------------------------------------------------------------------------------
# generation
# ------------------------------------------------------------------------------------------------
class _Gen:
    def __init__(self, scale: str, seed: int):
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {sorted(SCALES)}, not {scale!r}")
        self.scale = scale
        self.seed = seed
        self.cfg = SCALES[scale]
        self.rng = np.random.default_rng(seed)
        self.d = _Dice(self.rng)
        self.W = _World()

    # -- shops and items -------------------------------------------------------------------------
    def make_shops(self):
        rng, W = self.rng, self.W
        n_cat = self.cfg["n_catalogues"]
        n_shops = max(len(W.cats), int(round(n_cat / 1.85)))
        cats_of_shop: list[list[int]] = []
        brand_of_shop: list[int] = []  # -1 = multi-brand retailer
        for s in range(n_shops):
            k = int(rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]))
            if rng.random() < 0.35:  # brand flagship: the brand's categories
                c0 = int(rng.choice(len(W.cats), p=W.cat_pop))
                cat = W.cats[c0]
                w = np.array([b[2] for b in cat.spec.brands], float)
                gid = int(cat.brand_gid[rng.choice(len(w), p=w / w.sum())])
                others = [c.cid for c in W.cats if c.cid != c0 and gid in c.brand_gid]
                extra = list(rng.permutation(others)[: k - 1]) if others else []
                cats_of_shop.append([c0] + [int(x) for x in extra])
                brand_of_shop.append(gid)
            else:
                c0 = int(rng.choice(len(W.cats), p=W.cat_pop))
                g = W.group_of_cat[c0]
                chosen = [c0]
                for _ in range(k - 1):
                    same = rng.random() < 0.7
                    pool = [c.cid for c in W.cats if c.cid not in chosen and (W.group_of_cat[c.cid] == g) == same]
                    if not pool:
                        pool = [c.cid for c in W.cats if c.cid not in chosen]
                    chosen.append(int(pool[rng.integers(len(pool))]))
                cats_of_shop.append(chosen)
                brand_of_shop.append(-1)
        for c in range(len(W.cats)):  # every category has at least two catalogues
            for _ in range(2 - sum(c in cs for cs in cats_of_shop)):
                retailers = [s for s in range(n_shops) if brand_of_shop[s] < 0 and c not in cats_of_shop[s]]
                s = retailers[rng.integers(len(retailers))] if retailers else int(rng.integers(n_shops))
                if c not in cats_of_shop[s]:
                    cats_of_shop[s].append(c)
        ids = np.sort(rng.choice(np.arange(100000, 999999), size=n_shops, replace=False))
        self.shop_ids = [str(x) for x in rng.permutation(ids)]
        prefixes = ["鑫源", "百联", "优品", "华强", "鼎盛", "恒信", "嘉禾", "汇通", "博远", "星辰", "锦程", "悦享", "云海", "聚德"]
        suffix = {"数码": "数码专营店", "家电": "电器专营店", "美妆": "美妆专营店", "运动": "运动专营店"}
        names = []
        used: dict[str, int] = {}
        for s in range(n_shops):
            if brand_of_shop[s] >= 0:
                base = f"{W.brands[brand_of_shop[s]]}官方旗舰店"
            else:
                base = prefixes[rng.integers(len(prefixes))] + suffix[W.cats[cats_of_shop[s][0]].spec.group]
            used[base] = used.get(base, 0) + 1
            names.append(base if used[base] == 1 else f"{base}{used[base]}号店")
        self.shop_names = names
        self.shop_cats = cats_of_shop
        self.shop_brand = brand_of_shop

    def make_items(self):
        rng, W = self.rng, self.W
        cat_rows: list[tuple[int, int, int]] = []  # (shop, category, size)
        for s, cs in enumerate(self.shop_cats):
            for c in cs:
                big = rng.random() < 0.85
                size = int(rng.integers(32, 67)) if big else int(rng.integers(10, 31))
                cat_rows.append((s, c, size))
        self.catalogues = cat_rows
        n = sum(r[2] for r in cat_rows)
        S = W.n_slots
        item_cat = np.empty(n, np.int64)
        item_shop = np.empty(n, np.int64)
        item_cl = np.empty(n, np.int64)
        starts = []
        pos = 0
        for k, (s, c, size) in enumerate(cat_rows):
            starts.append(pos)
            item_cat[pos:pos + size] = c
            item_shop[pos:pos + size] = s
            item_cl[pos:pos + size] = k
            pos += size
        self.cat_start = np.array(starts)
        self.cat_size = np.array([r[2] for r in cat_rows])
        vals = np.full((n, S), -1, np.int64)
        brand_local = np.zeros(n, np.int64)
        series = np.zeros(n, np.int64)
        price = np.zeros(n)
        fam = np.full(n, -1, np.int64)
        for cat in W.cats:
            idx = np.flatnonzero(item_cat == cat.cid)
            m = len(idx)
            if not m:
                continue
            sp = cat.spec
            bw = np.array([b[2] for b in sp.brands], float)
            # retailers carry 2-6 brands per catalogue, flagships one
            bl = np.empty(m, np.int64)
            cl_of = item_cl[idx]
            for k in np.unique(cl_of):
                sel = cl_of == k
                s = cat_rows[k][0]
                if self.shop_brand[s] >= 0 and self.shop_brand[s] in cat.brand_gid:
                    bl[sel] = int(np.flatnonzero(cat.brand_gid == self.shop_brand[s])[0])
                else:
                    kb = int(rng.integers(2, min(6, len(bw)) + 1))
                    carried = rng.choice(len(bw), size=kb, replace=False, p=bw / bw.sum())
                    pw = bw[carried] / bw[carried].sum()
                    bl[sel] = carried[rng.choice(kb, size=int(sel.sum()), p=pw)]
            brand_local[idx] = bl
            n_series = np.array([len(b[3]) for b in sp.brands])
            series[idx] = np.floor(rng.random(m) * n_series[bl]).astype(np.int64)
            logp = np.log(sp.base) + np.log(np.array([b[1] for b in sp.brands]))[bl]
            # a series (brand, model line) fixes most specs; variants differ in colour, memory ...
            skey = bl * 16 + series[idx]
            for j, (_name, values, eff, alpha) in enumerate(sp.attrs):
                p = _zipf(len(values), alpha)
                own = rng.choice(len(values), size=m, p=p)
                base = rng.choice(len(values), size=16 * len(sp.brands), p=p)[skey]
                keep = rng.random(m) < (SERIES_COLOUR_SHARE if j == cat.colour_slot else SERIES_SHARE)
                v = np.where(keep, base, own)
                ex = sp.exclusive.get(_name)
                if ex:  # brand-exclusive values (A17 Pro only in iPhones, ...)
                    vid = {x: k for k, x in enumerate(values)}
                    owner = np.full(len(values), -1)
                    for b, xs in ex.items():
                        for x in xs:
                            owner[vid[x]] = cat.brands.index(b)
                    free = np.flatnonzero(owner < 0)
                    fp = p[free] / p[free].sum()
                    redraw = free[rng.choice(len(free), size=m, p=fp)]
                    v = np.where((owner[v] >= 0) & (owner[v] != bl), redraw, v)
                    for b, xs in ex.items():
                        mine = np.array([vid[x] for x in xs])
                        v = np.where(bl == cat.brands.index(b), mine[rng.integers(0, len(mine), m)], v)
                for b, x in sp.forced.get(_name, {}).items():
                    v = np.where(bl == cat.brands.index(b), values.index(x), v)
                vals[idx, j] = v
                if eff is not None:
                    logp = logp + np.asarray(eff)[v]
            logp = logp + rng.normal(0, sp.sigma, m)
            price[idx] = _nice_price(np.exp(logp))
            if cat.colour_slot >= 0:
                fam[idx] = cat.val_fam[vals[idx, cat.colour_slot]]
            cat.median_price = float(np.median(price[idx]))
        self.n_items = n
        self.item_cat, self.item_shop, self.item_cl = item_cat, item_shop, item_cl
        self.item_vals, self.item_price, self.item_fam = vals, price, fam
        self.item_brand_local = brand_local
        self.item_brand = np.array([W.cats[c].brand_gid[b] for c, b in zip(item_cat.tolist(), brand_local.tolist())],
                                   np.int64) if n else np.zeros(0, np.int64)
        self.item_series = series
        self.item_has_kb = rng.random(n) >= 0.07
        self.price_null = rng.random(n) < 0.01
        gaps = rng.integers(1, 20000, size=n)
        ids = 100000000000 + np.cumsum(gaps)
        self.item_ids = [str(x) for x in rng.permutation(ids)]
        self.cat_items = [np.flatnonzero(item_cat == c.cid) for c in W.cats]
        self._titles()

    def _titles(self):
        W, d = self.W, self.d
        titles = []
        for i in range(self.n_items):
            cat = W.cats[self.item_cat[i]]
            sp = cat.spec
            row = self.item_vals[i]
            fmt = {name: cat.values[j][row[j]] for j, name in enumerate(cat.slots)}
            b = int(self.item_brand_local[i])
            fmt["品牌"] = sp.brands[b][0]
            fmt["型号"] = sp.brands[b][3][self.item_series[i]]
            fmt["tail"] = d.pick(sp.tail)
            mk = [w for w, j, vs in cat.desc if row[j] in vs and d.bern(0.6)][:2]
            while len(mk) < 2 and d.bern(0.5):
                w = d.pick(sp.marketing)
                if w not in mk:
                    mk.append(w)
            fmt["mk"] = " ".join(mk)
            titles.append(" ".join(sp.title.format_map(fmt).split()))
        self.item_titles = titles

    # -- users -----------------------------------------------------------------------------------
    def make_users(self):
        rng, W = self.rng, self.W
        n = self.cfg["n_users"]
        self.n_users = n
        sex = np.where(rng.random(n) < 0.52, "女", "男")
        age = rng.choice(len(AGES), size=n, p=[.25, .38, .2, .11, .06])
        city = rng.choice(len(CITY), size=n, p=[.18, .22, .22, .2, .18])
        logpay = np.log(1500) + 0.25 * (2 - city) * 0.5 + np.array([-.5, .1, .25, .15, -.2])[age] + rng.normal(0, .75, n)
        pay = np.round(np.clip(np.exp(logpay), 20, 60000), 1)
        self.budget = np.exp(0.5 * (np.log(pay) - np.log(1500)) + rng.normal(0, 0.25, n))
        self.sens = rng.choice(3, size=n, p=[.35, .4, .25])  # index into LHM (高 中 低)
        self.fav_brand = np.zeros((n, len(GROUPS)), np.int64)
        for g in range(len(GROUPS)):
            w = W.group_brand_w[g]
            self.fav_brand[:, g] = rng.choice(len(w), size=n, p=w / w.sum())
        fam_p = np.array([[.22, .18, .1, .1, .04, .14, .06, .02, .06, .04, .02, .02],
                          [.12, .2, .08, .04, .08, .08, .12, .14, .04, .06, .02, .02]])
        self.fav_fam = np.array([rng.choice(12, p=fam_p[int(s == "女")]) for s in sex.tolist()])
        q = np.quantile(np.log(pay), [.35, .7, .9])
        pw_idx = np.searchsorted(q, np.log(pay) + rng.normal(0, .3, n))
        lvl = np.clip(np.searchsorted(np.quantile(pay, [.3, .55, .75, .9, .97]), pay) + rng.integers(-1, 2, n), 0, 5)
        married = np.where(age == 0, rng.random(n) < .12, rng.random(n) < .72)
        children = married & (rng.random(n) < .7)
        edu = rng.choice(4, size=n, p=[.2, .3, .4, .1])
        prof = np.where((age == 0) & (rng.random(n) < .5), 0,
                        np.where((age == 4) & (rng.random(n) < .6), 8, rng.choice([1, 2, 3, 4, 5, 6, 7, 9], size=n)))
        prov_w = _zipf(len(PROVINCES), 0.7)
        prov = rng.choice(len(PROVINCES), size=n, p=prov_w)
        self.interest = np.stack([rng.choice(len(W.cats), size=n, p=W.cat_pop) for _ in range(3)], 1)
        self.u_sex, self.u_age, self.u_city, self.u_pay = sex, age, city, pay
        self.u_misc = dict(pw=pw_idx, lvl=lvl, married=married, children=children, edu=edu, prof=prof, prov=prov,
                           promo=rng.choice(3, size=n), hours=rng.choice(4, size=n, p=[.15, .25, .45, .15]),
                           dev=np.where(rng.random(n) < np.clip(.25 + .1 * np.log(pay / 1500), .05, .7), 1,
                                        rng.choice([0, 2], size=n, p=[.85, .15])),
                           freq=rng.choice(3, size=n, p=[.3, .45, .25]),
                           years=np.clip(np.round(rng.gamma(2, 2.2, n)) * (age > 0) + rng.integers(0, 3, n), 0, 18))
        chars = np.array(list("abcdefghijklmnopqrstuvwxyz0123456789"))
        ids: list[str] = []
        seen: set[str] = set()
        while len(ids) < n:
            block = chars[rng.integers(0, len(chars), size=(n - len(ids), 10))]
            for r in block:
                s = "".join(r.tolist())
                if s not in seen:
                    seen.add(s)
                    ids.append(s)
        self.user_ids = ids

    def user_records(self, first_cat: np.ndarray):
        rng, W, d = self.rng, self.W, self.d
        n = self.n_users
        m = self.u_misc
        empty = rng.random(n) < 0.014
        miss = rng.random((n, 20)) < 0.04
        bp_choice = rng.random(n)
        other_g = rng.integers(0, len(GROUPS), n)
        rand_b = rng.integers(0, len(W.brands), n)
        sens_field = np.where(rng.random(n) < 0.8, self.sens, rng.integers(0, 3, n))
        col_field = np.where(rng.random(n) < 0.75, self.fav_fam, rng.integers(0, 12, n))
        recs = []
        for u in range(n):
            if empty[u]:
                recs.append({"user_id": self.user_ids[u], "profile": {}})
                continue
            g = W.group_of_cat[first_cat[u]]
            bp = self.fav_brand[u, g] if bp_choice[u] < .6 else (
                self.fav_brand[u, other_g[u]] if bp_choice[u] < .85 else rand_b[u])
            top3 = []
            if d.bern(0.5):
                top3.append(W.cats[first_cat[u]].spec.name)
            while len(top3) < 3:
                x = W.cats[self.interest[u, d.i(3)]].spec.name if d.bern(0.3) else d.pick(EVERYDAY)
                if x not in top3:
                    top3.append(x)
            if d.bern(0.5):
                top3 = top3[1:] + top3[:1]
            vals = [LEVELS[m["lvl"][u]], str(self.u_sex[u]), AGES[self.u_age[u]],
                    "已婚" if m["married"][u] else ("未婚" if d.bern(.92) else "未知"), EDU[m["edu"][u]],
                    PROFESSIONS[m["prof"][u]], "是" if m["children"][u] else "否", CITY[self.u_city[u]],
                    PROVINCES[m["prov"][u]], W.brands[bp], float(self.u_pay[u]), POWER[m["pw"][u]], top3,
                    LHM[sens_field[u]], LHM[m["promo"][u]], COLOUR_FAMILIES[col_field[u]], float(m["years"][u]),
                    HOURS[m["hours"][u]], DEVICES[m["dev"][u]], FREQ[m["freq"][u]]]
            prof = {k: v for j, (k, v) in enumerate(zip(PROFILE_FIELDS, vals)) if not miss[u, j]}
            recs.append({"user_id": self.user_ids[u], "profile": prof})
        return recs

    # -- utilities ---------------------------------------------------------------------------------
    def bf(self, u: int, c: int, idx: np.ndarray) -> np.ndarray:
        cat = self.W.cats[c]
        a = W_PRICE[LHM[self.sens[u]]]
        b = cat.median_price * self.budget[u]
        out = -a * np.abs(np.log(self.item_price[idx] / b))
        out += W_BRAND * (self.item_brand[idx] == self.fav_brand[u, self.W.group_of_cat[c]])
        out += W_COLOUR * (self.item_fam[idx] == self.fav_fam[u])
        return out

    # -- sessions ----------------------------------------------------------------------------------
    def make_sessions(self):
        rng, W = self.rng, self.W
        n = self.cfg["n_sessions"]
        nu = self.n_users
        users = np.concatenate([rng.permutation(nu), rng.integers(0, nu, max(0, n - nu))])[:n]
        users = users[rng.permutation(n)]
        cat_choice = np.where(rng.random(n) < 0.7, self.interest[users, rng.integers(0, 3, n)],
                              rng.choice(len(W.cats), size=n, p=W.cat_pop))
        # exchanges: log-normal (mode ~7, mean ~11) with a 1% long tail up to 100
        ex = np.clip(np.round(np.exp(rng.normal(np.log(9.5), 0.55, n))), 2, 100).astype(int)
        tail = rng.random(n) < 0.01
        ex[tail] = rng.integers(30, 101, int(tail.sum()))
        self.session_ts = rng.integers(1609430400, 1640966400, n)  # 2021
        second = (rng.random(n) < 0.13) & (ex >= 6)
        cats_by = [np.flatnonzero(np.array([c == k for (_s, c, _z) in self.catalogues])) for k in range(len(W.cats))]
        self.sessions_out, self.samples_out, self.truth = [], [], []
        first_cat = np.full(nu, -1)
        order_first = np.argsort(self.session_ts, kind="stable")
        for si in order_first.tolist():
            u = users[si]
            if first_cat[u] < 0:
                first_cat[u] = cat_choice[si]
        first_cat = np.where(first_cat < 0, self.interest[:, 0], first_cat)
        self.first_cat = first_cat
        self.session_user = users
        self.session_cat = cat_choice
        for si in range(n):
            c = int(cat_choice[si])
            cl = cats_by[c]
            k = int(cl[rng.choice(len(cl), p=self.cat_size[cl] / self.cat_size[cl].sum())])
            self._session(si, int(users[si]), k, int(ex[si]), bool(second[si]))

    def _session(self, si: int, u: int, k: int, n_ex: int, second: bool):
        sid = f"s{si + 1:06d}"
        shop = self.catalogues[k][0]
        turns: list[dict] = []
        eps = [n_ex]
        if second:
            a = max(3, int(round(n_ex * 0.55)))
            eps = [a, max(3, n_ex - a)]
        exclude: set[int] = set()
        linked: set[int] = set()  # items linked so far in the session (context of later episodes)
        for e, ex in enumerate(eps):
            if e == 0:
                kk = k
            else:
                cats = [c for c in self.shop_cats[shop] if c != self.catalogues[k][1]]
                c2 = self.d.pick(cats) if cats and self.d.bern(0.7) else self.catalogues[k][1]
                kk = self._cl_index.get((shop, c2), k)
            self._episode(sid, f"{sid}_{e + 1}", u, kk, ex, turns, e, exclude, linked)
        self.sessions_out.append({"session_id": sid, "user_id": self.user_ids[u], "shop_id": self.shop_ids[shop],
                                  "turns": turns})

    def _pool(self, k: int, exclude: set[int]) -> tuple[np.ndarray, int]:
        rng = self.rng
        s, c, size = self.catalogues[k]
        own = self.cat_start[k] + np.arange(size)
        if exclude:
            own = own[~np.isin(own, list(exclude))]
        target = N_CANDIDATES if rng.random() >= 0.05 else int(rng.integers(15, 31))
        if len(own) >= target:
            pool = rng.choice(own, size=target, replace=False)
            return pool, target
        others = self.cat_items[c]
        others = others[(self.item_cl[others] != k)]
        if exclude:
            others = others[~np.isin(others, list(exclude))]
        fill = rng.choice(others, size=min(len(others), target - len(own)), replace=False)
        return np.concatenate([own, fill]), len(own)

    def _episode(self, sid, smp_id, u, k, E, turns, e_no, exclude, linked):
        rng, d, W = self.rng, self.d, self.W
        shop, c, _size = self.catalogues[k]
        cat = W.cats[c]
        sp = cat.spec
        pool, n_own = self._pool(k, exclude)
        P = len(pool)
        own = np.zeros(P, bool)
        own[:n_own] = True
        vals = self.item_vals[pool]
        price = self.item_price[pool]
        bf = self.bf(u, c, pool)
        # --- preferences (from an item the user likes) ---
        tw = np.exp(0.5 * bf[:n_own])
        target = int(rng.choice(n_own, p=tw / tw.sum()))
        prefs = self._prefs(cat, vals, price, target, own, pool)
        # --- plan ---
        if E == 1:
            n_post = 0
        else:
            n_post = min(E - 1, int(rng.choice([0, 1, 2, 3], p=[.25, .45, .2, .1])) + max(0, (E - 14) // 4))
        r = E - 1 - n_post
        blocks = min(r + 1, len(prefs) + 3) if prefs else 1
        sched: dict[int, list] = {}
        if prefs:
            where = np.sort(rng.choice(blocks, size=min(len(prefs), blocks), replace=False))
            if len(prefs) > blocks:
                where = np.sort(np.concatenate([where, rng.integers(0, blocks, len(prefs) - blocks)]))
            for p, b in zip(prefs, where.tolist()):
                sched.setdefault(b, []).append(p)
        cf = np.zeros(P)
        mentioned = np.isin(pool, list(linked)) if linked else np.zeros(P, bool)
        recent = np.zeros(P, bool)
        last_mention: list[int] = []
        n_mention_turns = 0
        asked: list = [None]  # attribute the staff just asked about
        stated: set[int] = set()
        cw = d.pick(sp.words)

        def utt(role, text, items=(), intent=None, recommend=None, pw=None):
            linked.update(int(pool[j]) for j in items)
            if role == "staff" and not text.endswith(("？", "?")) and d.bern(0.35):
                text = text.rstrip("~。") + d.pick(T_STAFF_TAIL)
            elif intent == "Inform Preference" and d.bern(0.3):
                text = d.pick(T_USER_HEAD) + text
            t = {"role": role, "text": text, "items": [self.item_ids[pool[j]] for j in items], "intent": intent,
                 "recommend": recommend}
            if role == "user":
                t["preference_words"] = pw or []
            turns.append(t)

        def say_prefs(ps, lead_text="", lead_pw=None):
            parts, pws = ([lead_text], list(lead_pw or [])) if lead_text else ([], [])
            for p in ps:
                text, annots = p.render(self, last_mention, price)
                np.add(cf, p.effect, out=cf)
                stated.add(p.slot)
                parts.append(text)
                pws.extend(annots)
            utt("user", "，".join(parts), intent="Inform Preference", pw=pws)

        # user-linked item (browsed before)
        user_link = d.bern(0.15) and n_own > 0
        for e in range(r + 1):
            ps = sched.get(e, [])
            # ---- user block ----
            if e == 0:
                if e_no == 0 and d.bern(0.6):
                    utt("user", d.pick(T_GREET_U), intent="Other")
                req = d.pick(T_REQ if e_no == 0 else T_REQ2).format(c=cw)
                if user_link:
                    j = int(rng.choice(n_own, p=tw / tw.sum()))
                    utt("user", req + "，这款怎么样？", items=[j], intent="Inform Preference",
                        pw=[{"text": cw, "type": "category"}])
                    mentioned[j] = recent[j] = True
                    if ps:
                        say_prefs(ps)
                elif ps and d.bern(0.6):
                    say_prefs(ps, req, [{"text": cw, "type": "category"}])
                else:
                    utt("user", req, intent="Inform Preference", pw=[{"text": cw, "type": "category"}])
                    if ps:
                        say_prefs(ps)
            elif ps:
                say_prefs(ps)
            elif e < r:
                if asked[0] is not None and d.bern(0.4):
                    utt("user", d.pick(T_DONTCARE[1:3]).format(a=asked[0]), intent="Don't care")
                else:
                    self._filler_user(utt, last_mention, cat, vals, bf + cf, pool)
            asked[0] = None
            if e == r:
                break
            # ---- staff block ----
            if e == 0 and e_no == 0:
                utt("staff", d.pick(T_GREET_S).format(shop=self.shop_names[shop], n=d.pick(STAFF_NAMES)),
                    recommend=False)
            p_mention = (0.2 if e == 0 else P_MENTION) * MENTION_DECAY ** n_mention_turns
            if d.bern(p_mention):
                avail = np.flatnonzero(own & ~mentioned)
                if len(avail):
                    kk = 1 if d.bern(.7) else (2 if d.bern(.85) else 3)
                    score = 0.8 * cf[avail] + 0.5 * bf[avail] + rng.gumbel(0, STAFF_NOISE, len(avail))
                    pick = avail[np.argsort(-score, kind="stable")[:kk]].tolist()
                    n_mention_turns += 1
                    recent[:] = False
                    mentioned[pick] = True
                    recent[pick] = True
                    last_mention = pick
                    v = self._value_phrase(cat, vals[pick[0]])
                    tpl = d.pick(T_MENTION_S if len(pick) > 1 else T_MENTION_S[:3] + T_MENTION_S[4:])
                    utt("staff", tpl.format(v=v), items=pick, recommend=True)
                    continue
            if d.bern(0.45):
                free = [j for j in cat.pref_slots if j not in stated]
                if free and d.bern(0.75):
                    asked[0] = cat.slots[d.pick(free)]
                    utt("staff", d.pick(T_ASK_ATTR_S).format(a=asked[0]), recommend=False)
                else:
                    utt("staff", d.pick(T_ASK_BUDGET_S), recommend=False)
            else:
                utt("staff", d.pick(T_ACK_S), recommend=False)
        # ---- recommendation exchange ----
        if r > 0 and not sched.get(r):
            if d.bern(0.6):
                utt("user", d.pick(T_ASK_REC), intent="Other")
            else:
                self._filler_user(utt, last_mention, cat, vals, bf + cf, pool)
        kb = np.column_stack([vals, self.item_brand[pool], self.item_brand[pool] * 16 + self.item_series[pool]])
        sim = self._mean_sim(kb, mentioned)
        if_ = W_MENTION * mentioned + W_RECENT * recent + W_SIM * sim
        util = bf + cf + if_
        g = rng.gumbel(0, TAU, P)
        label = int(np.argmax(util + g))
        if d.bern(0.3):
            utt("staff", d.pick(T_REC_PRE_S), recommend=False)
        rec_items = [label]
        if d.bern(0.35):
            others = [j for j in np.argsort(-util, kind="stable").tolist() if j != label and own[j]][:d.i(2) + 1]
            rec_items += others
            rec_items = [rec_items[j] for j in rng.permutation(len(rec_items)).tolist()]
        turn = len(turns)
        utt("staff", d.pick(T_REC_S).format(v=self._value_phrase(cat, vals[label])), items=rec_items, recommend=True)
        # ---- after the recommendation ----
        for e in range(n_post):
            if e == 0 and d.bern(0.75):
                utt("user", d.pick(T_BUY), intent="Confirmation")
                utt("staff", d.pick(T_THANKS_S), recommend=False)
            else:
                q, a = d.pick(T_OTHER)
                utt("user", q, intent="Other")
                utt("staff", a.format(n=d.pick([20, 50, 100, 200])), recommend=False)
        exclude.add(int(pool[label]))
        perm = rng.permutation(P)
        self.samples_out.append({"sample_id": smp_id, "session_id": sid, "turn": turn,
                                 "candidates": [self.item_ids[pool[j]] for j in perm.tolist()],
                                 "label_item": self.item_ids[pool[label]], "split": None})
        self.truth.append((smp_id, pool[perm], bf[perm], cf[perm], if_[perm], g[perm], mentioned[perm],
                           recent[perm], sim[perm]))

    def _mean_sim(self, vals: np.ndarray, mentioned: np.ndarray) -> np.ndarray:
        m = np.flatnonzero(mentioned)
        P = len(vals)
        if not len(m):
            return np.zeros(P)
        valid = vals >= 0
        eq = (vals[:, None, :] == vals[None, m, :]) & valid[:, None, :]
        sim = eq.sum(2) / np.maximum(valid.sum(1), 1)[:, None]  # (P, |M|)
        self_mask = np.arange(P)[:, None] == m[None, :]
        sim = np.where(self_mask, 0.0, sim)
        cnt = len(m) - self_mask.sum(1)
        return np.where(cnt > 0, sim.sum(1) / np.maximum(cnt, 1), 0.0)

    def _value_phrase(self, cat: _Cat, row: np.ndarray) -> str:
        d = self.d
        js = [j for j in cat.pref_slots if row[j] >= 0]
        j = d.pick(js)
        return f"{cat.values[j][row[j]]}"

    def _filler_user(self, utt, last_mention, cat, vals, partial, pool):
        d = self.d
        x = d.u()
        if last_mention and x < 0.3:
            j = last_mention[-1]
            rank = (partial < partial[j]).mean()
            if rank > 0.7:
                utt("user", d.pick(T_FEED_POS), intent="Confirmation")
            elif rank < 0.4:
                utt("user", d.pick(T_FEED_NEG), intent="Other")
            else:
                utt("user", d.pick(T_FEED_NEU), intent="Other")
            return
        if x < 0.62:
            j = d.pick(cat.pref_slots)
            a = cat.slots[j]
            utt("user", d.pick(T_ASK_ATTR_U).format(a=a), intent="Request Attributes")
            if last_mention:
                v = cat.values[j][vals[last_mention[-1], j]]
                utt("staff", d.pick(T_ANS_ATTR_S).format(a=a, v=v), recommend=False)
            return
        if x < 0.72:
            a = cat.slots[d.pick(cat.pref_slots)]
            utt("user", d.pick(T_DONTCARE).format(a=a), intent="Don't care")
            return
        if x < 0.8:
            utt("user", d.pick(T_CONFIRM), intent="Confirmation")
            return
        q, _a = d.pick(T_OTHER)
        utt("user", q, intent="Other")

    # -- preferences -----------------------------------------------------------------------------
    def _prefs(self, cat: _Cat, vals, price, target: int, own, pool) -> list["_Pref"]:
        rng, d = self.rng, self.d
        sp = cat.spec
        out: list[_Pref] = []
        k_pos = int(rng.choice(5, p=[.06, .28, .34, .22, .10]))
        slots = list(cat.pref_slots)
        # brand as a (descriptive) preference
        if d.bern(0.3):
            b = sp.brands[int(self.item_brand_local[pool[target]])][0]
            m = (self.item_brand[pool] == self.item_brand[pool[target]]).astype(float)
            t, a = d.pick(T_BRAND), b
            out.append(_Pref("pos", -2, t.format(w=b), [{"text": a, "type": "descriptive"}], W_POS * m))
            k_pos = max(0, k_pos - 1)
        order = [slots[j] for j in rng.permutation(len(slots)).tolist()]
        for j in order[:k_pos]:
            v = vals[target, j]
            if v < 0:
                continue
            if j == cat.colour_slot and cat.spec.colour_attr == "颜色":
                fam = cat.val_fam[v]
                word = COLOUR_FAMILIES[fam]
                m = (cat.val_fam[np.maximum(vals[:, j], 0)] == fam) & (vals[:, j] >= 0)
            else:
                descs = [(w, vs) for w, jj, vs in cat.desc if jj == j and v in vs]
                if descs and d.bern(0.6):
                    word, vs = d.pick(descs)
                    m = np.isin(vals[:, j], vs)
                else:
                    word = cat.values[j][v]
                    m = vals[:, j] == v
            out.append(_Pref("pos", j, d.pick(T_POS).format(w=word), [{"text": word, "type": "descriptive"}],
                             W_POS * m.astype(float)))
        # negative
        if d.bern(0.25):
            x = d.u()
            own_p = price[own]
            if x < 0.25:
                thr = float(np.median(own_p)) * 1.15
                if price[target] <= thr:
                    t, a = d.pick(T_NEG_PRICE)
                    out.append(_Pref("neg", -3, t, [{"text": a, "type": "negative"}], -W_NEG * (price > thr)))
            else:
                if x < 0.6 and cat.colour_slot >= 0:
                    j = cat.colour_slot
                elif x < 0.8:
                    j = -2
                else:
                    j = d.pick(cat.pref_slots)
                if j == -2:
                    brands = self.item_brand[pool]
                    cand = sorted(set(brands[own].tolist()) - {int(brands[target])})
                    if cand:
                        bg = d.pick(cand)
                        t, a = d.pick(T_NEG)
                        w = self.W.brands[bg]
                        out.append(_Pref("neg", -2, t.format(w=w), [{"text": a.format(w=w), "type": "negative"}],
                                         -W_NEG * (brands == bg)))
                elif j == cat.colour_slot and cat.spec.colour_attr == "颜色":
                    fams = cat.val_fam[np.maximum(vals[:, j], 0)]
                    tf = fams[target]
                    cand = sorted(set(fams[own & (vals[:, j] >= 0)].tolist()) - {int(tf)})
                    if cand:
                        f = d.pick(cand)
                        w = COLOUR_FAMILIES[f]
                        t, a = d.pick(T_NEG)
                        out.append(_Pref("neg", j, t.format(w=w), [{"text": a.format(w=w), "type": "negative"}],
                                         -W_NEG * ((fams == f) & (vals[:, j] >= 0))))
                else:
                    col = vals[:, j]
                    cand = sorted(set(col[own & (col >= 0)].tolist()) - {int(col[target])})
                    if cand:
                        v = d.pick(cand)
                        w = cat.values[j][v]
                        t, a = d.pick(T_NEG)
                        out.append(_Pref("neg", j, t.format(w=w), [{"text": a.format(w=w), "type": "negative"}],
                                         -W_NEG * (col == v)))
        # comparative
        if d.bern(0.22):
            x = d.u()
            ok_comp = [(ph, tpl, j, vs) for ph, tpl, j, vs in cat.comp if vals[target, j] in vs]
            if x < 0.25 and ok_comp:
                ph, tpl, j, vs = d.pick(ok_comp)
                out.append(_Pref("cmp", j, tpl.format(w=ph), [{"text": ph, "type": "comparative"}],
                                 -W_CMP * (~np.isin(vals[:, j], vs))))
            elif x < 0.45:
                out.append(_Pref("cheaper", -4, "", [], np.zeros(len(price))))
            else:
                thr = _nice_threshold(float(price[target]) * (1.05 + 0.45 * d.u()))
                t, a = d.pick(T_CMP_PRICE)
                out.append(_Pref("cmp", -4, t.format(x=thr), [{"text": a.format(x=thr), "type": "comparative"}],
                                 -W_CMP * (price > thr)))
        order = rng.permutation(len(out)).tolist()
        return [out[j] for j in order]

    # -- behaviours --------------------------------------------------------------------------------
    def behavior_records(self):
        rng, W = self.rng, self.W
        nu = self.n_users
        n_b = np.where(rng.random(nu) < 0.05, 0, 1 + rng.poisson(7, nu))
        uu = np.repeat(np.arange(nu), n_b)
        nb = len(uu)
        cat = np.where(rng.random(nb) < 0.5, self.first_cat[uu], self.interest[uu, rng.integers(0, 3, nb)])
        K = 8
        cands = np.empty((nb, K), np.int64)
        for c in range(len(W.cats)):
            sel = np.flatnonzero(cat == c)
            items = self.cat_items[c]
            cands[sel] = items[rng.integers(0, len(items), size=(len(sel), K))]
        med = np.array([cc.median_price for cc in W.cats])
        a = np.array([W_PRICE[x] for x in LHM])[self.sens[uu]]
        b = med[cat] * self.budget[uu]
        util = -a[:, None] * np.abs(np.log(self.item_price[cands] / b[:, None]))
        util += W_BRAND * (self.item_brand[cands] == self.fav_brand[uu, W.group_of_cat[cat]][:, None])
        util += W_COLOUR * (self.item_fam[cands] == self.fav_fam[uu][:, None])
        util += rng.gumbel(0, 1.0, util.shape)
        pick = cands[np.arange(nb), np.argmax(util, 1)]
        types = rng.choice(4, size=nb, p=[.62, .15, .1, .13])
        first_ts = np.full(nu, np.iinfo(np.int64).max)
        np.minimum.at(first_ts, self.session_user, self.session_ts)
        ts = first_ts[uu] - 60 - np.round(rng.exponential(25 * 86400, nb)).astype(np.int64)
        order = np.lexsort((ts, uu))
        return [{"user_id": self.user_ids[x], "type": BEHAVIOR_TYPES[t], "item_id": self.item_ids[i], "ts": int(s)}
                for x, t, i, s in zip(uu[order].tolist(), types[order].tolist(), pick[order].tolist(),
                                      ts[order].tolist())]

    def item_records(self):
        W = self.W
        recs = []
        for i in range(self.n_items):
            cat = W.cats[self.item_cat[i]]
            sp = cat.spec
            attrs = {}
            if self.item_has_kb[i]:
                b = int(self.item_brand_local[i])
                attrs["品牌"] = sp.brands[b][0]
                attrs["型号"] = sp.brands[b][3][self.item_series[i]]
                row = self.item_vals[i]
                for j, name in enumerate(cat.slots):
                    attrs[name] = cat.values[j][row[j]]
            recs.append({"item_id": self.item_ids[i], "category": sp.name, "shop_id": self.shop_ids[self.item_shop[i]],
                         "title": self.item_titles[i], "price": None if self.price_null[i] else float(self.item_price[i]),
                         "attributes": attrs})
        return recs

    def run(self):
        self.make_shops()
        self.make_items()
        self._cl_index = {(s, c): j for j, (s, c, _z) in enumerate(self.catalogues)}
        self.make_users()
        self.make_sessions()
        return {
            "users": self.user_records(self.first_cat),
            "items": self.item_records(),
            "sessions": self.sessions_out,
            "behaviors": self.behavior_records(),
            "samples": self.samples_out,
        }


@dataclass
class _Pref:
    kind: str  # pos | neg | cmp | cheaper
    slot: int  # attribute slot (-2 brand, -3 price negative, -4 price comparative)
    text: str
    annots: list
    effect: np.ndarray

    def render(self, g: _Gen, last_mention: list[int], price: np.ndarray):
        if self.kind == "cheaper":
            d = g.d
            if last_mention:
                ref = float(price[last_mention[-1]])
                self.effect = -W_CMP * (price >= ref)
                t, a = d.pick(T_CHEAPER)
                return t, [{"text": a, "type": "comparative"}]
            thr = _nice_threshold(float(np.median(price)))
            t, a = d.pick(T_CMP_PRICE)
            self.effect = -W_CMP * (price > thr)
            return t.format(x=thr), [{"text": a.format(x=thr), "type": "comparative"}]
        return self.text, self.annots


# ------------------------------------------------------------------------------------------------
# public API
# ------------------------------------------------------------------------------------------------
def _write_jsonl(path: Path, records) -> None:
    dumps = json.dumps
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(dumps(r, ensure_ascii=False) + "\n" for r in records)


def generate_corpus(out_dir: str | Path, scale: str = "default", seed: int = 0, return_utilities: bool = False,
                    replace: bool = True):
    """Write a synthetic corpus to ``out_dir`` (JSON Lines, ``docs/data_format.md``) and return the
    path (and, with ``return_utilities=True``, the truth table as a DataFrame). Files are written to
    a temporary sibling directory first and renamed when complete. An existing ``out_dir`` that
    looks like a corpus (or is empty) is replaced; with ``replace=False`` an ``out_dir`` that
    appeared meanwhile (another process finished first) is kept and the new files are discarded."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not ((out / "samples.jsonl").exists() or (out / INFO_FILE).exists()):
        raise FileExistsError(f"{out} exists and does not look like a generated corpus; refusing to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        g = _Gen(scale, seed)
        tables = g.run()
        for name, recs in tables.items():
            _write_jsonl(tmp / f"{name}.jsonl", recs)
        truth = _truth_frame(g)
        truth.to_parquet(tmp / TRUTH_FILE, index=False)
        info = {"generator_version": GENERATOR_VERSION, "scale": scale, "seed": seed,
                "counts": {k: len(v) for k, v in tables.items()}, "candidate_rows": int(len(truth))}
        (tmp / INFO_FILE).write_text(json.dumps(info, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
                                     encoding="utf-8")
        if out.exists():
            if not replace and (out / INFO_FILE).is_file():
                shutil.rmtree(tmp)
                return (out, truth) if return_utilities else out
            shutil.rmtree(out)
        try:
            os.replace(tmp, out)
        except OSError:
            if replace or not (out / INFO_FILE).is_file():
                raise
            shutil.rmtree(tmp)  # lost the race to a complete corpus: keep it
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return (out, truth) if return_utilities else out


def _truth_frame(g: _Gen):
    import pandas as pd

    sid, item, bf, cf, if_, gum, men, rec, sims = [], [], [], [], [], [], [], [], []
    for smp, pool, b, c, i, gg, m, r, sm in g.truth:
        rec.append(r)
        sims.append(sm)
        sid.extend([smp] * len(pool))
        item.append(pool)
        bf.append(b)
        cf.append(c)
        if_.append(i)
        gum.append(gg)
        men.append(m)
    cat = (lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt))
    items = cat(item, np.int64)
    df = pd.DataFrame({"sample_id": pd.Series(sid, dtype="str"),
                       "item_id": pd.Series([g.item_ids[i] for i in items.tolist()], dtype="str"),
                       "bf": cat(bf, np.float64), "cf": cat(cf, np.float64), "if_": cat(if_, np.float64)})
    df["utility"] = df["bf"] + df["cf"] + df["if_"]
    df["gumbel"] = cat(gum, np.float64)
    df["mentioned"] = cat(men, bool)
    df["recent"] = cat(rec, bool)
    df["sim"] = cat(sims, np.float64)
    return df


def load_truth(corpus_dir: str | Path):
    """The generator's per-candidate truth table (``_truth.parquet``)."""
    import pandas as pd

    return pd.read_parquet(Path(corpus_dir) / TRUTH_FILE)


def truth_diagnostics(corpus_dir: str | Path, corpus=None, learnable: bool = False) -> dict:
    """Top@1 / AUC of ranking candidates by the true utility and by each block alone, the random
    baseline, and the mention rate of the purchased item (see the module doc). ``learnable`` adds
    the E-ConvRec table 8 ablation (BF, BF+CF, BF+IF, BF+IF+CF) of a logistic regression on
    observable proxies of each block (``lr_top1_*``, ``lr_auc_*``)."""
    import pandas as pd

    from core.corpus import load_corpus

    corpus = corpus if corpus is not None else load_corpus(corpus_dir)
    truth = load_truth(corpus_dir)
    rows = corpus.candidates[["sample_id", "item_id", "label"]]
    df = rows.merge(truth, on=["sample_id", "item_id"], how="left", validate="one_to_one")
    if df["utility"].isna().any():
        raise ValueError("truth table does not cover the corpus's candidates")
    rng = np.random.default_rng(12345)
    df["tiebreak"] = rng.random(len(df)) * 1e-9
    df["random"] = rng.random(len(df))
    df["bf_cf"] = df["bf"] + df["cf"]
    df["bf_if"] = df["bf"] + df["if_"]
    df["bf_cf_if"] = df["bf"] + df["cf"] + df["if_"]
    out: dict = {"samples": int(df["sample_id"].nunique()), "candidate_rows": int(len(df)),
                 "mean_candidates": float(len(df) / max(1, df["sample_id"].nunique()))}
    for col in ["utility", "bf", "cf", "if_", "bf_cf", "bf_if", "bf_cf_if", "random"]:
        s = df[col] + df["tiebreak"]
        best = s.groupby(df["sample_id"], sort=False).transform("max")
        top1 = float(((s == best) & (df["label"] == 1)).groupby(df["sample_id"], sort=False).any().mean())
        out[f"top1_{col}"] = top1
        out[f"auc_{col}"] = _auc(df["label"].to_numpy(), s.to_numpy())
    out["random_expected_top1"] = float((1.0 / df.groupby("sample_id", sort=False).size()).mean())
    lab = df[df["label"] == 1]
    out["label_mentioned_rate"] = float(lab["mentioned"].mean())
    out["mean_mentioned_per_sample"] = float(df.groupby("sample_id", sort=False)["mentioned"].sum().mean())
    out["mean_mentioned_non_label"] = float(df[df["label"] == 0].groupby("sample_id", sort=False)["mentioned"].sum()
                                            .reindex(df["sample_id"].unique(), fill_value=0).mean())
    if learnable:
        out.update(_learnable_ablation(corpus, df))
    return out


def _observable_bf(corpus, df):
    """Profile-fit proxies a ranker could compute from the files: |log(price / budget proxy)| with
    the budget proxy from avg_pay_monthly and the category's median price (also split by the
    price_sensitivity field), brand == brand_preference, colour family == preferred_color."""
    import pandas as pd

    s = corpus.samples.set_index("sample_id")["user_id"]
    it = corpus.items.set_index("item_id")
    a = corpus.item_attrs
    brand = a[a["name"] == "品牌"].drop_duplicates("item_id").set_index("item_id")["value"]
    colour = a[a["name"] == "颜色"].drop_duplicates("item_id").set_index("item_id")["value"].map(COLOUR_FAMILY)
    u = corpus.users.set_index("user_id")
    uid = df["sample_id"].map(s)
    cat = df["item_id"].map(it["category"])
    price = df["item_id"].map(it["price"]).astype(float)
    med = it.groupby("category")["price"].median()
    pay = uid.map(u["avg_pay_monthly"]).astype(float).fillna(float(u["avg_pay_monthly"].median()))
    budget = cat.map(med).astype(float) * np.sqrt(pay / 1500.0)
    gap = np.abs(np.log(price / budget)).fillna(0.0)
    sens = uid.map(u["price_sensitivity"])
    X = {"gap": gap, "lp": np.log(price).fillna(float(np.log(price).median()))}
    for v in LHM:
        X[f"gap_{v}"] = gap * (sens == v)
    X["brand"] = (df["item_id"].map(brand) == uid.map(u["brand_preference"])).fillna(False).astype(float)
    X["colour"] = (df["item_id"].map(colour) == uid.map(u["preferred_color"])).fillna(False).astype(float)
    return pd.DataFrame(X)


def _learnable_ablation(corpus, df) -> dict:
    """Logistic regression on observable per-block proxies (BF: profile fit; CF: the stated-preference
    score; IF: linked flag, recency, attribute overlap with linked items), trained on the train
    split, Top@1 / AUC on valid+test: what an ideal simple ranker could get from each block."""
    from sklearn.linear_model import LogisticRegression

    bfx = _observable_bf(corpus, df)
    blocks = {"BF": bfx, "CF": df[["cf"]], "IF": df[["mentioned", "recent", "sim"]].astype(float)}
    split = df["sample_id"].map(corpus.samples.set_index("sample_id")["split"])
    tr = (split == "train").to_numpy()
    te = ~tr
    y = df["label"].to_numpy()
    out = {}
    for name in ["BF", "BF+CF", "BF+IF", "BF+IF+CF"]:
        X = np.column_stack([blocks[b].to_numpy(float) for b in name.split("+")])
        m = LogisticRegression(max_iter=500).fit(X[tr], y[tr])
        sc = m.decision_function(X[te]) + df["tiebreak"].to_numpy()[te]
        sub = df.loc[te, ["sample_id"]].assign(s=sc, y=y[te])
        best = sub.groupby("sample_id", sort=False)["s"].transform("max")
        out[f"lr_top1_{name}"] = float(((sub["s"] == best) & (sub["y"] == 1)).groupby(sub["sample_id"]).any().mean())
        out[f"lr_auc_{name}"] = _auc(y[te], sc)
    return out


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from scipy.stats import rankdata

    r = rankdata(s)
    npos = y.sum()
    nneg = len(y) - npos
    if not npos or not nneg:
        return float("nan")
    return float((r[y == 1].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def default_corpus_dir(cache_root: str | Path | None = None, scale: str = "default", seed: int = 0) -> Path:
    """The embedded corpus directory, generated on first use: ``<cache>/corpus-<scale>-seed<seed>-v<N>``
    where ``<cache>`` is ``cache_root``, else ``$ECONVREC_CACHE``, else ``~/.cache/econvrec_rank``."""
    root = Path(cache_root) if cache_root is not None else env.cache_root()
    path = root / f"corpus-{scale}-seed{seed}-v{GENERATOR_VERSION}"
    if not (path / INFO_FILE).is_file():
        generate_corpus(path, scale=scale, seed=seed, replace=False)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m synth.generate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (replaced if it holds a generated corpus)")
    ap.add_argument("--scale", default="default", choices=sorted(SCALES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--diagnostics", action="store_true", help="print the truth diagnostics afterwards")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    out = generate_corpus(a.out, scale=a.scale, seed=a.seed)
    info = json.loads((out / INFO_FILE).read_text(encoding="utf-8"))
    print(f"wrote {out} in {time.perf_counter() - t0:.1f}s: " + ", ".join(f"{k}={v:,}" for k, v in
                                                                        info["counts"].items())
          + f", candidate_rows={info['candidate_rows']:,}")
    if a.diagnostics:
        for k, v in truth_diagnostics(out, learnable=True).items():
            print(f"  {k:28s} {v:.4f}" if isinstance(v, float) else f"  {k:28s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
