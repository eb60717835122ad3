"""Preference words of the dialogue context: annotation first, extraction otherwise.

E-ConvRec (section 3.2, table 4) annotates four kinds of preference words in user queries:

* ``descriptive``  attribute values, usage scenarios, user groups, brands ("拍照清晰", "华为")
* ``category``     product categories ("手机")
* ``comparative``  comparisons ("低于3000", "大于200G", "便宜一点", "3000以内", "比之前那个轻")
* ``negative``     rejections ("不要金色的", "别太贵", "除了黑色", "不喜欢暗红色")

:func:`preferences_for_context` gives, for every sample, the preference words of the user turns
*before* the sample's recommendation turn (``FeatureContext.context_turns`` filters the turns, so
nothing at or after the recommendation turn is visible). A user turn whose ``pref_annotated`` flag
is set uses the corpus annotation (possibly empty); every other user turn goes through the rule
based :class:`PreferenceExtractor`:

negative expressions, numeric comparisons, KB words and word comparisons are found in that
priority order (see :class:`PreferenceExtractor`). The KB words come from the jieba
:class:`~features.text.Tokenizer` whose user dictionary is the KB (categories, brands, attribute
values), a small built-in lexicon of descriptive and category words, and the attribute names (so
that "续航时间" stays one token and is not read as a value). Category names (and built-in category
words that are not KB values) are ``category``; attribute values and descriptive words are
``descriptive``.

Texts are compared and returned in normalised form (:func:`features.text.normalise_text`: NFKC,
lower-case). Negative words keep their negation, as the annotations write them ("不要金色");
:func:`rejected_value` strips it ("金色"), which is what similarity features should embed.

Extraction runs once per *distinct* text. :func:`evaluate_extractor` measures the extractor against
the annotated turns of a corpus.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd

from features.frames import column_values, factorize_values
from features.text import Tokenizer, lexicon_from_items, normalise_series, normalise_text, tokenizer_for

PREF_TYPES = ("descriptive", "category", "comparative", "negative")
POSITIVE_TYPES = ("descriptive", "category", "comparative")
USER_ROLES = frozenset({"user", "customer", "buyer", "client", "q", "u"})
PREF_COLUMNS = ["sample_id", "turn_idx", "text", "type"]

# --- rules --------------------------------------------------------------------------------------
_UNIT = (
    r"(?:元|块钱|块|万像素|像素|万|千|gb|g|tb|t|mb|m|英寸|寸|瓦|w|kg|公斤|斤|克|mah|毫安|升|ml|l|hz|米|cm|mm|人|匹|码|度|核"
    r"|天|小时|分钟|帧|p)"
)
_NUM = r"\d+(?:\.\d+)?"
_CMP_WORDS = r"(?:便宜|贵|轻|重|大|小|薄|厚|亮|淡|深|浅|好|快|慢|长|短|高|低|多|少|强|新|安静|省电)"
_STOP = r"(?=的|了|吧|呢|啊|哦|呀|些|,|，|。|\.|!|！|\?|？|;|；|、|\s|$)"

NEGATION_PREFIX = (
    r"(?:不太想要|不想要|不需要|不喜欢|不考虑|不推荐|别推荐|不要|不买|不用|不选|别要|别买|别选|别给我|别拿|别来|别太"
    r"|别|除了|排除|讨厌|拒绝)"
)
# A bare 别 only negates when something rejectable follows ("还有别的推荐吗" is no rejection).
_NEG = re.compile(
    r"(?:" + NEGATION_PREFIX.replace("|别|", "|别(?=太|要|买|选)|") + r")"
    + r"(?:太|那么|这么|那种|这种|是)?" + r"(?P<target>[^,，。.!！?？;；、\s]{1,10}?)" + _STOP
)
# Inside a fallback negative target: words that end it ("除了黑色还有吗" -> "黑色").
_NEG_STOP = re.compile(r"还|吗|呢|吧|也|就|行|我|你|和|或|要|可以|有没有|有吗|好吗|呀|其他|其它|都")
# Numeric comparisons: they win over a KB word inside them ("大于200g" although "200g" is a value),
# unless the whole match is itself a KB value ("551l以上").
_CMP_NUM = [
    # 低于3000 / 大于200g / 不超过5000元
    re.compile(
        r"(?:不超过|不高于|不低于|不少于|不大于|不小于|低于|高于|大于|小于|超过|少于|多于|至少|最多|最少|起码)\s*"
        + _NUM + r"\s*" + _UNIT + r"?"
    ),
    # 3000以内 / 200g以上 / 5000元左右
    re.compile(_NUM + r"\s*" + _UNIT + r"?\s*(?:以内|以下|以上|之内|之下|左右|上下)"),
]
# Word comparisons: a KB word overlapping them wins ("续航长一点" is the descriptive 续航长).
_CMP_WORD = [
    # 比之前那个轻 / 比iphone性能好 (not 比较)
    re.compile(r"比(?!较)[^,，。.!！?？;；、\s]{1,12}?(?:更|还|要)?" + _CMP_WORDS + r"(?:一点|一些|点儿|点|些)?"),
    # 便宜一点 / 大些
    re.compile(_CMP_WORDS + r"(?:一点儿|一点|一些|点儿|点|些)"),
    # 更轻
    re.compile(r"(?<=更)" + _CMP_WORDS),
]
# Words that are KB attribute values but, in a user's mouth, are chat rather than a preference.
STOP_VALUES = frozenset("可以 一般 没有 需要 其他 其它 正常 默认 是 否 有 无".split())
# Descriptive words that need not be KB values: colours, usage, user groups, style.
DESCRIPTIVE_WORDS = frozenset(
    "黑色 白色 银色 灰色 金色 蓝色 红色 粉色 绿色 紫色 棕色 橙色 黄色 青色 亮色 暗色 深色 浅色"
    " 拍照清晰 性价比高 性价比 轻薄 轻便 便携 耐用 大容量 大屏 大屏幕 续航长 待机长 省电 静音 高端 时尚 简约 可爱"
    " 商务 学生 女生 男生 老人 儿童 小孩 宝宝 孕妇 家用 办公 游戏 打游戏 运动 送礼 户外 防水 防摔 快充"
    " 无线 智能 高清 护眼 保湿 补水 美白 控油 持久 显白".split()
)
# Category words that are not KB category names: a small e-commerce category lexicon.
CATEGORY_WORDS = frozenset(
    "智能手机 老人机 游戏手机 拍照手机 电冰箱 冰柜 蓝牙耳机 无线耳机 头戴式耳机 耳麦 挂机空调 柜机空调 中央空调 空调扇"
    " 唇膏 唇釉 唇彩 彩妆 滚筒洗衣机 波轮洗衣机 洗烘一体机 电视机 液晶电视 智能电视 鞋子 跑鞋 跑步鞋 篮球鞋 板鞋 休闲鞋"
    " 电脑 笔记本 平板电脑 平板 台式机 游戏本 护肤霜 乳液 精华 面膜 眼霜 洗面奶 防晒霜 手表 智能手表 手环 音箱 相机"
    " 微波炉 电饭煲 热水器 吸尘器 扫地机器人 显示器 键盘 鼠标 充电宝 路由器".split()
)


def rejected_value(text: str) -> str:
    """The value a negative preference word rejects: "不要金色的" -> "金色", "别太贵" -> "贵"."""
    t = normalise_text(str(text)).strip()
    m = re.match(r"^(?:我)?" + NEGATION_PREFIX + r"(?:太|那么|这么|那种|这种|是)?", t)
    if m:
        t = t[m.end():]
    t = re.sub(r"(?:的|了|吧|呢|啊|哦|呀)+$", "", t)
    return t.strip() or normalise_text(str(text)).strip()


@dataclass
class PreferenceExtractor:
    """Rule/lexicon based preference-word extractor (see the module doc).

    Spans are chosen in priority order, a later kind never overlapping an earlier one:

    1. negative expressions (the rejected thing is the longest KB word after the negation, else the
       text up to a stop word);
    2. numeric comparisons ("低于3000", "200g以上") unless the match is inside a KB word;
    3. KB words found by the tokenizer (category / descriptive), after attribute *names*
       ("续航时间", "空调类型": the user asks about an attribute, states no value) are blanked out;
       values with spaces ("#999 正红色") by substring search;
    4. word comparisons ("比之前那个轻", "便宜一点").

    Finally a descriptive word that is the rejected value of a negative word of the same
    utterance ("戴尔的就不考虑了，不考虑戴尔") is dropped.
    """

    tokenizer: Tokenizer
    categories: frozenset[str]
    descriptive: frozenset[str]
    attribute_names: frozenset[str] = frozenset()
    spaced_values: tuple[str, ...] = ()
    _memo: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._words = self.categories | self.descriptive
        self._maxlen = max((len(w) for w in self._words), default=0)
        # Attribute names jieba cannot keep as one token ("变频/定频") are blanked out before
        # tokenising; the others are dictionary words and simply skipped.
        special = sorted((n for n in self.attribute_names if re.search(r"[^\w]", n)), key=len, reverse=True)
        self._names_rx = re.compile("|".join(map(re.escape, special))) if special else None

    @classmethod
    def from_kb(
        cls, items: pd.DataFrame, item_attrs: pd.DataFrame, tokenizer: Tokenizer | None = None
    ) -> "PreferenceExtractor":
        kb_cats = set(items["category"].dropna().astype(str).map(normalise_text).str.strip())
        lex = set(lexicon_from_items(items, item_attrs))
        # KB category names are categories; a built-in category word that is a KB value is descriptive
        cats = kb_cats | (CATEGORY_WORDS - lex)
        desc = (lex - cats - STOP_VALUES) | DESCRIPTIVE_WORDS
        values = item_attrs["value"].dropna().astype(str).map(normalise_text).str.strip()
        spaced = tuple(sorted({v for v in values.unique() if " " in v and 2 <= len(v) <= 20}, key=len, reverse=True))
        names = item_attrs["name"].dropna().astype(str).map(normalise_text).str.strip()
        names = frozenset(n for n in names.unique() if len(n) >= 2)
        if tokenizer is None:
            tokenizer = Tokenizer(extraction_lexicon(items, item_attrs))
        return cls(tokenizer, frozenset(cats), frozenset(desc | set(spaced)), names, spaced)

    def _longest_kb_word(self, text: str, start: int) -> str:
        for L in range(min(self._maxlen, len(text) - start), 1, -1):
            w = text[start : start + L]
            if w in self._words:
                return w
        return ""

    # -- one text --------------------------------------------------------------------------------
    def extract(self, text: str) -> tuple[tuple[str, str], ...]:
        """(text, type) preference words of one utterance, in order of appearance, distinct."""
        hit = self._memo.get(text)
        if hit is not None:
            return hit
        norm = normalise_text(text or "")
        taken = [False] * len(norm)
        out: list[tuple[int, str, str]] = []

        def free(s: int, e: int) -> bool:
            return not any(taken[s:e])

        def take(s: int, e: int, ty: str) -> None:
            taken[s:e] = [True] * (e - s)
            out.append((s, norm[s:e], ty))

        # 1. negatives
        negs, targets = [], set()
        for m in _NEG.finditer(norm):
            t0 = m.start("target")
            kb = self._longest_kb_word(norm, t0)
            end = t0 + len(kb) if kb else m.end("target")
            if not kb:
                stop = _NEG_STOP.search(norm, t0 + 1, end)
                end = stop.start() if stop else end
            if re.sub(r"[了的吧呢啊哦呀么吗\W]", "", norm[t0:end]):
                negs.append((m.start(), end))
                targets.add(norm[t0:end])
        for s, e in _leftmost_longest(negs):
            if free(s, e):
                take(s, e, "negative")
        # KB words (attribute names are tokens of the dictionary too, and are skipped)
        scan = self._names_rx.sub(lambda m: " " * len(m.group()), norm) if self._names_rx else norm
        kb_spans = []
        for v in self.spaced_values:
            k = scan.find(v)
            while k >= 0:
                kb_spans.append((k, k + len(v)))
                k = scan.find(v, k + len(v))
        pos = 0
        for w in self.tokenizer.tokenize(scan):
            k = scan.find(w, pos)
            if k < 0:
                continue
            pos = k + len(w)
            if w in self._words:
                kb_spans.append((k, k + len(w)))
        kb_spans = _leftmost_longest(kb_spans)
        # 2. numeric comparisons, unless inside a KB word
        nums = [(m.start(), m.end()) for rx in _CMP_NUM for m in rx.finditer(norm)]
        for s, e in _leftmost_longest(nums):
            if free(s, e) and not any(ks <= s and e <= ke for ks, ke in kb_spans):
                take(s, e, "comparative")
        # 3. KB words
        for s, e in kb_spans:
            if free(s, e):
                w = norm[s:e]
                take(s, e, "category" if w in self.categories else "descriptive")
        # 4. word comparisons
        words = [(m.start(), m.end()) for rx in _CMP_WORD for m in rx.finditer(norm)]
        for s, e in _leftmost_longest(words):
            if free(s, e):
                take(s, e, "comparative")
        rejected = targets | {rejected_value(w) for _, w, t in out if t == "negative"}
        out.sort(key=lambda x: x[0])
        seen: set[tuple[str, str]] = set()
        res = []
        for _, w, t in out:
            if (w, t) in seen or (t == "descriptive" and w in rejected):
                continue
            seen.add((w, t))
            res.append((w, t))
        hit = tuple(res)
        self._memo[text] = hit
        return hit

    # -- many texts ------------------------------------------------------------------------------
    def extract_frame(self, texts: pd.Series) -> pd.DataFrame:
        """Long table (index of ``texts``, text, type); each distinct text is processed once."""
        s = texts.fillna("").astype(str).to_numpy()
        found = {u: self.extract(u) for u in pd.unique(s)}
        pairs = [(i, w) for i, u in enumerate(s) for w in found[u]]  # (a loop, not a join: ~5 ms less per request)
        at = [i for i, _ in pairs]
        words = [w for _, w in pairs]
        return pd.DataFrame({"text": pd.Series([w for w, _ in words], dtype=str),
                             "type": pd.Series([t for _, t in words], dtype=str)}).set_axis(texts.index[at])


def extraction_lexicon(items: pd.DataFrame, item_attrs: pd.DataFrame) -> list[str]:
    """The extractor's jieba dictionary: KB words, built-in words and attribute names (so that
    "续航时间" or "容量" stay one token and are not read as a value)."""
    names = item_attrs["name"].dropna().astype(str).map(normalise_text).str.strip()
    names = {n for n in names.unique() if 2 <= len(n) <= 20 and " " not in n}
    return sorted(set(lexicon_from_items(items, item_attrs)) | DESCRIPTIVE_WORDS | CATEGORY_WORDS | names)


def _leftmost_longest(spans: list[tuple[int, int, str, str]]) -> list[tuple[int, int, str, str]]:
    spans = sorted(spans, key=lambda x: (x[0], -(x[1] - x[0])))
    out, end = [], -1
    for sp in spans:
        if sp[0] >= end:
            out.append(sp)
            end = sp[1]
    return out


def kb_tokenizer(ctx) -> Tokenizer:
    """The context's tokenizer when it has a lexicon, else one whose dictionary is the whole KB."""
    if getattr(ctx, "lexicon", None):
        return ctx.tokenizer
    return tokenizer_for(ctx.corpus.items, ctx.corpus.item_attrs)


@lru_cache(maxsize=4)
def _extraction_tokenizer(lexicon: tuple[str, ...]) -> Tokenizer:
    return Tokenizer(lexicon)


def extractor_for(corpus) -> PreferenceExtractor:
    """The extractor of a corpus's KB (memoised in ``corpus.meta``).

    Its tokenizer's user dictionary is the whole KB plus :data:`DESCRIPTIVE_WORDS`, independent of
    the feature context's lexicon, so extraction does not depend on how that lexicon was fitted.
    """
    key = "_pref_extractor"
    meta = corpus.meta if isinstance(getattr(corpus, "meta", None), dict) else {}
    if key not in meta:
        lex = tuple(extraction_lexicon(corpus.items, corpus.item_attrs))
        meta[key] = PreferenceExtractor.from_kb(corpus.items, corpus.item_attrs, _extraction_tokenizer(lex))
    return meta[key]


def is_user_role(role: pd.Series) -> pd.Series:
    return pd.Series(user_rows(role), index=role.index)


def user_rows(role) -> np.ndarray:
    """Per value of ``role`` (a column or an array), whether it is a user's."""
    # Each distinct role once (a table repeats a handful): four Arrow string passes cost ~0.4 ms a request.
    codes, distinct = factorize_values(role, use_na_sentinel=True)  # a missing role: -1, not a user
    user = np.array([str(r).lower() in USER_ROLES for r in distinct.tolist()] + [False], dtype=bool)
    return user[codes]


def preferences_for_context(ctx) -> pd.DataFrame:
    """sample_id, turn_idx, text, type for the user turns of each sample's context.

    Only turns before the sample's turn are considered (``ctx.context_turns``). Annotated turns
    (``pref_annotated``) take the corpus annotation, the others the extractor's output.
    """
    return context_preferences(ctx).frame(ctx.context_turns)


@dataclass(frozen=True)
class ContextPreferences:
    """The rows of :func:`preferences_for_context`'s table as arrays: per preference word, ``turn``
    (its row in ``ctx.context_turns``, which gives its sample_id and turn_idx), ``text`` and
    ``type`` (object arrays). ``no_user_turn``: the context has no user turn at all."""

    turn: np.ndarray
    text: np.ndarray
    type: np.ndarray
    no_user_turn: bool = False

    def frame(self, context_turns: pd.DataFrame) -> pd.DataFrame:
        """The table (sample_id, turn_idx, text, type)."""
        if self.no_user_turn:
            return pd.DataFrame({c: pd.Series(dtype=("int64" if c == "turn_idx" else "object")) for c in PREF_COLUMNS})
        return pd.DataFrame({"sample_id": context_turns["sample_id"].array.take(self.turn),
                             "turn_idx": context_turns["turn_idx"].to_numpy()[self.turn],
                             "text": pd.array(self.text, dtype="str"), "type": pd.array(self.type, dtype="str")})


def _flags(column: pd.Series) -> np.ndarray:
    """``column.fillna(False).astype(bool)`` as an array; a numpy bool column as it is (the corpus's:
    the two pandas passes cost ~60 us on a request's few turns)."""
    if column.dtype == bool:
        return column.to_numpy()
    return column.fillna(False).astype(bool).to_numpy()


def _annotated(turns: pd.DataFrame) -> np.ndarray:
    """Per turn, whether it is ``pref_annotated`` (``_flags``; a numpy bool column read without a Series)."""
    if "pref_annotated" not in turns:
        return np.zeros(len(turns), bool)
    values = column_values(turns, "pref_annotated")
    return values if values.dtype == bool else _flags(turns["pref_annotated"])


def context_preferences(ctx) -> ContextPreferences:
    """:func:`preferences_for_context`'s rows as arrays.

    Rows are gathered as turn positions and lists, no frame: on a scoring request's few turns,
    pandas' concat, drop_duplicates and sort cost ~8 ms. Duplicate rows go (first kept), then rows
    follow their turn's context row: ``context_turns`` is sorted by (sample_id, turn_idx) and unique
    on it, so that is the (stable) sort by sample_id, turn_idx.
    """
    turns = ctx.corpus.turns
    rows, _ = ctx.context_rows  # (the table's columns read as arrays: it is not built)
    user = user_rows(ctx.context_column("role"))
    annotated = _annotated(turns)[rows]
    turn, text, kind = [], [], []
    ann = np.flatnonzero(user & annotated)
    if len(ann):
        pw = ctx.corpus.pref_words[["session_id", "turn_idx", "text", "type"]]
        a = pd.DataFrame({"session_id": turns["session_id"].array.take(rows[ann]),
                          "turn_idx": ctx.context_column("turn_idx")[ann], "turn": ann}
                         ).merge(pw, on=["session_id", "turn_idx"], how="inner", sort=False)
        turn += a["turn"].tolist()
        text += normalise_series(a["text"]).tolist()
        kind += a["type"].tolist()
    todo = np.flatnonzero(user & ~annotated)
    if len(todo):
        ex = extractor_for(ctx.corpus)
        for t, u in zip(todo.tolist(), ctx.context_column("text")[todo].tolist()):
            for w, ty in ex.extract(u if isinstance(u, str) else ""):  # (memoised per text)
                turn.append(t)
                text.append(w)
                kind.append(ty)
    first: dict = {}
    for k, key in enumerate(zip(turn, [w if isinstance(w, str) else None for w in text], kind)):
        first.setdefault(key, k)  # (a missing text: one key, as drop_duplicates has it)
    keep = np.fromiter(first.values(), np.int64, len(first))
    keep = keep[np.argsort(np.asarray(turn, np.int64)[keep], kind="stable")]
    return ContextPreferences(np.asarray(turn, np.int64)[keep], np.asarray(text, dtype=object)[keep],
                              np.asarray(kind, dtype=object)[keep], no_user_turn=not len(ann) and not len(todo))


# --- evaluation ----------------------------------------------------------------------------------
def _prf(tp: int, n_pred: int, n_gold: int) -> dict:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": int(tp), "n_pred": int(n_pred), "n_gold": int(n_gold)}


def evaluate_extractor(corpus, extractor: PreferenceExtractor | None = None) -> dict:
    """Extractor vs. annotation on every annotated user turn of ``corpus``.

    * exact: span-level match of (session, turn, text, type), texts normalised (NFKC, lower-case);
      micro precision/recall/F1, also per type (``per_type``).
    * loose: match of (session, turn, text) regardless of the type.
    """
    ex = extractor or extractor_for(corpus)
    t = corpus.turns
    t = t[is_user_role(t["role"]) & t["pref_annotated"].fillna(False).astype(bool)]
    gold = corpus.pref_words.merge(t[["session_id", "turn_idx"]], on=["session_id", "turn_idx"], how="inner")
    gold = gold.assign(text=gold["text"].astype(str).map(normalise_text).str.strip())[
        ["session_id", "turn_idx", "text", "type"]
    ].drop_duplicates()
    words = ex.extract_frame(t["text"])
    pred = pd.concat(
        [t[["session_id", "turn_idx"]].loc[words.index].reset_index(drop=True), words.reset_index(drop=True)], axis=1
    ).drop_duplicates()

    def match(keys: list[str], g: pd.DataFrame, p: pd.DataFrame) -> dict:
        g = g[keys].drop_duplicates()
        p = p[keys].drop_duplicates()
        tp = len(g.merge(p, on=keys, how="inner"))
        return _prf(tp, len(p), len(g))

    exact_keys = ["session_id", "turn_idx", "text", "type"]
    res = match(exact_keys, gold, pred)
    res["per_type"] = {ty: match(exact_keys, gold[gold["type"] == ty], pred[pred["type"] == ty]) for ty in PREF_TYPES}
    res["loose"] = match(["session_id", "turn_idx", "text"], gold, pred)
    res["n_turns"] = int(len(t))
    return res
