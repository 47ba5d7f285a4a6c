"""Domain glossary: key → explanation, appended to a prompt when a key occurs in the node's text.

IKGR §4.2: domain terms the LLM may not know are explained in-context instead of fine-tuning. The file is
UTF-8 text, one entry per line::

    # comment
    term<TAB>explanation
    variant one|variant two<TAB>explanation shared by the variants

Terms match case-insensitively as whole words/phrases (letters and digits may not touch either end).
Longer terms win over the shorter terms they contain ("neo-noir" hides "noir"); each entry is used once.
A bundled glossary is addressed by name (``movies`` → ``glossaries/movies.tsv``); anything else is a path.
A term may be defined once; bad bytes, a missing tab or an empty side are ``file:line:`` errors.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from ..config import resource_dir
from ..errors import ConfigError, DataValidationError

#: Tag under which explanations are appended to the prompt (the paper's "Knowledge Context").
GLOSSARY_TAG = "### Knowledge Context:"


@dataclass(frozen=True)
class GlossaryEntry:
    terms: tuple[str, ...]
    explanation: str

    @property
    def key(self) -> str:
        return self.terms[0]


class Glossary:
    """Parsed glossary with a single compiled matcher."""

    def __init__(self, entries: list[GlossaryEntry], source: str = "") -> None:
        self.entries = entries
        self.source = source
        by_term: dict[str, int] = {}
        for i, e in enumerate(entries):
            for t in e.terms:
                by_term.setdefault(t.lower(), i)
        self._entry_of = by_term
        terms = sorted(by_term, key=len, reverse=True)  # longest first: the regex alternation prefers it
        self._pattern = (
            re.compile(r"(?<![\w])(" + "|".join(re.escape(t) for t in terms) + r")(?![\w])", re.IGNORECASE)
            if terms else None
        )
        self.checksum = hashlib.sha256(
            "\n".join(f"{'|'.join(e.terms)}\t{e.explanation}" for e in entries).encode("utf-8")
        ).hexdigest()[:12]

    def __len__(self) -> int:
        return len(self.entries)

    def match(self, text: str, limit: int = 5) -> list[GlossaryEntry]:
        """Entries whose terms occur in ``text``, in order of first occurrence, at most ``limit``."""
        if not self._pattern or not text:
            return []
        seen: list[int] = []
        for m in self._pattern.finditer(text):
            i = self._entry_of[m.group(1).lower()]
            if i not in seen:
                seen.append(i)
                if len(seen) >= limit:
                    break
        return [self.entries[i] for i in seen]

    def context(self, text: str, limit: int = 5) -> str:
        """The prompt block for ``text`` (tag + one ``- term: explanation`` line per hit), or ``""``."""
        hits = self.match(text, limit)
        if not hits:
            return ""
        return GLOSSARY_TAG + "\n" + "\n".join(f"- {e.key}: {e.explanation}" for e in hits)


#: Longest term and explanation: explanations go into every prompt that mentions the term.
MAX_TERM_CHARS = 200
MAX_EXPLANATION_CHARS = 1000


def parse_glossary(text: str, source: str = "<string>") -> Glossary:
    """Parse ``term<TAB>explanation`` lines; a malformed line is a ``source:line:`` error.

    Lines end at ``\n`` (``\r\n`` too); a leading UTF-8 byte-order mark is dropped. A term (or variant)
    may be defined once only.
    """
    entries: list[GlossaryEntry] = []
    first_line: dict[str, int] = {}
    if text.startswith("\ufeff"):
        text = text[1:]
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.strip(" \r\n")  # tabs are kept: "term<TAB><blank>" is an empty explanation, not a blank line
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "\x00" in line:
            raise DataValidationError(f"{source}:{n}: NUL byte (a binary file, or UTF-16?)")
        if "\t" not in line:
            raise DataValidationError(f"{source}:{n}: expected 'term<TAB>explanation'")
        term_part, explanation = (p.strip() for p in line.split("\t", 1))
        terms = tuple(t.strip() for t in term_part.split("|") if t.strip())
        if not terms or not explanation:
            raise DataValidationError(f"{source}:{n}: empty term or explanation")
        explanation = " ".join(explanation.split())
        for t in terms:
            if len(t) > MAX_TERM_CHARS:
                raise DataValidationError(f"{source}:{n}: term {t[:40]!r}... is {len(t):,} characters long "
                                          f"(at most {MAX_TERM_CHARS})")
            if t.lower() in first_line:
                raise DataValidationError(f"{source}:{n}: term {t!r} is already defined on line {first_line[t.lower()]}")
            first_line[t.lower()] = n
        if len(explanation) > MAX_EXPLANATION_CHARS:
            raise DataValidationError(f"{source}:{n}: explanation is {len(explanation):,} characters long "
                                      f"(at most {MAX_EXPLANATION_CHARS}; it goes into every prompt)")
        entries.append(GlossaryEntry(terms, explanation))
    return Glossary(entries, source)


def load_glossary(name_or_path: str | Path | None) -> Glossary | None:
    """Load a bundled glossary by name (``movies``) or a file by path; ``None`` → no glossary.

    The file must be UTF-8 (a byte-order mark is fine) and hold at least one entry.
    """
    if name_or_path is None or str(name_or_path) == "":
        return None
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        raise DataValidationError(f"{path}: is a directory, expected a glossary file (term<TAB>explanation)")
    if not path.is_file():
        bundled = resource_dir("glossaries") / f"{name_or_path}.tsv"
        if bundled.is_file():
            path = bundled
        else:
            raise ConfigError(
                f"glossary {name_or_path!r} not found",
                hint="give a path to a term<TAB>explanation file, or a bundled name: "
                     + ", ".join(bundled_glossaries()),
            )
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataValidationError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        what = ("the file is UTF-16 (byte-order mark), not UTF-8" if data[:2] in (b"\xff\xfe", b"\xfe\xff")
                else f"not valid UTF-8 (byte 0x{data[e.start]:02x})")
        raise DataValidationError(f"{path}:{line}: {what}", hint="save the glossary as UTF-8") from None
    glossary = parse_glossary(text, str(path))
    if not len(glossary):
        raise DataValidationError(f"{path}: no glossary entries (expected term<TAB>explanation lines)")
    return glossary


def bundled_glossaries() -> list[str]:
    folder = resource_dir("glossaries")
    return sorted(p.stem for p in folder.glob("*.tsv")) if folder.is_dir() else []
