"""Small strict readers shared by the dataset loaders: every problem is reported as ``file:line: what``."""
from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ..errors import DataValidationError


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataValidationError(f"{path}: missing {what} file")
    return path


def bad(path: Path, line: int, what: str) -> DataValidationError:
    return DataValidationError(f"{path}:{line}: {what}")


def read_atomic(path: Path, required: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Read a RecBole atomic file (tab-separated, header ``name:type``); yields (line number, row).

    ``required`` are the bare column names (``user_id``) that must be present in the header. A row with
    fewer fields than the header is an error; extra trailing fields are ignored, as RecBole does (its own
    ML-100k test fixture ends with such a row).
    """
    with path.open(encoding="utf-8", newline="") as f:
        header_line = f.readline()
        if not header_line:
            raise bad(path, 1, "empty file (expected a header row)")
        header = [h.split(":", 1)[0].strip() for h in header_line.rstrip("\r\n").split("\t")]
        missing = [c for c in required if c not in header]
        if missing:
            raise bad(path, 1, f"header lacks column(s) {', '.join(missing)} (has {', '.join(header)})")
        for lineno, raw in enumerate(f, start=2):
            raw = raw.rstrip("\r\n")
            if not raw.strip():
                continue
            parts = raw.split("\t")
            if len(parts) < len(header):
                raise bad(path, lineno, f"expected {len(header)} tab-separated fields, found {len(parts)}")
            yield lineno, dict(zip(header, parts))


def read_csv(path: Path, required: list[str], *, strip_types: bool = True) -> Iterator[tuple[int, dict[str, str]]]:
    """Read a CSV with a header (``name::type`` headers are reduced to ``name``). Yields (record line, row)."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise bad(path, 1, "empty file (expected a header row)") from None
        if strip_types:
            header = [h.split("::", 1)[0].strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise bad(path, 1, f"header lacks column(s) {', '.join(missing)} (has {', '.join(header)})")
        line = reader.line_num
        for row in reader:
            start = line + 1
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise bad(path, start, f"expected {len(header)} comma-separated fields, found {len(row)}")
            yield start, dict(zip(header, row))


def parse_float(path: Path, line: int, column: str, value: str, *, optional: bool = False) -> float | None:
    if value.strip() == "" and optional:
        return None
    try:
        return float(value)
    except ValueError:
        raise bad(path, line, f"column {column}: {value!r} is not a number") from None


def parse_int(path: Path, line: int, column: str, value: str, *, optional: bool = False) -> int | None:
    if value.strip() == "" and optional:
        return None
    try:
        return int(value)
    except ValueError:
        raise bad(path, line, f"column {column}: {value!r} is not an integer") from None


def require_id(path: Path, line: int, column: str, value: str) -> str:
    v = value.strip()
    if not v:
        raise bad(path, line, f"column {column}: empty id")
    if any(c.isspace() for c in v):
        raise bad(path, line, f"column {column}: id {v!r} contains whitespace")
    return v
