"""Domain glossary: key → explanation, appended to a prompt when a key occurs in the node's text.

IKGR §4.2: domain terms the LLM may not know are explained in-context instead of fine-tuning. The file is
UTF-8 text, one entry per line::

    # comment
    term<TAB>explanation
    variant one|variant two<TAB>explanation shared by the variants

Terms match case-insensitively as whole words/phrases (letters and digits may not touch either end).
Longer terms win over the shorter terms they contain ("neo-noir" hides "noir"); each entry is used once.
A bundled glossary is addressed by name (``movies`` → ``glossaries/movies.tsv``); anything else is a path.
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


def parse_glossary(text: str, source: str = "<string>") -> Glossary:
    entries: list[GlossaryEntry] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "\t" not in line:
            raise DataValidationError(f"{source}:{n}: expected 'term<TAB>explanation'")
        term_part, explanation = (p.strip() for p in line.split("\t", 1))
        terms = tuple(t.strip() for t in term_part.split("|") if t.strip())
        if not terms or not explanation:
            raise DataValidationError(f"{source}:{n}: empty term or explanation")
        entries.append(GlossaryEntry(terms, " ".join(explanation.split())))
    return Glossary(entries, source)


def load_glossary(name_or_path: str | Path | None) -> Glossary | None:
    """Load a bundled glossary by name (``movies``) or a file by path; ``None`` → no glossary."""
    if name_or_path is None or str(name_or_path) == "":
        return None
    path = Path(name_or_path).expanduser()
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
    return parse_glossary(path.read_text(encoding="utf-8"), str(path))


def bundled_glossaries() -> list[str]:
    folder = resource_dir("glossaries")
    return sorted(p.stem for p in folder.glob("*.tsv")) if folder.is_dir() else []
