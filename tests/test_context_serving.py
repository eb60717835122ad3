"""The context features' item-level structures kept across the calls of a service per item key
(``features.frames.ItemKeys``): exactly what the table path gives."""
import zlib

import numpy as np
import pytest

import features.extractors.context as cf
from features.context import FeatureContext
from features.frames import ITEM_KEYS, ItemKeys
from tests.fixtures import make_corpus

ITEMS = {"A": ("手机", "华为 Mate 黑色", {"颜色": "黑色"}), "B": ("手机", "  ", {}), "C": ("耳机", "小米 耳机", {}),
         "D": ("手机", "荣耀 X 白色", {}), "E": ("手机", "华为 Mate 黑色", {})}  # E: A's title again


def _embed(texts):
    """A fixed vector per text (zero for a blank one), as an embedding cache gives them."""
    out = np.zeros((len(texts), 8), np.float32)
    for k, t in enumerate(texts):
        if t.strip():
            out[k] = np.random.default_rng(zlib.crc32(t.encode())).standard_normal(8).astype(np.float32)
    return out


@pytest.fixture
def corpus():
    return make_corpus(ITEMS, {"S1": [("user", "想要华为手机", []), ("staff", "看看", None)]},
                       [("X", "S1", 1, ["A", "B", "C"], "A", "train")])


def test_item_titles_kept_per_item_key_are_the_table_paths(corpus, tmp_path, monkeypatch):
    memos: dict = {}

    def served():
        ctx = FeatureContext(corpus, tmp_path / "art", tmp_path / "cache")
        ctx.memo(ITEM_KEYS, lambda: ItemKeys({i: f"key-{i}" for i in ITEMS}, memos))
        return ctx

    cases = [np.array(w, dtype=object) for w in (["A", "B", "C"], ["E", "D", "A"], ["B", "D", "C", "E", "A"])]
    for wanted in cases:
        table = cf._item_titles(FeatureContext(corpus, tmp_path / "art", tmp_path / "cache"), wanted, _embed, "whole")
        keyed = cf._keyed_item_titles(served(), wanted, _embed, "enc")
        for (TM, title_of, t_cnt) in (table, keyed):
            assert title_of[-1] == -1
        # per item: the same vector (or none), the same count
        assert np.array_equal(table[2], keyed[2]) and np.array_equal(table[1] >= 0, keyed[1] >= 0)
        for p in np.flatnonzero(table[1][:-1] >= 0):
            assert table[0][table[1][p]].tobytes() == keyed[0][keyed[1][p]].tobytes()
    assert cf._keyed_item_titles(served(), cases[0], _embed, "enc")[2].tolist() == [1, 0, 1]  # B's title is blank

    def no_table(*a):
        raise AssertionError("every key's title is kept: no table")

    monkeypatch.setattr(cf, "_item_titles", no_table)
    for wanted in cases:
        cf._keyed_item_titles(served(), wanted, _embed, "enc")
    assert cf._keyed_item_titles(served(), np.array(["B"], dtype=object), _embed, "enc") is None  # no title at all
    assert cf._keyed_item_titles(served(), np.array(["Z"], dtype=object), _embed, "enc") is None  # no record
    assert cf._keyed_item_titles(FeatureContext(corpus, tmp_path / "art", tmp_path / "cache"), cases[0], _embed, "enc") is None


@pytest.mark.parametrize("aggregate", ["mean", "max"])
def test_glove_cosine_of_a_serving_call_is_the_table_paths(tmp_path, aggregate):
    """The values as embedder rows kept per item key (``_keyed_item_phrase_rows``): the same values as
    a context without item keys, call after call (new phrases and keys met on the way)."""
    from features.registry import get_kind
    from tests.test_context_fast import SAMPLES, SESSIONS
    from tests.test_context_features import ITEMS as GLOVE_ITEMS, VECS

    vec_file = tmp_path / "vectors.txt"
    vec_file.write_text("\n".join([f"{len(VECS)} 4"] + [f"{w} " + " ".join(map(str, v)) for w, v in VECS.items()]) + "\n",
                        encoding="utf-8")
    k = get_kind("glove_cosine")
    p = k.params(vectors={"method": "pretrained", "path": str(vec_file)}, aggregate=aggregate)
    memos: dict = {}
    for sessions, samples in (({"D": SESSIONS["D"]}, [SAMPLES[2]]), (SESSIONS, SAMPLES), ({"C": SESSIONS["C"]}, SAMPLES[:2])):
        c = make_corpus(GLOVE_ITEMS, sessions, samples)
        plain = FeatureContext(c, tmp_path / "art", tmp_path / "cache", show_progress=False)
        state = k.fit(plain, p)
        served = FeatureContext(c, tmp_path / "art", tmp_path / "cache", show_progress=False)
        served.memo(ITEM_KEYS, lambda: ItemKeys({i: f"key-{i}" for i in GLOVE_ITEMS}, memos))
        assert cf._keyed_item_phrase_rows(served, np.array(list(GLOVE_ITEMS), dtype=object), p,
                                          cf._embedder(plain.path(state["vectors"]), cf.kb_tokenizer(plain))) is not None
        rows = c.candidate_rows()
        want, got = k.transform(rows, plain, p, state), k.transform(rows, served, p, state)
        assert want.to_numpy().tobytes() == got.to_numpy().tobytes() and want["has_pref"].sum() > 0
