"""The customer's reaction to the items the staff just showed, and its effect on the purchase.

After a staff turn links items, the next user block opens with a reaction with probability
``P_REACT`` (else the dialogue goes on as before). The reaction is about one of the shown items
("第二款…", when several were shown and the customer singles one out) or all of them ("这两个…",
"这款…"), and is drawn from the item's true standing: ``q`` = the share of the candidates whose
``BF + CF`` is below the item's (the mean over the items reacted to). Weights::

    positive     exp(4 (q - 0.5))              +W_FB_POS to the item (hedged wording: half)
    negative     exp(-4 (q - 0.5))             -W_FB_NEG to the item, -W_FB_NEG * SIBLING_SHARE *
                                               overlap(item, c) to every other candidate c
    comparative  0.5 exp(-4 (q - 0.5))         a rejection plus a constraint: the item as negative,
                                               and -W_CMP to every candidate that is not cheaper
                                               (有没有便宜一点的) / does not satisfy the category's
                                               comparative (有没有存储大一点的)
    question     0.6                           about an attribute of the item; no effect
    none         0.5                           no reaction (other chatter)

Customers also react for reasons no feature sees (a colour they happen to dislike, a model a friend
had): with probability ``P_PRIVATE`` the standing ``q`` is replaced by a uniform draw, so a
well-fitting item is sometimes turned down (and then rarely bought) and a poorly fitting one praised.
Without it a rejection almost only hit items the data already marks as poor (8% of the rejected items
were in the top fifth by fit), and no ranker could learn what a rejection of a good item means.

``overlap`` is the share of equal KB columns (attributes, brand, series), as in the IF block: the
siblings of a rejected phone lose part of its penalty. Wording is composed from an opener, an
aspect and a predicate with negation and hedging (不是很喜欢 / 还行吧 / 样子不错但是太贵了 / 这个颜色
不好看), so the same reaction has many surface forms. The effects are added to the IF block
(``if_`` in the truth table); ``reaction`` in the truth table is the signed reaction each
candidate received (+1 / +0.5 hedged / -1, 0 none), an observable proxy for the learnable ceiling.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from synth.model import W_CMP

if TYPE_CHECKING:
    from synth.episode import Episode

P_REACT = 0.65
P_PRIVATE = 0.3  # share of reactions drawn from private taste, independent of the item's fit
W_FB_POS, W_FB_NEG, SIBLING_SHARE = 1.0, 4.0, 0.4

# Wording parts. {s}: who ("这款", "第二款", "这两个"); {a}: an aspect.
_POSITIVE = ["{s}挺喜欢的", "{s}看着不错", "{s}蛮好看的", "{s}可以，挺合适", "{s}感觉很满意", "{s}我觉得挺好",
             "{s}{a}挺好看的", "{s}{a}我喜欢", "{s}不错哦", "{s}很心动"]
_HEDGED = ["{s}还行吧", "{s}还可以", "{s}看着还不错吧", "{s}{a}还行", "{s}也还行"]
_NEGATIVE = ["{s}不是很喜欢", "{s}不太喜欢", "{s}感觉一般", "{s}不太行", "{s}{a}不好看", "{s}{a}不太喜欢",
             "{s}没那么好看", "{s}有点丑", "{s}不怎么样", "{s}看不上", "{s}算了吧", "{s}{a}有点老气",
             "{s}不太适合我", "{s}看着不太满意"]
_CONTRAST = ["{s}{a}不错，但是太贵了", "{s}样子还行，就是有点贵", "{s}好看是好看，可惜价格偏贵", "{s}不错但是{a}我不喜欢"]
_CHEAPER = ["有没有便宜一点的", "{s}有点贵，有没有便宜些的", "能再便宜点吗，{s}超预算了", "有没有更实惠的"]
_QUESTION = ["{s}{a}是什么样的？", "{s}的{a}怎么样", "请问{s}{a}是多少", "{s}{a}能说一下吗？"]
_ASPECTS = ["颜色", "样子", "款式", "外观", "设计"]
_ORDINALS = ["第一款", "第二款", "第三款"]
_BIGGER = {"机身存储": "存储大一点的", "运行内存": "内存大一点的", "内存容量": "内存大一点的", "硬盘容量": "硬盘大一点的",
           "容量": "容量大一点的", "宽度": "窄一点的", "洗涤容量": "大一点的", "续航时间": "续航长一点的",
           "匹数": "匹数大一点的", "屏幕尺寸": "屏幕大一点的", "规格": "大一点的"}
_BIGGER_WORDING = ["有没有{b}", "{s}不太够，有没有{b}", "还有{b}吗"]


def pairwise_overlap(kb: np.ndarray, j: int) -> np.ndarray:
    """Share of equal KB columns (-1 = missing) of every candidate with candidate ``j`` (0 for ``j``)."""
    valid = kb >= 0
    out = ((kb == kb[j]) & valid).sum(1) / np.maximum(valid.sum(1), 1)
    out[j] = 0.0
    return out


def react(ep: "Episode", p: float = P_REACT) -> bool:
    """With probability ``p``, maybe say a reaction to ``ep.last_linked`` and add its effect to ``ep.fb``.
    True if one was said."""
    d, rng, shown = _stream(ep)
    if not shown or not d.bern(p):
        return False
    if len(shown) > 1 and d.bern(0.5):
        k = d.i(len(shown))
        targets, who = [shown[k]], _ORDINALS[k]
    else:
        targets = list(shown)
        who = d.pick(["这两个", "这两款都"]) if len(shown) == 2 else d.pick(["这款", "这个", ""]) if len(shown) == 1 \
            else d.pick(["这几款", "这几个都"])
    partial = ep.bf + ep.cf
    q = float(np.mean([(partial < partial[j]).mean() for j in targets]))
    if d.bern(P_PRIVATE):
        q = float(rng.random())
    comp = _comparative(ep, targets, who)
    w = np.array([np.exp(4 * (q - 0.5)), np.exp(-4 * (q - 0.5)), 0.5 * np.exp(-4 * (q - 0.5)), 0.6, 0.5])
    kind = ["positive", "negative", "comparative", "question", "none"][int(rng.choice(5, p=w / w.sum()))]
    a = d.pick(_ASPECTS)
    if kind == "none":
        return False
    if kind == "question":
        a = ep.cat.slots[d.pick(ep.cat.pref_slots)]
        ep.say("user", d.pick(_QUESTION).format(s=who, a=a), intent="Request Attributes")
        return True
    if kind == "positive":
        hedged = d.bern(0.3)
        text = d.pick(_HEDGED if hedged else _POSITIVE + _plain(ep, targets, "positive")).format(s=who, a=a)
        for j in targets:
            ep.fb[j] += W_FB_POS * (0.5 if hedged else 1.0)
            ep.reaction[j] = 0.5 if hedged else 1.0
        ep.say("user", text, intent="Confirmation")
        return True
    if kind == "comparative" and comp is not None:
        text, violates = comp
    else:
        text, violates = d.pick(_NEGATIVE + _CONTRAST + _plain(ep, targets, "negative")).format(s=who, a=a), None
    for j in targets:
        ep.fb -= W_FB_NEG * SIBLING_SHARE * pairwise_overlap(ep.kb, j)
        ep.fb[j] -= W_FB_NEG  # the item itself: the full penalty
        ep.reaction[j] = -1.0
    if violates is not None:
        ep.fb -= W_CMP * violates
    ep.say("user", text, intent="Other")
    return True


def _stream(ep: "Episode"):
    """The reactions' own random stream (seeded from the corpus seed), so that adding them leaves the
    draws of everything else (profiles, behaviours, other turns) where they were."""
    sim = ep.sim
    if not hasattr(sim, "_feedback_dice"):
        from synth.model import Dice

        sim._feedback_rng = np.random.default_rng([sim.seed, 14])
        sim._feedback_dice = Dice(sim._feedback_rng)
    return sim._feedback_dice, sim._feedback_rng, ep.last_linked


def _plain(ep: "Episode", targets: list[int], kind: str) -> list[str]:
    """The world's plain feedback wordings (这款不太喜欢, ...): they say 这款, so only for a single shown item."""
    if len(ep.last_linked) != 1:
        return []
    return list(ep.T.user_feedback_positive if kind == "positive" else ep.T.user_feedback_negative)


def _comparative(ep: "Episode", targets: list[int], who: str):
    """(wording, violates mask) of a comparative request the targets fail, or None."""
    d, cands = _stream(ep)[0], ep.cands
    options = []
    ref = float(np.min(cands.price[targets]))
    options.append((d.pick(_CHEAPER), cands.price >= ref))
    for _ph, _tpl, slot, vs in ep.cat.comp:
        if all(cands.vals[j, slot] not in vs for j in targets):
            b = _BIGGER.get(ep.cat.slots[slot])
            if b:
                options.append((d.pick(_BIGGER_WORDING).replace("{b}", b), ~np.isin(cands.vals[:, slot], vs)))
    text, mask = options[d.i(len(options))]
    if "{s}" not in text and len(targets) < len(ep.last_linked):
        text = who + "有点贵，" + text if mask is options[0][1] else who + "不太够，" + text  # name the one meant
    return text.format(s=who or "这款"), mask.astype(float)
