"""Conversation knowledge graph: construction counts, rare-value filter, eq.1 normalisation by
hand, sampled GCN vs exact GCN, GCN+TransE pretraining on a toy graph, export formats, and the
KF feature kinds (user_state, dialogue_keywords) on a hand-written corpus."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.context import FeatureContext
from features.kg.graph import CKG, GraphParams, build_ckg, main as graph_main
from features.kg.pretrain import (
    Adjacency, CKGParams, GCNTransE, NeighbourSampler, PretrainParams, build_and_pretrain,
    load_entity_embeddings, normalized_adjacency, pretrain, sample_computation_graph, tail_ranks,
)
from features.registry import get_kind
from features.text import Tokenizer, lexicon_from_items
from tests.fixtures import kg_corpus


GP = GraphParams(min_value_count=2, min_keyword_df=1)


def _named(g: CKG) -> pd.DataFrame:
    t = g.triples
    return pd.DataFrame({"h": [g.entities[i] for i in t["head"]], "r": [g.relations[i] for i in t["relation"]],
                         "t": [g.entities[i] for i in t["tail"]]})


# -- construction --------------------------------------------------------------------------------------------
def test_ckg_triple_types_and_counts():
    g = build_ckg(kg_corpus(), GP, Tokenizer())
    st = g.stats()
    assert st["triples_by_relation"] == {
        "user.has.user_tag": 8,  # U1: sex, age, 2 top3 tags; U2: sex, age, 1 tag; U3: age only (None, [])
        "item.belong_to.category": 4,
        "seller.has.item": 4,
        "item.has.value": 6,  # 7 attribute rows minus 品牌=小米 (held by one item < min_value_count=2)
        "property.has.value": 3,  # 颜色=黑色, 颜色=白色, 品牌=华为
        "user.created.session": 2,
        "session.relate_to.seller": 2,
        "session.has.intention": 3,  # D1|ask_rec, D1|ask_attr, D2|ask_rec (D2's turn 2 is after its sample)
        "intention.has.keyword": 8,  # D1|ask_rec: 拍照 手机; D1|ask_attr: 黑色 华为 手机; D2|ask_rec: 蓝牙 耳机 降噪
        "item.has_title_word.keyword": 15,  # 4 + 4 + 4 + 3 title words
        "intention.is_a.intent": 3,
    }
    assert st["entities_by_type"] == {"user": 3, "user_tag": 7, "item": 4, "category": 2, "seller": 2,
                                      "property": 2, "value": 3, "session": 2, "intention": 3, "intent": 2,
                                      "keyword": 10}
    assert g.entities[:2] == ["<pad>", "<oov>"] and len(set(g.entities)) == len(g.entities)
    assert g.triples[["head", "tail"]].min().min() >= 2
    named = _named(g)
    assert ((named.h == "user:U1") & (named.t == "user_tag:top3_categories_recent=耳机")).any()
    assert ((named.h == "seller:S2") & (named.t == "item:I4")).any()
    assert ((named.h == "property:颜色") & (named.t == "value:颜色=黑色")).any()
    assert ((named.h == "intention:D1|ask_attr") & (named.t == "keyword:黑色")).any()
    # numeric profile fields are bucketed: three users, three different age buckets
    assert sorted(named.t[named.t.str.startswith("user_tag:age=")]) == ["user_tag:age=q0", "user_tag:age=q2", "user_tag:age=q4"]


def test_rare_values_dropped_and_context_only():
    g = build_ckg(kg_corpus(), GP, Tokenizer())
    assert "value:品牌=小米" not in g.entity_index and "value:颜色=黑色" in g.entity_index
    g1 = build_ckg(kg_corpus(), GraphParams(min_value_count=1, min_keyword_df=1), Tokenizer())
    assert "value:品牌=小米" in g1.entity_index
    assert g1.stats()["triples_by_relation"]["item.has.value"] == 7
    g3 = build_ckg(kg_corpus(), GraphParams(min_value_count=3, min_keyword_df=1), Tokenizer())
    assert not any(e.startswith("value:") for e in g3.entities)
    # 运动 is said only after D2's recommendation turn: a title keyword, never an intention keyword
    named = _named(g)
    assert not ((named.r == "intention.has.keyword") & (named.t == "keyword:运动")).any()
    assert ((named.r == "item.has_title_word.keyword") & (named.t == "keyword:运动")).any()
    g_all = build_ckg(kg_corpus(), GraphParams(min_value_count=2, min_keyword_df=1, conversation_turns="all"), Tokenizer())
    named = _named(g_all)
    assert ((named.h == "intention:D2|ask_attr") & (named.t == "keyword:运动")).any()


def test_global_intentions():
    g = build_ckg(kg_corpus(), GraphParams(min_value_count=2, min_keyword_df=1, intention_scope="global"), Tokenizer())
    assert [e for e in g.entities if e.startswith("intention:")] == ["intention:ask_attr", "intention:ask_rec"]
    assert "intention.is_a.intent" not in g.relations


def test_save_load_and_stats_cli(tmp_path, capsys):
    g = build_ckg(kg_corpus(), GP, Tokenizer())
    g.save(tmp_path)
    h = CKG.load(tmp_path)
    assert h.entities == g.entities and h.relations == g.relations
    pd.testing.assert_frame_equal(h.triples, g.triples)
    assert h.keyword_idf == g.keyword_idf and h.title_idf == g.title_idf
    assert graph_main(["stats", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "entities: 40" in out and "triples: 58" in out and "item.has_title_word.keyword" in out


def test_lookup_unknown_is_oov():
    g = build_ckg(kg_corpus(), GP, Tokenizer())
    ids = g.lookup(pd.Series(["item:I1", "item:NOPE", "<pad>", None]))
    assert ids.tolist() == [g.entity_index["item:I1"], 1, 1, 1]


# -- eq. 1 and neighbour sampling -----------------------------------------------------------------------------
def test_normalized_adjacency_by_hand():
    # path 0-1-2-3; the reversed duplicate (1, 0) must not count twice
    tri = pd.DataFrame({"head": [0, 1, 2, 1], "relation": [0, 0, 0, 1], "tail": [1, 2, 3, 0]})
    a = normalized_adjacency(tri, 4).toarray()
    s6 = 1 / np.sqrt(6)
    # D-hat = diag(2, 3, 3, 2) (degrees + self-loop); entries 1/sqrt(d_i d_j) on edges and the diagonal
    want = np.array([
        [1 / 2, s6, 0, 0],
        [s6, 1 / 3, 1 / 3, 0],
        [0, 1 / 3, 1 / 3, s6],
        [0, 0, s6, 1 / 2],
    ])
    np.testing.assert_allclose(a, want, atol=1e-12)


def _star_plus(n_leaves=6):
    # hub 0 with leaves 1..n, and a chain n+1 - n+2
    h = [0] * n_leaves + [n_leaves + 1]
    t = list(range(1, n_leaves + 1)) + [n_leaves + 2]
    return pd.DataFrame({"head": h, "relation": 0, "tail": t}), n_leaves + 3


def test_sampled_gcn_equals_exact_when_degrees_fit():
    tri, n = _star_plus(6)
    p = PretrainParams(dim=8, gcn_layers=2, neighbours=10, seed=3)
    model = GCNTransE(n, 1, p)
    adj = Adjacency.from_triples(tri, n)
    exact = model.full_output(adj.normalized())
    sampler = NeighbourSampler(adj, p.neighbours, np.random.default_rng(0))
    targets = np.array([0, 3, 7, 8], np.int64)
    nodes, hops = sample_computation_graph(sampler, targets, p.gcn_layers)
    import tensorflow as tf

    H0 = tf.gather(model.E, nodes)
    out = model.gcn(H0, [(n_prev, tf.constant(pos), tf.constant(w), tf.constant(sw)) for n_prev, pos, w, sw in hops])
    np.testing.assert_allclose(out.numpy(), exact[targets], atol=1e-5)


def test_sampled_aggregation_is_unbiased_for_large_degrees():
    tri, n = _star_plus(12)
    adj = Adjacency.from_triples(tri, n)
    x = np.random.default_rng(1).normal(size=(n, 3))
    want = (adj.normalized() @ x)[0]
    sampler = NeighbourSampler(adj, 4, np.random.default_rng(2))
    nodes = np.zeros(4000, np.int64)
    nbr, w, sw = sampler.sample(nodes)
    est = (w[:, :, None] * x[nbr]).sum(1) + sw[:, None] * x[nodes]
    np.testing.assert_allclose(est.mean(0), want, atol=0.03)
    assert np.ptp(est[:, 0]) > 0  # really sampled (degree 12 > fan-out 4)


# -- pretraining -------------------------------------------------------------------------------------------------
def toy_graph(n_items=60, n_cat=6, n_col=5, seed=0) -> CKG:
    rng = np.random.default_rng(seed)
    ents = (["<pad>", "<oov>"] + [f"item:{i}" for i in range(n_items)] + [f"category:{c}" for c in range(n_cat)]
            + [f"value:颜色=c {c}" for c in range(n_col)])
    item = np.arange(n_items) + 2
    cat = 2 + n_items + rng.integers(0, n_cat, n_items)
    col = 2 + n_items + n_cat + rng.integers(0, n_col, n_items)
    tri = pd.DataFrame({"head": np.r_[item, item], "relation": np.r_[np.zeros(n_items), np.ones(n_items)],
                        "tail": np.r_[cat, col]}).astype(np.int32)
    return CKG(ents, ["item.belong_to.category", "item.has.value"], tri)


def test_pretraining_learns_toy_graph():
    g = toy_graph()
    res = pretrain(g, PretrainParams(epochs=100, batch_size=32, lr=0.01, seed=0))
    assert res.history[-1]["loss"] < 0.5 * res.history[0]["loss"]
    ranks = tail_ranks(res.entity, res.relation, g.triples.to_numpy())
    n = len(g.entities) - 2  # 71 candidates: random mean rank ~36, random hits@3 ~4%
    assert ranks.mean() < 8, ranks.mean()
    assert (ranks <= 3).mean() > 0.5
    assert res.entity.shape == (len(g.entities), 64) and not res.entity[:2].any()
    assert n == 71


def test_typed_negatives_keep_the_type():
    from features.kg.pretrain import TypedSampler

    g = toy_graph()
    types = g.entity_types()
    like = np.array([2, 62, 68] * 200)  # an item, a category, a value
    drawn = TypedSampler(types).draw(like, np.random.default_rng(0))
    assert (types[drawn] == types[like]).all() and len(set(drawn[like == 62])) == 6  # all 6 categories drawn
    res = pretrain(g, PretrainParams(epochs=2, batch_size=32, dim=8, negatives="typed"))
    assert np.isfinite(res.entity).all()


def test_pretraining_is_seeded():
    g = toy_graph()
    a = pretrain(g, PretrainParams(epochs=2, batch_size=32, seed=5, dim=8))
    b = pretrain(g, PretrainParams(epochs=2, batch_size=32, seed=5, dim=8))
    np.testing.assert_allclose(a.entity, b.entity, atol=1e-6)


def test_build_and_pretrain_exports(tmp_path):
    from gensim.models import KeyedVectors

    p = CKGParams(min_value_count=2, min_keyword_df=1, epochs=2, dim=16)
    g = build_and_pretrain(kg_corpus(), tmp_path, p, tokenizer=Tokenizer())
    emb = load_entity_embeddings(tmp_path)
    assert emb.shape == (g.num_entities, 16) and emb.dtype == np.float32
    assert not emb[:2].any() and np.abs(emb[2:]).sum(1).min() > 0
    kv = KeyedVectors.load_word2vec_format(str(tmp_path / "entity_embeddings.w2v.txt"), binary=False)
    assert len(kv) == g.num_entities - 2
    np.testing.assert_allclose(kv["keyword:拍照"], emb[g.entity_index["keyword:拍照"]], rtol=1e-4, atol=1e-5)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["pretrain"]["triples"] == 58 and (tmp_path / "relation_embeddings.npy").exists()


# -- KF feature kinds ------------------------------------------------------------------------------------------
CKG_BLOCK = {"min_value_count": 2, "min_keyword_df": 1, "epochs": 1, "dim": 8}


def _ctx(corpus, tmp_path, lexicon=None):
    lex = lexicon if lexicon is not None else lexicon_from_items(corpus.items, corpus.item_attrs)
    return FeatureContext(corpus, tmp_path / "artifacts", tmp_path / "cache", lex, show_progress=False)


def test_kf_kinds_share_one_resource_and_outputs(tmp_path):
    corpus = kg_corpus()
    ctx = _ctx(corpus, tmp_path)
    us, dk = get_kind("user_state"), get_kind("dialogue_keywords")
    pu, pd_ = us.params(ckg=CKG_BLOCK, maxlen=3), dk.params(ckg=CKG_BLOCK, query_len=4, title_len=3)
    su, sd = us.fit(ctx, pu), dk.fit(ctx, pd_)
    assert su == sd  # one CKG built and pretrained, shared
    assert len(list((tmp_path / "artifacts" / "resources").iterdir())) == 1
    g = CKG.load(ctx.path(su["ckg"]))
    assert su["vocab_sizes"] == {"ckg_entity": g.num_entities}
    assert [o.column("user_state") for o in us.outputs(pu, su)] == [
        "user_state__click", "user_state__cart", "user_state__favorite", "user_state__purchase"]
    assert all(o.kind == "ids" and o.vocab == "ckg_entity" and o.maxlen == 3 for o in us.outputs(pu, su))
    assert [(o.key, o.maxlen) for o in dk.outputs(pd_, sd)] == [("query", 4), ("title", 3)]

    rows = corpus.candidate_rows()
    e = g.entity_index
    out = us.transform(rows, ctx, pu, su)
    # U1 clicked I1 (ts 1), I3 (ts 2), I9 (ts 5, not in the KB): most recent first, I9 -> OOV
    assert out.loc[0, "click"] == [1, e["item:I3"], e["item:I1"]]
    assert out.loc[0, "cart"] == [e["item:I2"]] and out.loc[0, "favorite"] == [] and out.loc[0, "purchase"] == []
    assert out.loc[2, "purchase"] == [e["item:I4"]] and out.loc[2, "click"] == []

    kw = dk.transform(rows, ctx, pd_, sd)
    q = kw.loc[0, "query"]  # D1 before turn 3: 想要(stop) 拍照 手机 / 黑色 华为 手机 -> 手机 (tf 2) first
    assert q[0] == e["keyword:手机"] and sorted(q[1:]) == sorted(e[f"keyword:{w}"] for w in ["拍照", "黑色", "华为"])
    assert kw.loc[2, "query"] and all(i >= 2 for i in kw.loc[2, "query"])
    assert set(kw.loc[3, "title"]) == {e["keyword:蓝牙"], e["keyword:耳机"], e["keyword:运动"]}
    assert len(kw.loc[0, "title"]) == 3

    # the pretrained matrix the materialiser attaches
    from features.extractors.knowledge import load_pretrained

    mat = load_pretrained(ctx, su)
    assert mat.shape == (g.num_entities, 8) and np.allclose(load_pretrained(ctx.artifacts, su), mat)
    assert su["pretrained"]["ckg_entity"].endswith("entity_embeddings.npy")


def test_kf_unseen_users_items_keywords_map_to_oov(tmp_path):
    corpus = kg_corpus()
    ctx = _ctx(corpus, tmp_path)
    us, dk = get_kind("user_state"), get_kind("dialogue_keywords")
    pu, pd_ = us.params(ckg=CKG_BLOCK), dk.params(ckg=CKG_BLOCK)
    su, sd = us.fit(ctx, pu), dk.fit(ctx, pd_)
    # a scoring corpus: new user U9 with a click on a new item I8 and the known I2; a new candidate
    # item I8 whose title mixes known and unseen words; an utterance with an unseen word
    new = kg_corpus()
    new.items = pd.concat([new.items, pd.DataFrame({"item_id": ["I8"], "category": ["平板"], "shop_id": ["S9"],
                                                     "title": ["平板 蓝牙 键盘"], "price": [999.0]})], ignore_index=True)
    new.sessions = pd.DataFrame({"session_id": ["D9"], "user_id": ["U9"], "shop_id": ["S9"]})
    new.turns = pd.DataFrame({"session_id": ["D9"] * 2, "turn_idx": [0, 1], "role": ["user", "staff"],
                              "text": ["蓝牙 键盘 平板", "推荐"], "intent": ["ask_rec", None],
                              "recommend": [False, True], "pref_annotated": [False, False]})
    new.behaviors = pd.DataFrame({"user_id": ["U9", "U9"], "type": ["click", "click"], "item_id": ["I8", "I2"], "ts": [1, 2]})
    new.samples = pd.DataFrame({"sample_id": ["Z1"], "session_id": ["D9"], "user_id": ["U9"], "turn": [1],
                                "label_item": ["I8"], "split": ["test"]})
    new.candidates = pd.DataFrame({"sample_id": ["Z1", "Z1"], "position": [0, 1], "item_id": ["I8", "I1"],
                                   "label": pd.array([1, 0], dtype="int8")})
    sctx = _ctx(new, tmp_path, lexicon=ctx.lexicon)
    rows = new.candidate_rows()
    e = CKG.load(ctx.path(su["ckg"])).entity_index
    out = us.transform(rows, sctx, pu, su)
    assert out.loc[0, "click"] == [e["item:I2"], 1]
    kw = dk.transform(rows, sctx, pd_, sd)
    assert kw.loc[0, "query"][0] == e["keyword:蓝牙"] and 1 in kw.loc[0, "query"]  # known first, unseen -> OOV
    assert kw.loc[0, "title"][0] == e["keyword:蓝牙"] and set(kw.loc[0, "title"][1:]) == {1}
