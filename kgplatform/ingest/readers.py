"""Small strict readers shared by the dataset loaders: every problem is reported as ``file:line: what``.

What every reader guarantees (the loaders build on it; nothing is written before all rows passed):

- Text is UTF-8; a UTF-8 byte-order mark (spreadsheets write one) is accepted and dropped. Bytes that are not
  UTF-8, a UTF-16 file and NUL bytes are reported with the line they are on.
- Line numbers are physical lines (1 = the header), CRLF and LF alike; a CSV record whose quoted field
  spans lines is reported at the line it starts on.
- CSV is parsed strictly: an unclosed quote or text after a closing quote is an error, never a silently
  swallowed row; fields may be as long as :data:`MAX_FIELD_CHARS`.
- Paths that exist but are not regular files (a folder named ``users.csv``) are errors, not "missing".
- Numbers are finite and inside their column's range (a timestamp of 1e300 or an age of 10^20 would fail
  in the middle of the write); ids are non-blank, have no whitespace or control characters and fit a
  Neo4j index key.
"""
from __future__ import annotations

import csv
import math
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from ..errors import DataValidationError

#: Longest CSV field accepted (Python's csv default is 131,072 characters; DBpedia abstracts and user
#: descriptions can be longer).
MAX_FIELD_CHARS = 64 * 1024 * 1024
#: Longest id / URI / predicate, in UTF-8 bytes: these are indexed, and Neo4j refuses index keys over ~8 KB.
MAX_KEY_BYTES = 4000
#: Neo4j integers are 64-bit.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Unix seconds of 0001-01-01 and 9999-12-31T23:59:59 (the range a calendar date can show).
TS_MIN, TS_MAX = -62135596800, 253402300799

_BAD_CHARS = re.compile("[\udc80-\udcff\x00]")  # undecodable bytes (surrogateescape) and NUL
_UTF8_HINT = "save the file as UTF-8 (in a spreadsheet: 'CSV UTF-8'; or iconv -f LATIN1 -t UTF-8)"


def show(value: str, limit: int = 40) -> str:
    """``repr`` of a value for an error message, cut to ``limit`` characters (a field may be megabytes)."""
    if len(value) <= limit:
        return repr(value)
    return repr(value[:limit]) + f"... ({len(value):,} characters)"


def bad(path: Path, line: int, what: str) -> DataValidationError:
    return DataValidationError(f"{path}:{line}: {what}")


def check_dir(path: Path, what: str = "the dataset folder") -> Path:
    """A dataset folder: a path that exists must be a folder (a missing one is reported file by file)."""
    path = Path(path)
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except (OSError, ValueError) as e:  # a name too long, a NUL byte, ...
        raise DataValidationError(f"{show(str(path), 80)}: cannot use this path: "
                                  f"{getattr(e, 'strerror', None) or e}") from None
    if exists and not is_dir:
        raise DataValidationError(f"{path}: not a directory (expected {what})")
    return path


def require_file(path: Path | None, what: str) -> Path:
    """A required input file: present, and a regular file (not a folder, not a device)."""
    if path is None or not path.exists():
        raise DataValidationError(f"{path}: missing {what} file")
    return _regular(path, what)


def optional_file(path: Path, what: str) -> Path | None:
    """An optional input file: ``None`` when absent; when present it must be a regular file."""
    if not path.exists() and not path.is_symlink():
        return None
    return _regular(path, what)


def _regular(path: Path, what: str) -> Path:
    if path.is_dir():
        raise DataValidationError(f"{path}: is a directory, expected the {what} file")
    if not path.is_file():
        raise DataValidationError(f"{path}: not a regular file (expected the {what} file)")
    return path


def _open(path: Path) -> IO[str]:
    try:
        # surrogateescape: undecodable bytes survive as lone surrogates, so the line they are on is known
        return path.open(encoding="utf-8-sig", errors="surrogateescape", newline="")
    except IsADirectoryError:
        raise DataValidationError(f"{path}: is a directory, expected a file") from None
    except OSError as e:
        raise DataValidationError(f"{path}: cannot read: {e.strerror or e}") from None


def _check_text(path: Path, lineno: int, text: str) -> None:
    m = _BAD_CHARS.search(text)
    if m is None:
        return
    col = m.start() + 1
    if m.group() == "\x00":
        raise DataValidationError(f"{path}:{lineno}: NUL byte at column {col} (a binary file, or UTF-16?)",
                                  hint=_UTF8_HINT)
    if lineno == 1 and text[:2] in ("\udcff\udcfe", "\udcfe\udcff"):
        raise DataValidationError(f"{path}:1: the file is UTF-16 (byte-order mark), not UTF-8", hint=_UTF8_HINT)
    byte = ord(m.group()) - 0xDC00
    raise DataValidationError(f"{path}:{lineno}: not valid UTF-8 (byte 0x{byte:02x} at column {col})",
                              hint=_UTF8_HINT)


def _checked_lines(path: Path, f: Iterable[str]) -> Iterator[str]:
    for lineno, text in enumerate(f, start=1):
        _check_text(path, lineno, text)
        yield text


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Lines of a UTF-8 text file without their line ending, with 1-based line numbers (blank ones too)."""
    with _open(path) as f:
        for lineno, text in enumerate(_checked_lines(path, f), start=1):
            yield lineno, text.rstrip("\r\n")


def _header(path: Path, names: list[str], required: list[str]) -> list[str]:
    if not any(names):
        raise bad(path, 1, "empty header row (expected column names)")
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise bad(path, 1, f"duplicate column {n!r} in the header")
        seen.add(n)
    missing = [c for c in required if c not in seen]
    if missing:
        raise bad(path, 1, f"header lacks column(s) {', '.join(missing)} (has {', '.join(names)})")
    return names


def read_atomic(path: Path, required: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Read a RecBole atomic file (tab-separated, header ``name:type``); yields (line number, row).

    ``required`` are the bare column names (``user_id``) that must be present in the header. A row with
    fewer fields than the header is an error; extra trailing fields are ignored, as RecBole does (its own
    ML-100k test fixture ends with such a row). Fields are not quoted: a ``"`` is an ordinary character.
    """
    header: list[str] | None = None
    for lineno, raw in read_lines(path):
        if header is None:
            header = _header(path, [h.split(":", 1)[0].strip() for h in raw.split("\t")], required)
            continue
        if not raw.strip():
            continue
        parts = raw.split("\t")
        if len(parts) < len(header):
            raise bad(path, lineno, f"expected {len(header)} tab-separated fields, found {len(parts)}")
        yield lineno, dict(zip(header, parts))
    if header is None:
        raise bad(path, 1, "empty file (expected a header row)")


def read_csv(path: Path, required: list[str], *, strip_types: bool = True) -> Iterator[tuple[int, dict[str, str]]]:
    """Read a CSV with a header (``name::type`` headers are reduced to ``name``). Yields (record line, row).

    Quoted fields may contain commas, quotes (doubled) and newlines; the line reported for a record is the
    line it starts on. Header names are stripped of surrounding whitespace.
    """
    if csv.field_size_limit() < MAX_FIELD_CHARS:
        csv.field_size_limit(MAX_FIELD_CHARS)
    with _open(path) as f:
        reader = csv.reader(_checked_lines(path, f), strict=True)
        line = 0  # physical lines consumed so far

        def records() -> Iterator[tuple[int, list[str]]]:
            nonlocal line
            while True:
                start = line + 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as e:
                    raise _csv_error(path, start, reader.line_num, e) from None
                line = reader.line_num
                yield start, row

        rows = records()
        first = next(rows, None)
        if first is None:
            raise bad(path, 1, "empty file (expected a header row)")
        names = [h.strip() for h in first[1]]
        if strip_types:
            names = [h.split("::", 1)[0].strip() for h in names]
        header = _header(path, names, required)
        for start, row in rows:
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                span = f" (a record from line {start} to {line}: check its quotes)" if line > start else ""
                raise bad(path, start, f"expected {len(header)} comma-separated fields, found {len(row)}{span}")
            yield start, dict(zip(header, row))


def _csv_error(path: Path, start: int, at: int, e: csv.Error) -> DataValidationError:
    msg = str(e)
    if "unexpected end of data" in msg:
        return bad(path, start, "unclosed quote: a quoted field starts in this record and never ends "
                                "(a \" inside a quoted field is written \"\")")
    where = f" (at line {at})" if at > start else ""
    if "expected after" in msg:
        return bad(path, start, f"bad quoting{where}: a closing quote must be followed by a comma or the end "
                                "of the line (a \" inside a quoted field is written \"\")")
    if "field larger than field limit" in msg:
        return bad(path, start, f"a field is longer than {MAX_FIELD_CHARS:,} characters{where}")
    return bad(path, start, f"malformed CSV{where}: {msg}")


def no_rows(path: Path, what: str) -> DataValidationError:
    """A required file with a header but no data rows: refuse, there is nothing to load."""
    return DataValidationError(f"{path}:2: no {what} rows after the header: nothing to load")


def _number(path: Path, line: int, column: str, value: str, kind: str) -> float | int:
    v = value.strip()
    try:
        x: float | int = int(v) if kind == "integer" else float(v)
    except ValueError:
        raise bad(path, line, f"column {column}: {show(v)} is not {'an integer' if kind == 'integer' else 'a number'}"
                  ) from None
    if isinstance(x, float) and not math.isfinite(x):
        raise bad(path, line, f"column {column}: {show(v)} is not a finite number")
    return x


def _range(path: Path, line: int, column: str, x: float, lo: float | None, hi: float | None, what: str = "") -> None:
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        span = f"{lo:g} to {hi:g}" if lo is not None and hi is not None else (f">= {lo:g}" if lo is not None else f"<= {hi:g}")
        raise bad(path, line, f"column {column}: {x:g} is out of range ({what}{span})")


def parse_float(path: Path, line: int, column: str, value: str, *, optional: bool = False,
                lo: float | None = None, hi: float | None = None) -> float | None:
    """A finite number (``nan``/``inf`` are refused), optionally within ``[lo, hi]``; blank → None if optional."""
    if value.strip() == "":
        if optional:
            return None
        raise bad(path, line, f"column {column}: empty (a number is required)")
    x = float(_number(path, line, column, value, "number"))
    _range(path, line, column, x, lo, hi)
    return x


def parse_int(path: Path, line: int, column: str, value: str, *, optional: bool = False,
              lo: int = INT64_MIN, hi: int = INT64_MAX) -> int | None:
    """An integer within ``[lo, hi]`` (default: Neo4j's 64-bit range); blank → None if optional."""
    if value.strip() == "":
        if optional:
            return None
        raise bad(path, line, f"column {column}: empty (an integer is required)")
    x = int(_number(path, line, column, value, "integer"))
    if not lo <= x <= hi:
        raise bad(path, line, f"column {column}: {show(str(x))} is out of range ({lo} to {hi})")
    return x


def parse_timestamp(path: Path, line: int, column: str, value: str, *, optional: bool = False) -> float | None:
    """Unix seconds between the years 1 and 9999 (stored as whole seconds); blank → None if optional."""
    if value.strip() == "":
        if optional:
            return None
        raise bad(path, line, f"column {column}: empty (a unix timestamp in seconds is required)")
    x = float(_number(path, line, column, value, "number"))
    if not TS_MIN <= x <= TS_MAX:
        hint = "; milliseconds? give seconds" if TS_MAX < x <= TS_MAX * 1000 else ""
        raise bad(path, line, f"column {column}: {show(value.strip())} is out of range (unix seconds between "
                              f"the years 1 and 9999{hint})")
    return x


def require_id(path: Path, line: int, column: str, value: str) -> str:
    """A non-blank id without whitespace or control characters that fits an index key."""
    v = value.strip()
    if not v:
        raise bad(path, line, f"column {column}: empty id")
    if any(c.isspace() for c in v):
        raise bad(path, line, f"column {column}: id {show(v)} contains whitespace")
    if not v.isprintable():
        raise bad(path, line, f"column {column}: id {show(v)} contains a control character")
    return _key_size(path, line, column, v, "id")


def require_key(path: Path, line: int, column: str, value: str, what: str) -> str:
    """A non-blank indexed value (URI, predicate, source): no line breaks, fits an index key."""
    v = value.strip()
    if not v:
        raise bad(path, line, f"column {column}: empty {what}")
    if any(c in v for c in "\r\n\x00"):
        raise bad(path, line, f"column {column}: {what} {show(v)} contains a line break")
    return _key_size(path, line, column, v, what)


def _key_size(path: Path, line: int, column: str, v: str, what: str) -> str:
    n = len(v.encode("utf-8"))
    if n > MAX_KEY_BYTES:
        raise bad(path, line, f"column {column}: {what} {show(v)} is {n:,} bytes long (at most {MAX_KEY_BYTES:,})")
    return v
