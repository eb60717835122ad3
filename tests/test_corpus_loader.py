"""The validating corpus loader: every error case names file, line and field; skip policy and its
report; parquet; splits; the save/load round trip; from_records."""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from core.corpus import Corpus, CorpusError, load_corpus, split_for_session
from tests.fixtures import loader_records, write_corpus


def lines_of(recs: dict, name: str) -> list[str]:
    return [json.dumps(r, ensure_ascii=False) for r in recs[name]]


def load_error(tmp_path: Path, recs: dict, raw_lines=None) -> CorpusError:
    root = write_corpus(tmp_path / "c", recs, raw_lines)
    with pytest.raises(CorpusError) as ei:
        load_corpus(root)
    return ei.value


def assert_problem(err: CorpusError, file: str, line: int, field: str, reason_part: str = "") -> None:
    msg = str(err)
    hits = [p for p in err.problems if p.file == file and p.line == line and p.field == field]
    assert hits, f"no problem at {file}:{line} field {field!r} in:\n{msg}"
    assert f"{file}:{line}:" in msg and repr(field) in msg
    if reason_part:
        assert any(reason_part in p.reason for p in hits), [p.reason for p in hits]


def test_valid_corpus_loads_with_contract_columns(tmp_path):
    c = load_corpus(write_corpus(tmp_path / "c", loader_records()))
    assert list(c.items.columns) == ["item_id", "category", "shop_id", "title", "price"]
    assert list(c.item_attrs.columns) == ["item_id", "name", "value"]
    assert list(c.turns.columns) == ["session_id", "turn_idx", "role", "text", "intent", "recommend", "pref_annotated"]
    assert list(c.samples.columns) == ["sample_id", "session_id", "user_id", "turn", "label_item", "split"]
    assert list(c.candidates.columns) == ["sample_id", "position", "item_id", "label"]
    assert c.users.columns[0] == "user_id" and "avg_pay_monthly" in c.users.columns
    assert c.candidates["label"].dtype == "int8"
    assert math.isnan(c.items.loc[c.items["item_id"] == "I3", "price"].item())
    assert c.turns["pref_annotated"].tolist() == [True, False, True, False, False, False]
    assert c.users.set_index("user_id").loc["U1", "top3_categories_recent"] == ["手机", "耳机"]
    assert c.samples.set_index("sample_id").loc["X2", "user_id"] == "U2"
    assert c.meta["n_problems"] == 0 and c.meta["dropped"] == []
    rows = c.candidate_rows()
    assert rows["row_id"].tolist() == list(range(5))


# -- every error case: file, 1-based line and field appear in the message ----------------------------
def test_malformed_json(tmp_path):
    recs = loader_records()
    lines = lines_of(recs, "users")
    lines[1] = lines[1][:-5]
    err = load_error(tmp_path, recs, {"users": lines})
    assert_problem(err, "users.jsonl", 2, "<line>", "malformed JSON")


def test_invalid_utf8(tmp_path):
    recs = loader_records()
    lines = [x.encode() for x in lines_of(recs, "items")]
    lines[2] = lines[2].replace("小米".encode(), b"\xff\xfe")
    err = load_error(tmp_path, recs, {"items": lines})
    assert_problem(err, "items.jsonl", 3, "<line>", "invalid UTF-8")


def test_record_not_an_object(tmp_path):
    recs = loader_records()
    lines = lines_of(recs, "behaviors") + ['["U1", "click"]']
    err = load_error(tmp_path, recs, {"behaviors": lines})
    assert_problem(err, "behaviors.jsonl", 3, "<record>", "JSON object")


@pytest.mark.parametrize("table,idx,mutate,line,field,reason", [
    ("items", 0, lambda r: r.pop("category"), 1, "category", "missing"),
    ("items", 1, lambda r: r.update(price="4999"), 2, "price", "number"),
    ("items", 1, lambda r: r.update(price=-1), 2, "price", ">= 0"),
    ("items", 0, lambda r: r.update(attributes={"颜色": {"x": 1}}), 1, "attributes.颜色", "string"),
    ("items", 0, lambda r: r.update(attributes=["a"]), 1, "attributes", "object"),
    ("users", 1, lambda r: r["profile"].update(avg_pay_monthly="lots"), 2, "profile.avg_pay_monthly", "number"),
    ("users", 0, lambda r: r["profile"].update(top3_categories_recent="手机"), 1, "profile.top3_categories_recent",
     "array"),
    ("users", 2, lambda r: r.update(user_id=7), 3, "user_id", "string"),
    ("sessions", 0, lambda r: r["turns"][2].update(text=5), 1, "turns[2].text", "string"),
    ("sessions", 0, lambda r: r["turns"][1].update(recommend="yes"), 1, "turns[1].recommend", "true"),
    ("sessions", 1, lambda r: r.update(turns=[]), 2, "turns", "at least one"),
    ("sessions", 1, lambda r: r.pop("turns"), 2, "turns", "missing"),
    ("behaviors", 0, lambda r: r.update(ts="yesterday"), 1, "ts", "integer"),
    ("samples", 0, lambda r: r.update(turn="3"), 1, "turn", "integer"),
    ("samples", 1, lambda r: r.pop("label_item"), 2, "label_item", "missing"),
])
def test_missing_or_mistyped_fields(tmp_path, table, idx, mutate, line, field, reason):
    recs = loader_records()
    mutate(recs[table][idx])
    err = load_error(tmp_path, recs)
    assert_problem(err, f"{table}.jsonl", line, field, reason)


@pytest.mark.parametrize("table,idx,mutate,line,field", [
    ("sessions", 1, lambda r: r.update(user_id="NOPE"), 2, "user_id"),
    ("sessions", 0, lambda r: r["turns"][1].update(items=["I1", "NOPE"]), 1, "turns[1].items[1]"),
    ("behaviors", 1, lambda r: r.update(user_id="NOPE"), 2, "user_id"),
    ("behaviors", 0, lambda r: r.update(item_id="NOPE"), 1, "item_id"),
    ("samples", 1, lambda r: r.update(session_id="NOPE"), 2, "session_id"),
    ("samples", 0, lambda r: r["candidates"].append("NOPE"), 1, "candidates[3]"),
])
def test_unknown_ids(tmp_path, table, idx, mutate, line, field):
    recs = loader_records()
    mutate(recs[table][idx])
    err = load_error(tmp_path, recs)
    assert_problem(err, f"{table}.jsonl", line, field, "unknown")
    assert "NOPE" in str(err)


def test_label_not_among_candidates(tmp_path):
    recs = loader_records()
    recs["samples"][0]["label_item"] = "I3"
    recs["samples"][0]["candidates"] = ["I1", "I2"]
    err = load_error(tmp_path, recs)
    assert_problem(err, "samples.jsonl", 1, "label_item", "not among the candidates")


@pytest.mark.parametrize("turn,reason", [(0, "out of range"), (4, "out of range"), (-1, "out of range"),
                                         (2, "staff turn")])
def test_turn_out_of_range_or_not_staff(tmp_path, turn, reason):
    recs = loader_records()
    recs["samples"][0]["turn"] = turn
    err = load_error(tmp_path, recs)
    assert_problem(err, "samples.jsonl", 1, "turn", reason)


def test_empty_and_duplicate_candidates(tmp_path):
    recs = loader_records()
    recs["samples"][0]["candidates"] = []
    recs["samples"][1]["candidates"] = ["I3", "I1", "I3"]
    err = load_error(tmp_path, recs)
    assert_problem(err, "samples.jsonl", 1, "candidates", "empty")
    assert_problem(err, "samples.jsonl", 2, "candidates[2]", "duplicate")


@pytest.mark.parametrize("table,key", [("users", "user_id"), ("items", "item_id"), ("sessions", "session_id"),
                                       ("samples", "sample_id")])
def test_duplicate_ids(tmp_path, table, key):
    recs = loader_records()
    dup = copy.deepcopy(recs[table][0])
    recs[table].append(dup)
    err = load_error(tmp_path, recs)
    assert_problem(err, f"{table}.jsonl", len(recs[table]), key, "duplicate id (first defined on line 1)")


def test_nan_price(tmp_path):
    recs = loader_records()
    lines = lines_of(recs, "items")
    lines[0] = lines[0].replace('"price": 5999.0', '"price": NaN')
    err = load_error(tmp_path, recs, {"items": lines})
    assert_problem(err, "items.jsonl", 1, "price", "NaN")


def test_bad_enum_values(tmp_path):
    recs = loader_records()
    recs["samples"][1]["split"] = "dev"
    recs["sessions"][0]["turns"][1]["role"] = "bot"
    recs["sessions"][0]["turns"][0]["preference_words"][0]["type"] = "positive"
    recs["behaviors"][0]["type"] = "view"
    err = load_error(tmp_path, recs)
    assert_problem(err, "samples.jsonl", 2, "split", "one of")
    assert_problem(err, "sessions.jsonl", 1, "turns[1].role", "one of")
    assert_problem(err, "sessions.jsonl", 1, "turns[0].preference_words[0].type", "one of")
    assert_problem(err, "behaviors.jsonl", 1, "type", "one of")


def test_session_spanning_two_splits(tmp_path):
    recs = loader_records()
    recs["samples"].append({"sample_id": "X3", "session_id": "C1", "turn": 1, "candidates": ["I1", "I2"],
                            "label_item": "I1", "split": "test"})
    err = load_error(tmp_path, recs)
    assert_problem(err, "samples.jsonl", 3, "split", "must not span splits")


def test_missing_required_table(tmp_path):
    root = write_corpus(tmp_path / "c", loader_records())
    (root / "sessions.jsonl").unlink()
    (root / "behaviors.jsonl").unlink()  # optional
    with pytest.raises(CorpusError, match="sessions.jsonl"):
        load_corpus(root)
    with pytest.raises(FileNotFoundError):
        load_corpus(tmp_path / "nowhere")


def test_message_lists_first_20_problems_and_total(tmp_path):
    recs = loader_records()
    for k in range(30):
        recs["behaviors"].append({"user_id": "U1", "type": "click", "item_id": f"GHOST{k}", "ts": k})
    err = load_error(tmp_path, recs)
    msg = str(err)
    assert "30 problem(s)" in msg and "... and 10 more" in msg
    assert msg.count("GHOST") == 20
    assert len(err.problems) == 30
    assert isinstance(err, ValueError)


@pytest.mark.parametrize("garbage", ['{"user_id": null}', '{"user_id": "Z", "profile": 3}', "42", "null", "[]",
                                     '{"user_id": "Z", "profile": {"age": {"a": 1}}}', '"str"',
                                     '{"user_id": "Z", "profile": {"user_id": "Y"}}', "[" * 100000 + "]" * 100000])
def test_garbage_raises_corpus_error_only(tmp_path, garbage):
    recs = loader_records()
    err = load_error(tmp_path, recs, {"users": lines_of(recs, "users") + [garbage]})
    assert err.problems and all(p.file == "users.jsonl" and p.line == 4 for p in err.problems)


# -- skip policy ------------------------------------------------------------------------------------
def test_skip_policy_drops_dependents_and_writes_report(tmp_path):
    recs = loader_records()
    recs["users"][1]["profile"]["avg_pay_monthly"] = -5  # U2 invalid -> C2, its behaviour, X2 go too
    recs["items"][0]["price"] = "free"  # I1 invalid -> C1 (links I1), behaviour of I1, X1 go too
    recs["samples"].append({"sample_id": "X9", "session_id": "C404", "turn": 1, "candidates": ["I2"],
                            "label_item": "I2"})
    root = write_corpus(tmp_path / "c", recs)
    report = tmp_path / "out" / "report.json"
    c = load_corpus(root, policy="skip", report_path=report)
    assert c.users["user_id"].tolist() == ["U1", "U3"]
    assert c.items["item_id"].tolist() == ["I2", "I3"]
    assert len(c.sessions) == 0 and len(c.samples) == 0 and len(c.behaviors) == 0 and len(c.candidates) == 0
    rep = json.loads(report.read_text(encoding="utf-8"))
    assert rep == json.loads(json.dumps({k: c.meta[k] for k in ("source", "policy", "n_problems", "n_dropped",
                                                                  "dropped")}, ensure_ascii=False))
    assert rep["n_dropped"] == {"users": 1, "items": 1, "sessions": 2, "behaviors": 2, "samples": 3}
    by = {(d["file"], d["line"]): d for d in rep["dropped"]}
    assert by[("users.jsonl", 2)]["field"] == "profile.avg_pay_monthly" and by[("users.jsonl", 2)]["kind"] == "invalid"
    assert by[("items.jsonl", 1)]["id"] == "I1"
    s2 = by[("sessions.jsonl", 2)]
    assert s2["kind"] == "dependent" and s2["id"] == "C2" and "dropped user 'U2'" in s2["reason"]
    assert "users.jsonl line 2" in s2["reason"]
    s1 = by[("sessions.jsonl", 1)]
    assert s1["field"] == "turns[1].items[0]" and "dropped item 'I1'" in s1["reason"]
    x1 = by[("samples.jsonl", 1)]
    assert x1["kind"] == "dependent" and "dropped session 'C1'" in x1["reason"]
    x9 = by[("samples.jsonl", 3)]
    assert x9["kind"] == "invalid" and "unknown session_id" in x9["reason"]
    assert c.meta["report_path"] == str(report)


def test_skip_policy_keeps_valid_records_and_first_duplicate(tmp_path):
    recs = loader_records()
    recs["items"].append(dict(recs["items"][0], title="dup"))
    recs["samples"][1]["label_item"] = "I1x"
    c = load_corpus(write_corpus(tmp_path / "c", recs), policy="skip")
    assert c.items["title"].tolist()[0] == "华为 Mate 60 雅川青 手机" and len(c.items) == 3
    assert c.samples["sample_id"].tolist() == ["X1"]
    assert c.meta["n_problems"] == 2


# -- formats, splits, round trip ------------------------------------------------------------------
def test_parquet_tables_load_like_jsonl(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    recs = loader_records()
    ref = load_corpus(write_corpus(tmp_path / "j", recs))
    root = tmp_path / "p"
    root.mkdir()
    users = [{"user_id": u["user_id"], **u["profile"]} for u in recs["users"]]  # flat form
    pq.write_table(pa.Table.from_pylist(users), root / "users.parquet")
    items = [dict(r, attributes=json.dumps(r["attributes"], ensure_ascii=False)) for r in recs["items"]]  # JSON text
    pq.write_table(pa.Table.from_pylist(items), root / "items.parquet")
    pq.write_table(pa.Table.from_pylist(recs["sessions"]), root / "sessions.parquet")
    pq.write_table(pa.Table.from_pylist(recs["behaviors"]), root / "behaviors.parquet")
    pq.write_table(pa.Table.from_pylist(recs["samples"]), root / "samples.parquet")
    c = load_corpus(root)
    assert c.meta["formats"]["users"] == "parquet"
    assert c == ref
    # problems in parquet tables carry the row number
    bad = [dict(r) for r in recs["samples"]]
    bad[1]["label_item"] = "I2"
    pq.write_table(pa.Table.from_pylist(bad), root / "samples.parquet")
    with pytest.raises(CorpusError) as ei:
        load_corpus(root)
    assert_problem(ei.value, "samples.parquet", 2, "label_item")
    (root / "samples.parquet").write_bytes(b"not parquet")
    with pytest.raises(CorpusError, match="cannot read parquet"):
        load_corpus(root)


def _many_sessions(n: int) -> dict:
    recs = loader_records()
    recs["samples"] = []
    sess = recs["sessions"][1]
    recs["sessions"] = []
    for k in range(n):
        recs["sessions"].append(dict(sess, session_id=f"S{k:04d}"))
        for j in range(2):
            recs["samples"].append({"sample_id": f"S{k:04d}_{j}", "session_id": f"S{k:04d}", "turn": 1,
                                    "candidates": ["I3", "I1"], "label_item": "I3"})
    return recs


def test_split_is_seeded_by_session_and_disjoint(tmp_path):
    root = write_corpus(tmp_path / "c", _many_sessions(1000))
    a, b, other = load_corpus(root, seed=0), load_corpus(root, seed=0), load_corpus(root, seed=1)
    assert a.samples["split"].tolist() == b.samples["split"].tolist()
    assert a.samples["split"].tolist() != other.samples["split"].tolist()
    assert (a.samples.groupby("session_id")["split"].nunique() == 1).all()
    share = a.samples.drop_duplicates("session_id")["split"].value_counts(normalize=True)
    assert abs(share["train"] - 0.8) < 0.04 and abs(share["valid"] - 0.1) < 0.03 and abs(share["test"] - 0.1) < 0.03
    assert a.meta["splits_assigned"] == 2000
    # independent of file order and of the other sessions
    assert a.samples.set_index("sample_id").loc["S0007_0", "split"] == split_for_session("S0007", 0)


def test_explicit_split_of_a_session_is_shared_by_its_other_samples(tmp_path):
    recs = loader_records()
    recs["samples"].append({"sample_id": "X3", "session_id": "C1", "turn": 1, "candidates": ["I1", "I2"],
                            "label_item": "I1"})
    c = load_corpus(write_corpus(tmp_path / "c", recs))
    assert c.samples.set_index("sample_id").loc["X3", "split"] == "train"


def test_save_load_round_trip_is_exact(tmp_path):
    recs = loader_records()
    recs["users"][0]["profile"]["vip_tag"] = ["a", 1]  # unknown profile field, kept raw
    recs["items"][1]["attributes"]["新属性"] = 3.5  # unknown attribute, value as str
    recs["items"][1]["attributes"]["颜色"] = ["黑色", "白色"]  # multi-valued
    c = load_corpus(write_corpus(tmp_path / "c", recs))
    assert c.users.set_index("user_id").loc["U1", "vip_tag"] == ["a", 1]
    assert c.item_attrs[c.item_attrs["item_id"] == "I2"]["value"].tolist() == ["华为", "黑色", "白色", "3.5"]
    c.save(tmp_path / "saved")
    c2 = load_corpus(tmp_path / "saved")
    assert c2 == c
    assert c2.fingerprint() == c.fingerprint()
    for name in ("users", "items", "sessions", "behaviors", "samples"):
        pd.testing.assert_frame_equal(getattr(c2, name), getattr(c, name))
    c2.save(tmp_path / "saved2")
    for name in ("users", "items", "sessions", "behaviors", "samples"):
        assert (tmp_path / "saved" / f"{name}.jsonl").read_bytes() == (tmp_path / "saved2" / f"{name}.jsonl").read_bytes()


def test_fingerprint_is_stable_and_content_sensitive(tmp_path):
    a = Corpus.from_records(**loader_records())
    b = Corpus.from_records(**loader_records())
    assert a.fingerprint() == b.fingerprint() and len(a.fingerprint()) == 64
    recs = loader_records()
    recs["sessions"][0]["turns"][0]["text"] += "!"
    assert Corpus.from_records(**recs).fingerprint() != a.fingerprint()
    fp = a.fingerprint()
    a.samples = a.samples.assign(split="test")  # a new table object invalidates the cache
    assert a.fingerprint() != fp


def test_from_records_shares_validation():
    recs = loader_records()
    recs["users"][0]["profile"]["new_field"] = "x"
    recs["items"][0]["attributes"]["没见过的属性"] = "没见过的值"
    c = Corpus.from_records(**recs)
    assert "new_field" in c.users.columns
    bad = loader_records()
    bad["samples"][0]["candidates"] = ["I1", "I404"]
    with pytest.raises(CorpusError) as ei:
        Corpus.from_records(**bad)
    assert_problem(ei.value, "<requests>/samples", 1, "candidates[1]", "unknown")
    skipped = Corpus.from_records(**bad, policy="skip")
    assert skipped.samples["sample_id"].tolist() == ["X2"]
    # a request-sized corpus: 30 samples of 31 candidates (its build time: benchmarks/bench_score.py)
    items = [{"item_id": f"I{k}", "category": "手机", "shop_id": "S", "title": f"t{k}", "price": 1.0 + k,
              "attributes": {"品牌": "华为", "颜色": "黑色"}} for k in range(300)]
    sess = [{"session_id": f"C{k}", "user_id": "U1", "shop_id": "S", "turns": recs["sessions"][0]["turns"]}
            for k in range(30)]
    smp = [{"sample_id": f"X{k}", "session_id": f"C{k}", "turn": 3, "candidates": [f"I{(k + j) % 300}" for j in range(31)],
            "label_item": f"I{k}"} for k in range(30)]
    c = Corpus.from_records(users=recs["users"], items=items, sessions=sess, samples=smp)
    assert len(c.candidates) == 930 and c.meta["source"] == "<requests>"


def test_known_items_give_the_rows_of_validation():
    """Item records equal to known (validated once) ones take their rows from there: the same tables
    as validating every record, in record order, with changed, new and invalid records mixed in."""
    from core.corpus import TABLE_NAMES, KnownItems

    def same(a: Corpus, b: Corpus) -> None:
        for name in TABLE_NAMES:
            pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
        assert a.fingerprint() == b.fingerprint()

    recs = loader_records()
    bad = {"item_id": "I9", "price": "free"}  # invalid: left out of the known items
    known = KnownItems(copy.deepcopy(recs["items"]) + [bad, {"item_id": "I1", "title": "a second I1"}])
    assert len(known) == 2  # I1 appears twice (neither is known), I9 is invalid
    same(Corpus.from_records(**recs, known_items=known), Corpus.from_records(**recs))
    # a changed record under a known id (an inline item), new items between known ones, attributes
    # of several values
    recs["items"][1] = {**recs["items"][1], "title": "改过的标题", "attributes": {"颜色": ["黑", "白"], "n": 3}}
    recs["items"][2:2] = [{"item_id": "N1", "category": "手机", "shop_id": "S", "title": "新", "price": 1,
                          "attributes": {"品牌": "小米"}}]
    recs["samples"][0]["candidates"].append("N1")
    with_known = Corpus.from_records(**recs, known_items=known)
    same(with_known, Corpus.from_records(**recs))
    assert with_known.items["title"].tolist()[1] == "改过的标题"
    assert with_known.items["item_id"].tolist() == ["I1", "I2", "N1", "I3"]
    # an invalid record under a known id is refused as before
    recs["items"][2] = {**recs["items"][2], "price": "free"}
    with pytest.raises(CorpusError) as ei:
        Corpus.from_records(**recs, known_items=known)
    assert_problem(ei.value, "<requests>/items", 3, "price")
    # a known record twice is a duplicate, as before
    dup = loader_records()
    dup["items"].append(copy.deepcopy(dup["items"][0]))
    with pytest.raises(CorpusError) as ei:
        Corpus.from_records(**dup, known_items=known)
    assert_problem(ei.value, "<requests>/items", 4, "item_id", "duplicate id (first defined on line 1)")


def test_split_ratios_move_sessions_between_splits():
    from collections import Counter

    from core.corpus import split_for_session

    sessions = [f"s{i}" for i in range(4000)]
    default = Counter(split_for_session(s, 0) for s in sessions)
    half = Counter(split_for_session(s, 0, (0.4, 0.1, 0.5)) for s in sessions)
    assert abs(default["test"] / 4000 - 0.1) < 0.02 and abs(half["test"] / 4000 - 0.5) < 0.03
    # the same hash: a session in train at 0.4 is in train at 0.8
    assert all(split_for_session(s, 0) == "train" for s in sessions if split_for_session(s, 0, (0.4, 0.1, 0.5)) == "train")
