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

1. regex rules find negative and comparative expressions (negative first; overlapping matches are
   resolved leftmost-longest) and blank them out of the text;
2. the rest is tokenised with the KB-aware jieba :class:`~features.text.Tokenizer` (categories,
   brands and attribute values are its user dictionary) and every token that is a KB word becomes a
   ``category`` (a category name) or ``descriptive`` (an attribute value or a built-in descriptive
   word) preference word.

Texts are compared and returned in normalised form (:func:`features.text.normalise_text`: NFKC,
lower-case). Negative words keep their negation and a trailing 的 ("不要金色的"); :func:`rejected_value` strips it
("金色"), which is what similarity features should embed.

Extraction runs once per *distinct* text. :func:`evaluate_extractor` measures the extractor against
the annotated turns of a corpus.
"""
from __future__ import annotations

import re
from functools import lru_cache
from dataclasses import dataclass, field
from typing import Iterable

import pandas as pd

from features.text import Tokenizer, lexicon_from_items, normalise_text, tokenizer_for

PREF_TYPES = ("descriptive", "category", "comparative", "negative")
POSITIVE_TYPES = ("descriptive", "category", "comparative")
USER_ROLES = frozenset({"user", "customer", "buyer", "client", "q", "u"})
PREF_COLUMNS = ["sample_id", "turn_idx", "text", "type"]

# --- rules --------------------------------------------------------------------------------------
_UNIT = r"(?:元|块钱|块|w|万|千|g|gb|t|tb|m|mb|寸|英寸|瓦|kg|公斤|斤|克|mah|毫安|升|l|ml|hz|米|cm|mm|人|匹|码|度|核|天)"
_NUM = r"\d+(?:\.\d+)?"
_CMP_WORDS = r"(?:便宜|贵|轻|重|大|小|薄|厚|亮|淡|深|浅|好|快|慢|长|短|高|低|多|少|强|新|安静|省电)"
_STOP = r"(?=的|了|吧|呢|啊|哦|呀|些|,|，|。|\.|!|！|\?|？|;|；|、|\s|$)"

NEGATION_PREFIX = r"(?:不太想要|不想要|不需要|不喜欢|不考虑|不要|不买|不用|不选|别要|别买|别选|别|除了|排除|讨厌|拒绝)"
_NEG = re.compile(NEGATION_PREFIX + r"(?:太|那么|这么|那种|这种|是)?" + r"(?P<target>[^,，。.!！?？;；、\s]{1,10}?)" + _STOP)
# Inside a fallback negative target: words that end it ("除了黑色还有吗" -> "黑色").
_NEG_STOP = re.compile(r"还|吗|呢|吧|也|就|行|我|你|和|或|要|可以|有没有|有吗|好吗|呀")
_CMP = [
    # 低于3000 / 大于200g / 不超过5000元
    re.compile(
        r"(?:不超过|不高于|不低于|不少于|不大于|不小于|低于|高于|大于|小于|超过|少于|多于|至少|最多|最少|起码)\s*"
        + _NUM + r"\s*" + _UNIT + r"?"
    ),
    # 3000以内 / 200g以上 / 5000元左右
    re.compile(_NUM + r"\s*" + _UNIT + r"?\s*(?:以内|以下|以上|之内|之下|左右|上下)"),
    # 比之前那个轻 / 比iphone性能好
    re.compile(r"比[^,，。.!！?？;；、\s]{1,12}?(?:更|还|要)?" + _CMP_WORDS + r"(?:一点|一些|点儿|点|些)?"),
    # 便宜一点 / 更轻 / 再大些
    re.compile(r"(?:更|再)?" + _CMP_WORDS + r"(?:一点儿|一点|一些|点儿|点|些)"),
    re.compile(r"(?:更|再)" + _CMP_WORDS),
]
# Words that are KB attribute values but say nothing about a preference.
STOP_VALUES = frozenset(
    "支持 不支持 其他 其它 是 否 有 无 不限 通用 以上 以下 常规 标准 普通 默认 均码 未知 暂无 可以 不可以 一般 其他品牌"
    " 官方标配 标配 套餐 中国 中国大陆 国产 正常 没有 需要 不需要 没有 更多".split()
)
# Descriptive words that are not KB values but are typical preference words (usage, user groups, style).
DESCRIPTIVE_WORDS = frozenset(
    "拍照清晰 性价比高 性价比 轻薄 轻便 便携 耐用 大容量 大屏 大屏幕 续航 续航长 待机长 省电 静音 安静 高端 时尚 简约 可爱"
    " 商务 学生 女生 男生 老人 儿童 小孩 宝宝 孕妇 家用 办公 游戏 打游戏 运动 送礼 户外 亮色 暗色 深色 浅色 防水 防摔 快充"
    " 无线 智能 高清 护眼 保湿 补水 美白 控油 持久 显白".split()
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
    """Rule/lexicon based preference-word extractor (see the module doc)."""

    tokenizer: Tokenizer
    categories: frozenset[str]
    descriptive: frozenset[str]
    _memo: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_kb(
        cls, items: pd.DataFrame, item_attrs: pd.DataFrame, tokenizer: Tokenizer | None = None
    ) -> "PreferenceExtractor":
        cats = set(items["category"].dropna().astype(str).map(normalise_text).str.strip())
        lex = set(lexicon_from_items(items, item_attrs))
        desc = (lex - cats - STOP_VALUES) | DESCRIPTIVE_WORDS
        cats = {c for c in cats if len(c) >= 1}
        if tokenizer is None:
            tokenizer = Tokenizer(sorted(lex | DESCRIPTIVE_WORDS))
        return cls(tokenizer, frozenset(cats), frozenset(desc))

    def _longest_kb_word(self, text: str, start: int) -> str:
        if not hasattr(self, "_maxlen"):
            self._words = self.categories | self.descriptive
            self._maxlen = max((len(w) for w in self._words), default=0)
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
        spans: list[tuple[int, int, str, str]] = []
        for m in _NEG.finditer(norm):
            t0 = m.start("target")
            # The rejected thing is preferably a KB word (longest match), else up to a stop.
            kb = self._longest_kb_word(norm, t0)
            end = t0 + len(kb) if kb else m.end("target")
            if not kb:
                stop = _NEG_STOP.search(norm, t0 + 1, end)
                end = stop.start() if stop else end
            if not re.search(r"\w", norm[t0:end]):
                continue
            if norm.startswith("的", end):  # annotations write "不要金色的"
                end += 1
            spans.append((m.start(), end, "negative", ""))
        for rx in _CMP:
            for m in rx.finditer(norm):
                spans.append((m.start(), m.end(), "comparative", ""))
        chosen = _leftmost_longest(spans)
        out: list[tuple[int, str, str]] = [(s, norm[s:e], t) for s, e, t, _ in chosen]
        # Tokenise what the rules did not take.
        rest = list(norm)
        for s, e, _, _ in chosen:
            rest[s:e] = [" "] * (e - s)
        rest_text = "".join(rest)
        pos = 0
        for w in self.tokenizer.tokenize(rest_text):
            start = rest_text.find(w, pos)
            pos = start + len(w) if start >= 0 else pos
            if w in self.categories:
                out.append((start, w, "category"))
            elif w in self.descriptive:
                out.append((start, w, "descriptive"))
        out.sort(key=lambda x: x[0])
        seen: set[tuple[str, str]] = set()
        res = []
        for _, w, t in out:
            if (w, t) not in seen:
                seen.add((w, t))
                res.append((w, t))
        hit = tuple(res)
        self._memo[text] = hit
        return hit

    # -- many texts ------------------------------------------------------------------------------
    def extract_frame(self, texts: pd.Series) -> pd.DataFrame:
        """Long table (index of ``texts``, text, type); each distinct text is processed once."""
        s = texts.fillna("").astype(str)
        uniq = pd.unique(s)
        per_text = [(u, w, t) for u in uniq for (w, t) in self.extract(u)]
        words = pd.DataFrame(per_text, columns=["_src", "text", "type"])
        left = pd.DataFrame({"_src": s.to_numpy(), "_pos": range(len(s))}, index=None)
        m = left.merge(words, on="_src", how="inner", sort=False).sort_values("_pos", kind="stable")
        m.index = texts.index[m["_pos"].to_numpy()]
        return m[["text", "type"]]


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
        lex = tuple(sorted(set(lexicon_from_items(corpus.items, corpus.item_attrs)) | DESCRIPTIVE_WORDS))
        meta[key] = PreferenceExtractor.from_kb(corpus.items, corpus.item_attrs, _extraction_tokenizer(lex))
    return meta[key]


def is_user_role(role: pd.Series) -> pd.Series:
    return role.fillna("").astype(str).str.lower().isin(USER_ROLES)


def preferences_for_context(ctx) -> pd.DataFrame:
    """sample_id, turn_idx, text, type for the user turns of each sample's context.

    Only turns before the sample's turn are considered (``ctx.context_turns``). Annotated turns
    (``pref_annotated``) take the corpus annotation, the others the extractor's output.
    """
    ct = ctx.context_turns
    ct = ct[is_user_role(ct["role"])]
    annotated = ct["pref_annotated"].fillna(False).astype(bool) if "pref_annotated" in ct else pd.Series(False, ct.index)
    parts = []
    ann = ct.loc[annotated, ["sample_id", "session_id", "turn_idx"]]
    if len(ann):
        pw = ctx.corpus.pref_words[["session_id", "turn_idx", "text", "type"]]
        a = ann.merge(pw, on=["session_id", "turn_idx"], how="inner", sort=False)
        a = a.assign(text=a["text"].astype(str).map(normalise_text).str.strip())
        parts.append(a[PREF_COLUMNS])
    todo = ct.loc[~annotated, ["sample_id", "turn_idx", "text"]]
    if len(todo):
        ex = extractor_for(ctx.corpus)
        words = ex.extract_frame(todo["text"])
        e = todo[["sample_id", "turn_idx"]].loc[words.index].reset_index(drop=True)
        e = pd.concat([e, words.reset_index(drop=True)], axis=1)
        parts.append(e[PREF_COLUMNS])
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=("int64" if c == "turn_idx" else "object")) for c in PREF_COLUMNS})
    out = pd.concat(parts, ignore_index=True)
    out = out.drop_duplicates(PREF_COLUMNS).sort_values(["sample_id", "turn_idx"], kind="stable")
    return out.reset_index(drop=True)


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


def iter_types(words: Iterable[tuple[str, str]], types: Iterable[str]) -> list[str]:
    keep = set(types)
    return [w for w, t in words if t in keep]
