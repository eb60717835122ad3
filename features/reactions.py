"""What did the customer say about the items just shown? A reaction detector for short Chinese replies.

Labels: ``positive`` (这款不错 / 还行吧 / 就它了), ``negative`` (不是很喜欢 / 这个颜色不好看 / 不错但是太贵了),
``implied`` (a rejection without a negative word: a request for another item, worded like a stated
preference, 有没有便宜一点的 / 换一款 / 还有别的吗 / 有没有单支的, or a negative read by the encoder
fallback below, which calls preference statements such as 有没有冷暖的 negative; far less certain than
不喜欢: on the default corpus, generator 5, the candidates with an explicit negative were truly turned
down in 96% of the cases and bought 0.18% of the time, those with an implied one 48% and 8.2%), ``question`` (a
question about the shown item: 内存多大？/ 这款防水吗) and ``none`` (logistics, greetings, acknowledgements,
preference statements that are not about the shown item). Each item also gets a signed ``polarity``
(+1 positive, -1 negative, hedged wording weaker: 还行吧 +0.4, 感觉一般 -0.6; 0 for question / none).

Two readers, in order:

1. **Lexicon with negation scope** (:func:`read_clauses`): the reply is split into clauses at
   punctuation and contrast words (但是 / 不过 / 可是 / 只是 / 就是有点); in each clause, cue words
   (longest match first: 不错 before 不) carry a polarity that a negator within the two characters
   before the cue flips (不是很喜欢, 不太好看, 没那么贵 -> 贵 flipped to +). A clause after a contrast word
   outweighs the clauses before it (不错但是太贵了 -> negative). Comparative requests and "another one"
   requests are rejections; questions need a question cue and no polarity cue.
2. **Sentence-encoder prototypes** (:class:`ReactionDetector`), for replies in which the lexicon
   finds no cue at all: the cosine of the reply's e5 embedding with hand-written prototype replies
   of each label (mean of the 3 nearest per label); below ``min_similarity`` the label is ``none``.
   Embeddings go through :func:`features.encoders.embedding_cache`, so each text is encoded once.

References: when several items were shown, "第二款" / "后面那个" / "第一个" point at one of them
(clauses without a reference inherit the previous clause's); "这两个" / "都" / no reference = all.
Measured on 120 hand-written labelled replies (``tests/data/reactions_labelled.jsonl``, written
for the test, not by the simulator): see ``tests/test_feedback.py``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Sequence

import numpy as np

from features.blas import one_blas_thread
from features.text import normalise_text

LABELS = ("positive", "negative", "question", "none")

# Cue -> polarity. Longest match first, so compounds that contain a negator (不错, 不行) are read whole.
_CUES: dict[str, float] = {
    # positive
    "喜欢": 1.0, "中意": 1.0, "心动": 1.0, "好看": 1.0, "漂亮": 1.0, "不错": 1.0, "满意": 1.0, "挺好": 1.0,
    "很好": 1.0, "真好": 1.0, "合适": 1.0, "适合": 1.0, "可以": 0.8, "棒": 1.0, "赞": 1.0, "完美": 1.0,
    "精致": 0.8, "高级": 0.8, "划算": 0.8, "值": 0.6, "实惠": 0.8, "靠谱": 0.8, "舒服": 0.8, "喜欢的": 1.0,
    "就它": 1.0, "就这款": 1.0, "就这个": 1.0, "就要": 1.0, "要这个": 1.0, "要这款": 1.0, "入手": 0.8,
    "下单": 1.0, "拍了": 1.0, "买了": 1.0, "种草": 1.0, "有眼缘": 1.0, "符合": 0.8, "正是": 1.0, "挺好看": 1.0,
    "好用": 0.8, "想要": 0.8, "ok": 0.8, "稀罕": 1.0, "对胃口": 1.0, "爱了": 1.0, "好评": 0.8,
    # hedged positive
    "还行": 0.4, "还可以": 0.4, "还不错": 0.6, "还好": 0.3, "也行": 0.4, "凑合": -0.5, "将就": -0.5,
    # negative
    "丑": -1.0, "难看": -1.0, "一般": -0.6, "贵": -1.0, "差": -1.0, "失望": -1.0, "土": -0.8, "老气": -1.0,
    "俗": -0.8, "算了": -1.0, "不行": -1.0, "不怎么样": -1.0, "不咋地": -1.0, "不咋样": -1.0, "鸡肋": -1.0,
    "踩雷": -1.0, "过时": -0.8, "笨重": -0.8, "太重": -0.8, "太大": -0.8, "太小": -0.8, "太厚": -0.8,
    "太吵": -0.8, "卡顿": -0.6, "很卡": -0.6, "不是我想要": -1.0, "不是我要的": -1.0, "嫌": -0.8, "pass": -1.0, "看不上": -1.0, "不感冒": -1.0, "没感觉": -0.8,
    "劝退": -1.0, "一言难尽": -1.0, "马马虎虎": -0.5, "也就那样": -0.6, "一般般": -0.6, "普通": -0.5,
    "不合适": -1.0, "不适合": -1.0, "没兴趣": -1.0, "不考虑": -1.0, "不要": -1.0, "不想要": -1.0,
    "不对": -0.8, "不太行": -1.0, "拉倒": -1.0, "晃眼": -0.8, "廉价": -1.0, "丑哭": -1.0, "撞衫": -0.6,
    "偏贵": -0.8, "小贵": -0.8, "超预算": -1.0, "买不起": -1.0, "下不去手": -1.0, "不划算": -1.0,
}
_CUE_RE = re.compile("|".join(sorted(map(re.escape, _CUES), key=len, reverse=True)))
# A negator right before a cue (at most 2 characters of degree words in between) flips it.
_NEGATOR = re.compile(r"(?:不是很|不是特别|不是太|不太|不怎么|不大|不够|没那么|没有那么|没有|没|不|并不|别|无法|谈不上)"
                      r"(?:太|很|怎么|特别|是|算|够)?$")
_CONTRAST = re.compile(r"(?:但是|但|不过|可是|只是|就是有?点|然而|可惜)")
# Rejection + constraint / another one: 有没有便宜一点的, 能不能再轻一点, 换一款, 还有别的吗, 有更大的吗.
_COMPARATIVE = re.compile(
    r"(?:有没有|有木有|有无|还有|能不能|可不可以|可以|能|再)[^，。？！]{0,6}(?:一点|一些|些|点儿?)的?"
    r"|更[^，。？！]{1,4}的|换一[个款台双件种支]|换[个款](?:吧|看看|别的|其他)|换别的|别的|其[他它](?!都)|另外的|另一款|别家|再看看别"
    r"|还有[^，。？！]{0,3}(?:吗|没|不)|下一款|不要这[个款]")
_QUESTION = re.compile(
    r"[?？]|吗$|吗[，。]|呢$|多少|多大|多重|多长|多久|多高|多宽|几[个档寸年岁种g]|什么|怎么样|咋样|如何|哪[个里种国]"
    r"|是不是|能不能|会不会|支持不|支不支持|有没有[^一]{0,4}功能|带不带|是否|续航|材质|尺码|尺寸|参数|配置")
# Not about the shown item: logistics, service, politeness.
_OFF_TOPIC = re.compile(r"发货|快递|物流|包邮|发票|开票|专票|退货|退换|七天|优惠券|券|赠品|送什么|活动|保价|几天到|到货|客服|地址|付款"
                        r"|^(?:好的|嗯+|哦+|在吗|你好|您好|谢谢|明白了?|知道了|收到)[，。!！~]*$")
# A stated preference about an attribute value (不要黑色的, 不喜欢粉色, 银色的就不考虑了, 最好是滚筒的):
# what the customer wants in general, not a verdict on the shown item; the preference features read it.
# Read as a rejection it was the main source of false alarms on the simulator's corpus (not tuned on
# the labelled replies). A clause that points at the item (这个颜色不喜欢) stays a reaction.
_PREFERENCE = re.compile(
    r"^[^，。？！]{0,6}?(?:不要|不喜欢|不考虑|别要?|最好是|最好要|希望是|主要是要?)(?![这那它了是的])[^，。？！]{2,}$"
    r"|^[^，。？！]{2,}的就?(?:不考虑|算了|不要)")
# A degree negator (不太 / 不怎么 / 不是很) before a word the cue list lacks (不太感冒, 不太合我心意): with a
# request for another item in the same reply, the request is an explicit rejection, not an implied one.
_DEGREE_NEGATOR = re.compile(r"不太|不怎么|不是很|不是特别|不是太|不大")
# Explicit references to one of several shown items.
_ORDINAL = re.compile(r"第\s*([一二三四五1-5])\s*[个款台双支件种]?|(前面|上面|左边|上一)[个款那]?[个款台双支件种]?"
                      r"|(后面|下面|右边|最后|后一)[个款那]?[个款台双支件种]?")
_ALL = re.compile(r"这两|两[个款台双支件]都|两个都|都")
# Words that point at shown items: a reply after other staff turns still refers to them.
DEIXIS = r"这款|这个|这台|这双|这支|这件|这两|这几|第[一二三1-3][个款台双支件]|它"
_CN = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "1": 0, "2": 1, "3": 2, "4": 3, "5": 4}


@dataclass(frozen=True)
class Clause:
    text: str
    polarity: float  # sum of the cues' polarities after negation; 0 when no polarity cue
    has_cue: bool
    comparative: bool
    question: bool
    ref: int | None  # position among the shown items; None = all of them
    after_contrast: bool


def _clause_polarity(text: str) -> tuple[float, bool]:
    total, found = 0.0, False
    for m in _CUE_RE.finditer(text):
        pol = _CUES[m.group(0)]
        if _NEGATOR.search(text[max(0, m.start() - 5) : m.start()]) and not m.group(0).startswith(("不", "没")):
            pol = -pol if pol > 0 else 0.5 * -pol  # 不喜欢 -> -1; 不贵 / 不难看 -> weakly positive
        total += pol
        found = True
    return total, found


def _reference(text: str) -> int | None | str:
    """Ordinal position, "all", or "inherit" when the clause names no item."""
    m = _ORDINAL.search(text)
    if m:
        if m.group(1):
            return _CN[m.group(1)]
        return 0 if m.group(2) else -1
    if _ALL.search(text):
        return None
    return "inherit"


def read_clauses(text: str) -> list[Clause]:
    """The lexicon reading of one reply, clause by clause (see the module doc)."""
    t = normalise_text(str(text or "")).strip()
    if not t:
        return []
    # Contrast words start a new clause; keep a marker so the clause knows it follows a contrast.
    t = _CONTRAST.sub(lambda m: "\x00" + m.group(0), t)
    out: list[Clause] = []
    ref: int | None = None
    named = False  # an item named so far in the reply (第二款 / 这两个)
    for piece in re.split(r"[，,。.！!；;~\s]+|(?<=[?？])", t):
        if not piece.strip("\x00 "):
            continue
        contrast = piece.startswith("\x00") or "\x00" in piece
        for part in piece.split("\x00"):
            if not part.strip():
                continue
            r = _reference(part)
            if r != "inherit" and not named:
                # 能再便宜点吗，第一款超预算了: the first item the reply names is what its opening clauses are about.
                out = [c if c.ref is not None else replace(c, ref=r) for c in out]
                named = True
            ref = ref if r == "inherit" else r
            pol, found = _clause_polarity(part)
            comp = bool(_COMPARATIVE.search(part))
            q = bool(_QUESTION.search(part)) and not _OFF_TOPIC.search(part)
            out.append(Clause(part, pol, found, comp, q, ref, contrast and part is not piece.split("\x00")[0]))
    return out


def off_topic(text: str) -> bool:
    return bool(_OFF_TOPIC.search(normalise_text(str(text or "")).strip()))


def stated_preference(text: str) -> bool:
    """A clause that states a general preference about an attribute value without pointing at an item."""
    t = normalise_text(str(text or "")).strip()
    return bool(_PREFERENCE.search(t)) and not re.search(DEIXIS, t) and _ORDINAL.search(t) is None


@lru_cache(maxsize=100_000)
def _lexicon_reactions_memo(text: str, n_shown: int) -> tuple[tuple[int, str, float], ...] | None:
    # A live chat re-sends its earlier replies with every request; batch scoring reads ~900 replies a
    # call: each (reply, number shown) is read once per process.
    r = lexicon_reactions(text, n_shown)
    return None if r is None else tuple(r)


def lexicon_reactions(text: str, n_shown: int) -> list[tuple[int, str, float]] | None:
    """[(position, label, polarity)] for the shown items the reply is about; [] when it is about none
    of them (off topic); None when the lexicon found no cue at all (the encoder decides)."""
    clauses = read_clauses(text)
    if not clauses:
        return []
    n = max(int(n_shown), 1)
    score = np.zeros(n)
    weight_seen = np.zeros(n)
    question = np.zeros(n, bool)
    explicit = np.zeros(n, bool)  # a negative cue word (不喜欢 / 太贵), not only a comparative request
    any_cue = preference = False
    for c in clauses:
        idx = list(range(n)) if c.ref is None else [c.ref if c.ref >= 0 else n - 1]
        idx = [i for i in idx if 0 <= i < n]
        if not idx:
            continue
        if off_topic(c.text):
            continue  # 可以用优惠券吗: service talk, whatever cue words it holds
        if not c.comparative and stated_preference(c.text):
            preference = True
            continue  # 不要黑色的: a general preference, not a verdict on the shown item
        pol = c.polarity
        if pol < 0 or (not c.has_cue and not c.question and _DEGREE_NEGATOR.search(c.text)):
            explicit[idx] = True  # only read when the item's score ends negative
        if c.question and pol > 0 and not c.comparative:
            pol = 0.0  # 适合跑步穿吗: a yes/no question about the item, not praise
        if c.comparative:
            # A comparative request rejects the shown item whatever polite words come with it.
            pol = min(pol, 0.0) - 1.0
        if pol != 0.0:
            any_cue = True
            if c.after_contrast:
                score[idx] *= 0.3  # 不错，但是太贵了: the clause after the contrast decides
            score[idx] += pol
            weight_seen[idx] += 1
        elif c.question:
            any_cue = True
            question[idx] = True
    if not any_cue:
        return [] if off_topic(text) or preference else None
    out = []
    for i in range(n):
        if weight_seen[i] and score[i] != 0:
            s = float(np.clip(score[i], -1.0, 1.0))
            out.append((i, "positive" if s > 0 else "negative" if explicit[i] else "implied", s))
        elif question[i]:
            out.append((i, "question", 0.0))
    return out


# Prototype replies per label for the encoder (written for the detector; the test set is separate).
PROTOTYPES: dict[str, list[str]] = {
    "positive": ["这款我很喜欢", "看着挺不错的", "这个好看", "就要这个了", "这款挺适合我的", "颜值很高，喜欢",
                 "感觉很满意", "这个可以，挺好的", "我觉得这款蛮好", "很心动", "这个我喜欢", "不错不错"],
    "negative": ["这款不太喜欢", "感觉不怎么样", "这个不太行", "不满意这个", "太贵了", "颜色不好看",
                 "有没有便宜一点的", "换一款吧", "还有别的吗", "我不想要这个", "这个算了吧", "样子有点丑",
                 "有没有更轻的", "不是我想要的那种"],
    "question": ["这款内存多大？", "这个防水吗？", "电池能用多久？", "这款是什么材质的", "重量是多少",
                 "这个有几种颜色", "屏幕多大", "这个支持快充吗", "这款适合油皮吗", "噪音大不大"],
    "none": ["什么时候发货？", "能开发票吗", "好的", "嗯嗯", "你好", "谢谢", "包邮吗", "有优惠券吗",
             "我再想想", "想买个手机", "预算三千左右", "我是给我妈买的", "你帮我推荐一个", "我平时在家用",
             "以前用的是华为", "主要是送人", "我是学生"],
}


class ReactionDetector:
    """Lexicon first, sentence-encoder prototypes for replies without any cue (see the module doc).

    ``embed(texts) -> (n, d)`` unit vectors (an :class:`features.encoders.EmbeddingCache`'s ``embed``);
    ``None`` reads with the lexicon only.
    """

    def __init__(self, embed=None, min_similarity: float = 0.86, k: int = 3):
        self.embed = embed
        self.min_similarity = min_similarity
        self.k = k
        self._proto: tuple[np.ndarray, np.ndarray] | None = None

    def _prototypes(self) -> tuple[np.ndarray, np.ndarray]:
        if self._proto is None:
            texts = [t for lab in LABELS for t in PROTOTYPES[lab]]
            labels = np.array([LABELS.index(lab) for lab in LABELS for _ in PROTOTYPES[lab]])
            self._proto = (np.asarray(self.embed(texts), np.float32), labels)
        return self._proto

    def encoder_labels(self, texts: Sequence[str]) -> list[str]:
        """Nearest-prototype label of each text (mean of the ``k`` best cosines per label)."""
        if not len(texts):
            return []
        P, lab = self._prototypes()
        E = np.asarray(self.embed(list(texts)), np.float32)
        with one_blas_thread():
            S = E @ P.T  # (n, n_protos)
        score = np.full((len(texts), len(LABELS)), -1.0)
        for j in range(len(LABELS)):
            s = np.sort(S[:, lab == j], axis=1)[:, ::-1][:, : self.k]
            score[:, j] = s.mean(1)
        best = score.argmax(1)
        return [LABELS[b] if score[i, b] >= self.min_similarity else "none" for i, b in enumerate(best)]

    def detect(self, texts: Sequence[str], n_shown: Sequence[int]) -> list[list[tuple[int, str, float]]]:
        """Per reply, [(position among the shown items, label, polarity)]; empty = no reaction."""
        out = [None if (r := _lexicon_reactions_memo(t, int(n))) is None else list(r) for t, n in zip(texts, n_shown)]
        todo = [i for i, r in enumerate(out) if r is None]
        if todo and self.embed is not None:
            pol = {"positive": 0.6, "negative": -0.6, "question": 0.0}
            for i, lab in zip(todo, self.encoder_labels([texts[i] for i in todo])):
                lab_out = "implied" if lab == "negative" else lab  # no negative word was read
                out[i] = [] if lab == "none" else [(p, lab_out, pol[lab]) for p in range(max(int(n_shown[i]), 1))]
        return [r or [] for r in out]

    def label(self, texts: Sequence[str]) -> list[str]:
        """Utterance-level label of replies about one shown item (what the labelled test set measures;
        an implied rejection counts as negative there)."""
        return [("negative" if r[0][1] == "implied" else r[0][1]) if r else "none"
                for r in self.detect(texts, [3] * len(texts))]
