"""Known user records: a request's users table sliced from the table of known users is the table
made from the record (columns, dtypes, blocks, values)."""
import pandas as pd

from core.corpus import TABLE_NAMES, Corpus, KnownRecords
from tests.fixtures import tiny_records


def _blocks(df: pd.DataFrame) -> list:
    return [(type(b).__name__, str(b.dtype), b.mgr_locs.as_array.tolist()) for b in df._mgr.blocks]


def _same(a: Corpus, b: Corpus) -> None:
    for name in TABLE_NAMES:
        x, y = getattr(a, name), getattr(b, name)
        pd.testing.assert_frame_equal(x, y, check_exact=True)
        assert _blocks(x) == _blocks(y) and x.columns.tolist() == y.columns.tolist()


def test_one_known_user_is_sliced_from_the_known_users_table():
    rec = tiny_records()
    users = [{"user_id": "K1", "profile": {"age": "26-35", "avg_pay_monthly": 3000, "top3_categories_recent": ["a", "b"],
                                           "sex": None}},
             {"user_id": "K2", "profile": None},
             {"user_id": "K3", "profile": {"province": "云南", "membership_years": 2.5}},
             {"user_id": "K4", "profile": {"age": "18-25", "pet": "cat"}}]  # an unknown field: a column of its own
    known = KnownRecords()
    known.add("users", users[:2])
    known.add("users", users[2:])
    sid = rec["sessions"][0]["session_id"]
    for k, user in enumerate(users):
        one = {**rec, "users": [user], "sessions": [{**s, "user_id": user["user_id"]} for s in rec["sessions"]],
               "samples": [{**s, "user_id": None} for s in rec["samples"] if s["session_id"] == sid],
               "behaviors": []}
        one["sessions"] = [s for s in one["sessions"] if s["session_id"] == sid]
        fast = Corpus.from_records(**one, known_records=known)
        _same(Corpus.from_records(**one), fast)
        assert fast.users["user_id"].tolist() == [user["user_id"]]
        assert ("pet" in fast.users.columns) == (k == 3)
    assert set(known._user_rows) == {id(u) for u in users[:3]} and not known._untabled
    # an equal record that is not the known object: built from its own model, the same table
    copy = {**one, "users": [dict(users[0])], "sessions": [{**s, "user_id": "K1"} for s in one["sessions"]]}
    _same(Corpus.from_records(**copy), Corpus.from_records(**copy, known_records=known))
    # a new known user is tabled at the next corpus with known records
    late = {"user_id": "K5", "profile": {"device_type": "iOS"}}
    known.add("users", [late])
    assert known._untabled
    last = {**one, "users": [late], "sessions": [{**s, "user_id": "K5"} for s in one["sessions"]]}
    _same(Corpus.from_records(**last), Corpus.from_records(**last, known_records=known))
    assert id(late) in known._user_rows
