"""Interactive features (IF) on a hand-written case; values computed by hand in the comments."""
import numpy as np
import pytest

from features.context import FeatureContext
from features.registry import get_kind
from core.corpus import Corpus
from tests.fixtures import tiny_records


def run_kind(corpus, kind, **params):
    k = get_kind(kind)
    ctx = FeatureContext(corpus, artifacts=None, cache=None, lexicon=["华为", "曜金黑", "雅川青", "手机", "小米", "白色"])
    rows = corpus.candidate_rows()
    p = k.params(**params)
    state = k.fit(ctx, p) if k.fit else {}
    out = k.transform(rows, ctx, p, state)
    out.index = list(zip(rows["sample_id"], rows["item_id"]))
    return out


def test_mention_flag_counts_only_turns_before_the_recommendation(tiny_corpus):
    out = run_kind(tiny_corpus, "mention_flag")[""]
    # X1: I1 linked at turn 1 (< 3); I2 linked AT turn 3 and I3 after it: neither counts.
    assert out[("X1", "I1")] == 1.0
    assert out[("X1", "I2")] == 0.0
    assert out[("X1", "I3")] == 0.0
    # X2: I3 is linked at the recommendation turn 1 itself: not context.
    assert out[("X2", "I3")] == 0.0


def test_attr_similarity_hand_computed(tiny_corpus):
    out = run_kind(tiny_corpus, "attr_similarity")
    # I2 vs I1: same values on 品牌 (华为) and 内存 (12GB); names together {品牌, 颜色, 内存, 系统} -> 2/4.
    assert out.loc[[("X1", "I2")], ""].item() == pytest.approx(0.5)
    # I3 vs I1: nothing equal; names together {品牌, 颜色, 内存} -> 0/3.
    assert out.loc[[("X1", "I3")], ""].item() == 0.0
    # I1 vs itself: 3/3.
    assert out.loc[[("X1", "I1")], ""].item() == 1.0
    assert out.loc[[("X1", "I1")], "no_mention"].item() == 0.0
    # ... but I1 is the only item shown: no OTHER shown item to be like.
    assert out.loc[[("X1", "I1")], "others"].item() == 0.0
    assert out.loc[[("X1", "I2")], "others"].item() == pytest.approx(0.5)
    # X2 has no mention before its turn: 0 and the indicator set.
    assert out.loc[[("X2", "I3")], ""].item() == 0.0
    assert out.loc[[("X2", "I3")], "no_mention"].item() == 1.0


def test_title_jaccard_uses_jieba_tokens(tiny_corpus):
    out = run_kind(tiny_corpus, "title_jaccard")
    # "华为拍照手机曜金黑" has no spaces: whitespace splitting would give one token and Jaccard 0.
    # jieba (with the KB words): {华为, 拍照, 手机, 曜金黑}; I1 "华为 Mate60 雅川青 手机":
    # {华为, mate60, 雅川青, 手机}. Shared {华为, 手机}: 2 / 6.
    assert out.loc[[("X1", "I2")], ""].item() == pytest.approx(2 / 6)
    # I3 {小米, 白色, 手机} vs I1: shared {手机}: 1 / 6.
    assert out.loc[[("X1", "I3")], ""].item() == pytest.approx(1 / 6)
    assert out.loc[[("X2", "I3")], "no_mention"].item() == 1.0


def test_average_over_several_mentioned_items():
    rec = tiny_records()
    # Link I3 as well before the recommendation turn of X1: I2's similarity is the mean over {I1, I3}.
    rec["sessions"][0]["turns"][1]["items"] = ["I1", "I3"]
    corpus = Corpus.from_records(**rec)
    out = run_kind(corpus, "attr_similarity")
    # I2 vs I3: 0 equal, names {品牌, 颜色, 内存, 系统} -> 0. Mean (0.5 + 0) / 2.
    assert out.loc[[("X1", "I2")], ""].item() == pytest.approx(0.25)
    jac = run_kind(corpus, "title_jaccard")
    # I2 vs I3: shared {手机} of {华为, 拍照, 手机, 曜金黑, 小米, 白色} -> 1/6; mean (1/3 + 1/6) / 2.
    assert jac.loc[[("X1", "I2")], ""].item() == pytest.approx((2 / 6 + 1 / 6) / 2)
    # ``others`` leaves the candidate itself out: I1 (shown) vs I3 only -> 0/3 and Jaccard 1/6 (the
    # mean with itself would be (1 + 0) / 2); I2 is not shown, so it is the same mean as above.
    assert out.loc[[("X1", "I1")], ""].item() == pytest.approx(0.5)
    assert out.loc[[("X1", "I1")], "others"].item() == 0.0
    assert out.loc[[("X1", "I2")], "others"].item() == pytest.approx(0.25)
    assert jac.loc[[("X1", "I1")], "others"].item() == pytest.approx(1 / 6)
    assert jac.loc[[("X1", "I2")], "others"].item() == pytest.approx((2 / 6 + 1 / 6) / 2)


def test_item_without_kb_attributes_gets_zero_similarity():
    rec = tiny_records()
    rec["items"][2]["attributes"] = {}
    corpus = Corpus.from_records(**rec)
    out = run_kind(corpus, "attr_similarity")
    assert out.loc[[("X1", "I3")], ""].item() == 0.0
    assert np.isfinite(out[""].to_numpy()).all()


def test_token_id_sets_give_equal_tokens_equal_ids_across_calls():
    import pandas as pd

    from features.text import Tokenizer

    tok = Tokenizer(["拍照手机", "黑色"])
    first = tok.token_id_sets(pd.Series(["黑色 拍照手机 黑色", None]))
    second = tok.token_id_sets(pd.Series(["拍照手机 白色"]))
    vocab = tok._vocab
    assert tok.tokenize("黑色 拍照手机 黑色") == ("黑色", "拍照手机", "黑色")
    np.testing.assert_array_equal(first[0], sorted([vocab["黑色"], vocab["拍照手机"]]))  # a set, sorted
    assert len(first[1]) == 0  # a missing title has no tokens
    assert set(first[0]) & set(second[0]) == {vocab["拍照手机"]}  # Jaccard 1/3 of the two titles
    assert tok.vocab_size == len(set(tok.tokenize("黑色 拍照手机")) | set(tok.tokenize("拍照手机 白色")))
    assert tok.token_id_sets(pd.Series(["拍照手机 白色"]))[0] is second[0]  # memoised per text


def test_row_pairs_are_the_inner_join_on_the_sample():
    """RowPairs (integer codes) give the rows and order of pd.merge(how="inner") on sample_id, and
    tell a pair's other item from the candidate by id, also when no row has the other item."""
    import pandas as pd

    from features.extractors.interactive import RowCodes, RowPairs

    rows = pd.DataFrame({"sample_id": pd.Series(["s1", "s1", "s2", "s3", "s2"], dtype="str"),
                         "item_id": pd.Series(["a", "b", "a", "c", "d"], dtype="str")})
    table = pd.DataFrame({"sample_id": pd.Series(["s2", "s1", "s9", "s1", "s2"], dtype="str"),
                          "item_id": pd.Series(["a", "z", "a", "a", "b"], dtype="str")})
    p = RowPairs.of(RowCodes.of(rows), table["sample_id"], table["item_id"])
    want = (rows.reset_index().rename(columns={"index": "pos"})
            .merge(table.reset_index().rename(columns={"index": "at", "item_id": "other"}), on="sample_id"))
    assert list(zip(p.pos, p.at)) == list(zip(want["pos"], want["at"]))
    assert p.same().tolist() == (want["item_id"] == want["other"]).tolist()
    assert np.asarray(p.ids)[p.item].tolist() == want["item_id"].tolist()
    assert (p.other == -1).tolist() == (~want["other"].isin(rows["item_id"])).tolist()


def test_shared_tokens_of_a_few_pairs_are_the_sparse_product(monkeypatch):
    import scipy.sparse as sp

    from features.extractors import interactive

    rng = np.random.default_rng(0)
    for _ in range(200):
        n, vocab = rng.integers(1, 30), rng.integers(1, 25)
        r = rng.integers(0, n, rng.integers(0, 150))
        mat = sp.csr_matrix((np.ones(len(r), np.float32), (r, rng.integers(0, vocab, len(r)))), shape=(n, vocab))
        mat.data[:] = 1.0  # token sets, as the title matrix holds them
        a = rng.integers(0, n, rng.integers(1, 80))
        b = rng.integers(0, n, len(a))
        want = np.asarray(mat[a].multiply(mat[b]).sum(1)).ravel()
        got = interactive._shared_tokens(mat, a, b)
        assert got.dtype == want.dtype == np.float32 and np.array_equal(got, want)
    mat = sp.csr_matrix(np.array([[1, 1, 0, 1], [0, 1, 1, 1], [0, 0, 0, 0]], np.float32))
    assert interactive._shared_tokens(mat, np.array([0, 0, 1, 2]), np.array([1, 0, 1, 0])).tolist() == [2, 3, 3, 0]
    monkeypatch.setattr(interactive, "_DENSE_CELLS_MAX", 0)  # the sparse product itself
    assert interactive._shared_tokens(mat, np.array([0, 0, 1, 2]), np.array([1, 0, 1, 0])).tolist() == [2, 3, 3, 0]
