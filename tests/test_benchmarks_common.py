"""benchmarks/common.py: the table formatter and the atomic JSON writer every benchmark uses."""
import json

from benchmarks.common import format_table, write_results


def test_format_table_aligns_and_formats_by_column():
    rows = [{"model": "deepfm", "n": 5747, "rate": 3138.4}, {"model": "kdcn", "n": 12, "rate": 2714.0}]
    text = format_table(rows, [("model", "model", "<8"), ("cands", "n", "d"), ("batch cand/s", "rate", ",.0f")])
    assert text.splitlines() == [
        "model    cands batch cand/s",
        "---------------------------",
        "deepfm    5747        3,138",
        "kdcn        12        2,714",
    ]


def test_write_results_round_trips_and_leaves_no_temporary(tmp_path):
    out = write_results(tmp_path / "results" / "x.json", {"rows": [1, 2], "名": 0.5})
    assert json.loads(out.read_text()) == {"rows": [1, 2], "名": 0.5}
    assert sorted(p.name for p in out.parent.iterdir()) == ["x.json"]
