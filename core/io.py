"""Atomic writes and JSON Lines: every artefact of the project is written through here.

An artefact is written to a temporary sibling (same directory, so the final ``os.replace`` is
atomic on one filesystem) and renamed into place when complete: a crash or Ctrl-C never leaves a
half-written file or directory where a finished one is expected.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike, *, keep_existing: bool = False) -> Iterator[Path]:
    """Yield a temporary directory beside ``final``; on success it replaces ``final``.

    ``keep_existing``: when another process finished ``final`` first, keep that one and discard
    ours (for caches that several processes may build at once). On an exception the temporary
    directory is removed and ``final`` is left untouched.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            if keep_existing:
                shutil.rmtree(tmp)
                return
            # move the old one aside first so ``final`` is never missing and half-new at once
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(final: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``final`` for writing; renamed to ``final`` when the block ends."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", dir=final.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding, newline=None if "b" in mode else "\n") as f:
            yield f
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_path(final: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp_path)`` (e.g. ``df.to_parquet``) on a temporary path, then rename it to ``final``."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", dir=final.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return final


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 1) -> Path:
    """Write ``obj`` as UTF-8 JSON atomically (numpy scalars become floats)."""
    with atomic_file(path) as f:
        json.dump(obj, f, indent=indent, ensure_ascii=False, default=float)
        f.write("\n")
    return Path(path)


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> Path:
    """Write one JSON object per line, UTF-8, atomically."""
    dumps = json.dumps
    with atomic_file(path) as f:
        f.writelines(dumps(r, ensure_ascii=False) + "\n" for r in records)
    return Path(path)
