"""The glue between a serving call's extractors and its ranker arrays: raw columns as arrays
(``FeaturePipeline.raw_arrays``), the numeric encoders over stacked columns, frames built from column arrays
(``frame_of``); each must give exactly what the pandas path it replaces gives."""
import numpy as np
import pandas as pd
import pytest
import yaml

import features.materialize as mat
from core.corpus import Corpus
from core.corpus.validate import frame_of
from features.materialize import (_apply_numeric, _apply_vocab, _float_frame_columns, NumericEncoders,
                                  _float_values, _fit_numeric, FeaturePipeline)
from features.spec import parse_spec
from tests.fixtures import tiny_records


def _same_frame(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert list(got.dtypes) == list(want.dtypes)
    assert got.columns.dtype == want.columns.dtype and type(got.index) is type(want.index)


def test_frame_of_is_the_constructor_on_arrays():
    cols = {"id": pd.array(["a", None, "c"], dtype=pd.StringDtype(na_value=np.nan)),
            "n": np.array([1, 2, 3], np.int64), "x": np.array([0.5, np.nan, 2.0]), "y": np.array([1.0, 2.0, 3.0]),
            "pos": np.array([0, 1, 2], np.int32), "ok": np.array([True, False, True]),
            "rec": pd.array([True, None, False], dtype="boolean"),
            "lists": pd.Series([["a"], None, ["b", "c"]], dtype=object)}
    _same_frame(frame_of(cols), pd.DataFrame(cols))
    assert frame_of(cols)._mgr.nblocks == pd.DataFrame(cols)._mgr.nblocks  # float64 x, y in one block
    # an object ndarray is left to the constructor, which makes strings a str column
    strings = {"s": np.array(["a", None], dtype=object), "v": np.array([1.0, 2.0])}
    assert str(frame_of(strings)["s"].dtype) == "str"
    _same_frame(frame_of(strings), pd.DataFrame(strings))
    empty = {"a": np.array([], np.int64), "b": pd.array([], dtype=pd.StringDtype(na_value=np.nan))}
    _same_frame(frame_of(empty), pd.DataFrame(empty))
    with pytest.raises(ValueError):
        frame_of({"a": np.arange(2), "b": np.arange(3)})


def test_float_values_is_to_numeric():
    for s in [pd.Series([1.5, np.nan, np.inf]), pd.Series([1, 2], dtype=np.int64), pd.Series([True, False]),
              pd.Series([1.5, 2.5], dtype=np.float32), pd.Series(["1.5", "x", None], dtype=object),
              pd.Series([1.0, None], dtype="Float64"), pd.Series([1, None], dtype="Int64")]:
        want = pd.to_numeric(s, errors="coerce").to_numpy(np.float64)
        got = _float_values(s)
        assert got.dtype == np.float64 and np.array_equal(got, want, equal_nan=True)


def test_float_frame_columns_are_each_columns_float_values():
    idx = pd.Index(["X/a", "X/b"])
    df = pd.DataFrame({"f": [1.5, np.nan], "i": np.array([3, -2], np.int64), "b": [True, False],
                       "h": np.array([0.25, 2.0], np.float32), "u": np.array([7, 8], np.uint8)}, index=idx)
    got = _float_frame_columns(df)
    assert list(got) == list(df.columns)
    for c in df.columns:
        assert got[c].dtype == np.float64 and np.array_equal(got[c], _float_values(df[c]), equal_nan=True)
    # anything but numpy numbers: None (each column is converted on its own)
    assert _float_frame_columns(df.assign(s=["1", "x"])) is None
    assert _float_frame_columns(df.assign(n=pd.array([1, None], dtype="Int64"))) is None
    assert _float_frame_columns(pd.DataFrame([[1.0, 2.0]], columns=["a", "a"])) is None


def test_float_frame_columns_of_one_float_block_are_its_rows():
    """A kind's ``numeric_frame`` (one float64 block in column order): each column's values as the
    general path gives them; one block in another order, or repeated names, the general path."""
    from features.frames import numeric_frame

    cols = {"": np.array([0.5, np.nan, -1.0]), "flag": np.array([1.0, 0.0, 1.0]), "n": np.array([1.0, 2.0, 3e300])}
    df = numeric_frame(cols, pd.RangeIndex(3))
    for frame in (df, df, df[["n", "", "flag"]], df.iloc[:, ::-1], pd.DataFrame(np.arange(6.0).reshape(3, 2)).T):
        got = _float_frame_columns(frame)
        assert list(got) == list(frame.columns)
        for c in frame.columns:
            assert got[c].dtype == np.float64 and np.array_equal(got[c], _float_values(frame[c]), equal_nan=True)
    assert _float_frame_columns(pd.DataFrame(np.zeros((2, 2)), columns=["a", "a"])) is None


def _one_column(x: np.ndarray, enc: dict) -> np.ndarray:
    """The per-column encoder as it was written before the stacked one (the reference)."""
    t = enc["transform"]
    v = np.sign(x) * np.log1p(np.abs(x)) if t == "log1p" else x
    if "clip" in enc:
        v = np.clip(v, *enc["clip"])
    if t in ("standard", "log1p"):
        v = (v - enc["mean"]) / enc["std"]
    elif t == "minmax":
        v = (v - enc["min"]) / (enc["max"] - enc["min"])
    return np.where(np.isfinite(v), v, enc["fill"]).astype(np.float32)


def test_numeric_columns_are_each_columns_encoder(monkeypatch):
    rng = np.random.default_rng(3)
    train = rng.normal(5, 3, 500)
    encs = [_fit_numeric(train, t, fill, clip) for t in ("standard", "log1p", "minmax", "none")
            for fill, clip in ((0.0, True), (-1.0, False))]
    cols = []
    for _ in encs:
        x = rng.normal(5, 6, 50)
        x[rng.random(50) < 0.2] = np.nan
        x[:4] = [np.inf, -np.inf, -0.0, 1e30]
        cols.append(x)
    want = [_one_column(x, e) for x, e in zip(cols, encs)]
    for slice_rows in (8192, 7):  # one slice, and slices that cut the rows
        monkeypatch.setattr(mat, "_NUMERIC_SLICE_ROWS", slice_rows)
        got = NumericEncoders(encs).apply(cols)
        assert got.shape == (len(encs), 50) and got.dtype == np.float32
        for g, w in zip(got, want):
            assert np.array_equal(g.view(np.uint32), w.view(np.uint32))  # bit for bit (-0.0 included)
    # by hand: mean 2, std 2, clip [0, 10], fill 7
    enc = {"transform": "standard", "mean": 2.0, "std": 2.0, "min": 0.0, "max": 10.0, "fill": 7.0, "clip": [0.0, 10.0]}
    assert _apply_numeric(np.array([4.0, -5.0, 30.0, np.nan]), enc).tolist() == [1.0, -1.0, 4.0, 7.0]
    assert NumericEncoders([]).apply([]).shape == (0, 0)


GLUE_SPEC = """\
version: 1
features:
  - name: profile
    group: BF
    kind: user_profile
    fields: [sex, age, avg_pay_monthly]
  - name: category
    group: BF
    kind: item_field
    field: category
  - name: price
    group: BF
    kind: price
  - name: title_jaccard
    group: IF
    kind: title_jaccard
  - name: user_state
    group: KF
    kind: user_state
    maxlen: 4
    ckg: {dim: 4, epochs: 1, min_value_count: 1, min_keyword_df: 1}
feature_sets:
  all: [BF, IF, KF]
"""


def test_raw_arrays_encode_as_the_frames_of_raw_part(tmp_path):
    """Categorical (object), numeric and id-block outputs: their arrays as ``raw_arrays`` gives them
    (what serving encodes) encode exactly as the concatenated ``raw_part`` frames (training's path)."""
    corpus = Corpus.from_records(**tiny_records())
    pipe = FeaturePipeline(parse_spec(yaml.safe_load(GLUE_SPEC)), tmp_path / "store", show_progress=False).fit(corpus)
    ctx, rows = pipe.context(corpus), corpus.candidate_rows()
    arrays = {c: v for e in pipe.spec.features for c, v in pipe.raw_arrays(ctx, rows, e).items()}
    whole = pd.concat([pipe.raw_part(ctx, rows, e) for e in pipe.spec.features], axis=1)
    assert list(arrays) == list(whole.columns)
    assert {pipe.outputs(e)[0].kind for e in pipe.spec.features} == {"categorical", "numeric", "ids"}
    assert all(isinstance(v, np.ndarray) and len(v) == len(rows) for v in arrays.values())
    got, want = pipe.encode(arrays), pipe.encode(whole)
    assert list(got) == list(want)
    for c in want:
        assert got[c].dtype == want[c].dtype and np.array_equal(got[c], want[c]), c
    # and the frame of raw_part is the one of those arrays
    assert pipe.raw_part(ctx, rows, pipe.spec.features[2]).equals(frame_of(pipe.raw_arrays(ctx, rows, pipe.spec.features[2])))


def test_encode_plan_is_made_once_per_fitted_encoders_and_gives_each_columns_encoding(tmp_path):
    """``encode`` through its plan (steps and numeric constants made once): each column as its own
    encoder gives it; new encoder dicts (a fit) make a new plan; a view of some features has its own."""
    import copy
    import dataclasses

    corpus = Corpus.from_records(**tiny_records())
    pipe = FeaturePipeline(parse_spec(yaml.safe_load(GLUE_SPEC)), tmp_path / "store", show_progress=False).fit(corpus)
    raw = pipe.raw(corpus)

    def by_column(p):
        out = {}
        for e in p.spec.features:
            for o in p.outputs(e):
                col, enc = o.column(e.name), p.state["features"][e.name]["encoders"][o.column(e.name)]
                if o.kind == "numeric":
                    out[col] = _apply_numeric(raw[col].to_numpy(np.float64), enc)
                elif o.kind == "categorical":
                    out[col] = _apply_vocab(raw[col], enc)
        return out

    got, plan = pipe.encode(raw), pipe._encode_plan()
    assert pipe._encode_plan() is plan and pipe.encode(raw).keys() == got.keys()
    want = by_column(pipe)
    assert len(want) >= 5 and all(np.array_equal(got[c].view(np.uint32) if got[c].dtype == np.float32 else got[c],
                                                  w.view(np.uint32) if w.dtype == np.float32 else w) for c, w in want.items())
    encoders = pipe.state["features"]["price"]["encoders"]
    pipe.state["features"]["price"]["encoders"] = {c: {**e, "mean": e["mean"] + 1.0, "fill": 123.0} for c, e in encoders.items()}
    again = pipe.encode(raw)
    assert pipe._encode_plan() is not plan
    assert all(np.array_equal(again[c], w) for c, w in by_column(pipe).items())
    assert any(not np.array_equal(again[c], got[c]) for c in encoders)
    view = copy.copy(pipe)
    view.spec = dataclasses.replace(pipe.spec, features=(pipe.spec.features[2],))
    assert list(view.encode(raw)) == list(encoders) and view._encode_plan() is not pipe._encode_plan()


def test_vocab_of_object_and_string_arrays():
    enc = {"values": ["y", "x"]}
    c = pd.array(["x", None, "y"], dtype=pd.StringDtype(na_value=np.nan))
    assert _apply_vocab(np.asarray(c, dtype=object), enc).tolist() == _apply_vocab(pd.Series(c), enc).tolist() == [3, 0, 2]
    assert _apply_vocab(np.array(["u", "v", None], dtype=object), {"values": ["v"]}).tolist() == [1, 2, 0]  # OOV, known, missing
