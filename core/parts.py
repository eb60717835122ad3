"""A feature table stored as parquet parts, for tables that need not fit in one process.

Layout of a parts directory (written by ``features.distributed``, read by ``rankers.streaming``)::

    parts.json          {"n_rows": N, "parts": ["part-00000.parquet", ...], "part_rows": [...],
                         "columns": {name: width}}   width 0 = one value per row, k = (n, k) block
    part-00000.parquet  row metadata as ``row:<name>`` (sample_id, label, split, ...) and the
                        columns; a (n, k) block is stored as k columns ``name[0]`` .. ``name[k-1]``

Parts hold whole samples (a sample's candidates are never split), in row order, so concatenating
the parts in manifest order gives the in-process table row for row.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.io import atomic_path, write_json
from core.table import FeatureTable

MANIFEST = "parts.json"
ROW_PREFIX = "row:"


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


def widths(arrays: dict[str, np.ndarray]) -> dict[str, int]:
    """Column name -> 0 for a vector, k for an (n, k) block."""
    return {k: (int(v.shape[1]) if v.ndim == 2 else 0) for k, v in arrays.items()}


def write_part(path: str | Path, rows: pd.DataFrame, arrays: dict[str, np.ndarray]) -> None:
    """One part: ``rows`` (metadata) and ``arrays`` (vectors and blocks), written atomically."""
    cols = {f"{ROW_PREFIX}{c}": rows[c].to_numpy() for c in rows.columns}
    for name, a in arrays.items():
        if a.ndim == 2:
            cols.update({f"{name}[{j}]": a[:, j] for j in range(a.shape[1])})
        else:
            cols[name] = a
    df = pd.DataFrame(cols)
    for c in rows.columns:  # keep extension dtypes (pandas' string) through parquet
        df[f"{ROW_PREFIX}{c}"] = df[f"{ROW_PREFIX}{c}"].astype(rows[c].dtype)
    atomic_path(Path(path), lambda tmp: df.to_parquet(tmp, index=False))


def write_manifest(directory: str | Path, part_rows: list[int], columns: dict[str, int]) -> Path:
    return write_json(Path(directory) / MANIFEST, {
        "n_rows": int(sum(part_rows)), "parts": [part_name(i) for i in range(len(part_rows))],
        "part_rows": [int(n) for n in part_rows], "columns": columns})


@dataclass
class PartedTable:
    """A parts directory (see the module doc); ``read`` loads one part, ``to_table`` all of them."""

    directory: Path
    manifest: dict

    @classmethod
    def open(cls, directory: str | Path) -> "PartedTable":
        d = Path(directory)
        path = d / MANIFEST
        if not path.exists():
            raise FileNotFoundError(f"{path}: no parts manifest (is {d} a materialised feature table?)")
        return cls(d, json.loads(path.read_text()))

    @property
    def n_rows(self) -> int:
        return int(self.manifest["n_rows"])

    @property
    def n_parts(self) -> int:
        return len(self.manifest["parts"])

    @property
    def columns(self) -> dict[str, int]:
        return dict(self.manifest["columns"])

    def read(self, index: int, columns: list[str] | None = None,
             rows: list[str] | None = None) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
        """Part ``index``: (row metadata, arrays) restricted to ``columns`` and ``rows`` (None = all)."""
        widths_ = self.columns
        names = list(widths_) if columns is None else list(columns)
        unknown = [c for c in names if c not in widths_]
        if unknown:
            raise KeyError(f"{self.directory / MANIFEST}: no column(s) {unknown}")
        physical = [c for n in names for c in ([f"{n}[{j}]" for j in range(widths_[n])] if widths_[n] else [n])]
        meta = None if rows is None else [f"{ROW_PREFIX}{r}" for r in rows]
        if meta is None:
            import pyarrow.parquet as pq

            schema = pq.read_schema(self.directory / self.manifest["parts"][index])
            meta = [c for c in schema.names if c.startswith(ROW_PREFIX)]
        df = pd.read_parquet(self.directory / self.manifest["parts"][index], columns=meta + physical)
        arrays = {}
        for n in names:
            if widths_[n]:
                arrays[n] = df[[f"{n}[{j}]" for j in range(widths_[n])]].to_numpy()
            else:
                arrays[n] = df[n].to_numpy()
        return df[meta].rename(columns=lambda c: c[len(ROW_PREFIX):]), arrays

    def to_table(self, columns: list[str] | None = None) -> FeatureTable:
        """All parts in one in-memory ``FeatureTable`` (for tables that fit)."""
        metas, arrays = [], []
        for i in range(self.n_parts):
            m, a = self.read(i, columns)
            metas.append(m)
            arrays.append(a)
        rows = pd.concat(metas, ignore_index=True)
        return FeatureTable(rows, {k: np.concatenate([a[k] for a in arrays]) for k in (arrays[0] if arrays else {})})


def write_parts(table: FeatureTable, directory: str | Path, part_rows: int) -> PartedTable:
    """An in-memory table as a parts directory: runs of whole samples of about ``part_rows`` rows."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    sid = table.rows["sample_id"].to_numpy()
    starts = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1]])
    cuts = [0]
    for s in starts[1:]:
        if s - cuts[-1] >= part_rows:
            cuts.append(int(s))
    cuts.append(table.n_rows)
    sizes = []
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:])):
        write_part(d / part_name(i), table.rows.iloc[a:b], {k: v[a:b] for k, v in table.arrays.items()})
        sizes.append(b - a)
    write_manifest(d, sizes, widths(table.arrays))
    return PartedTable.open(d)
