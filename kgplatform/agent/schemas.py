"""What the LLM may answer, and how an answer becomes intents.

Small models ramble: an unbounded JSON string runs until ``max_tokens``. So every schema the model is
constrained by (llama.cpp turns it into a grammar) is *bounded*: a phrase is at most :data:`MAX_WORDS`
words of at most 16 characters each — the limit lives inside the ``pattern`` because llama.cpp's grammar
converter honours ``pattern`` but not ``maxLength`` — and lists have ``maxItems``. Round 2's schema is an
``enum`` of the retrieved options, so a grammar-constrained model cannot answer anything else; the answer is
still validated as a subset of the options (an OpenAI-compatible endpoint may ignore the schema).

After decoding, phrases are normalised (:func:`normalize_phrases`): trimmed, whitespace collapsed, outer
punctuation stripped, length-bounded, generic words, the node's own title, phrases that only echo words of the
title ("B&C Eagle" for "B&C Eagle 9018 Hammer") and model numbers or bare years dropped, de-duplicated on the
lower-case key (intents merge case-insensitively, IKGR §4.3), and phrases copied from the few-shot examples
rejected.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from .quality import has_code, is_echo

#: At most this many exact intents per node (round 1) and related intents per node (round 2).
MAX_EXACT = 5
MAX_RELATED = 5
MAX_WORDS = 4
MIN_KEY_CHARS = 3
MAX_KEY_CHARS = 48

_WORD = r"[A-Za-z0-9][A-Za-z0-9'&-]{0,15}"
#: A bounded phrase: 1..MAX_WORDS words of 1..16 characters, single spaces, no quotes/backslashes.
PHRASE_PATTERN = rf"^{_WORD}( {_WORD}){{0,{MAX_WORDS - 1}}}$"

Phrase = Annotated[str, StringConstraints(pattern=PHRASE_PATTERN)]


class IntentList(BaseModel):
    """Intents a user may have when interacting with the item or user described."""

    intents: list[Phrase] = Field(min_length=1, max_length=MAX_EXACT)


def related_schema(options: list[str], max_items: int = MAX_RELATED) -> dict[str, Any]:
    """JSON schema of a round-2 answer: 1..max_items picks from ``options`` (an enum)."""
    return {
        "title": "RelatedIntents",
        "description": "The options that are the most relevant intents for the item or user described.",
        "type": "object",
        "properties": {
            "intents": {
                "type": "array",
                "items": {"type": "string", "enum": list(options)},
                "minItems": 1,
                "maxItems": max(1, min(max_items, len(options))),
            }
        },
        "required": ["intents"],
    }


class IntentOut(BaseModel):
    """A validated intent ready to be written: ``key`` is the case-insensitive identity."""

    key: str = Field(min_length=MIN_KEY_CHARS, max_length=MAX_KEY_CHARS)
    name: str = Field(min_length=MIN_KEY_CHARS, max_length=MAX_KEY_CHARS)


class RelatedOut(BaseModel):
    key: str
    score: float


GENERIC = frozenset({
    "movie", "movies", "film", "films", "item", "items", "product", "products", "user", "users", "none",
    "n a", "na", "unknown", "other", "others", "entertainment", "watch", "watching", "watching movies",
    "intent", "intents", "genre", "genres", "thing", "things", "stuff", "good", "nice", "great", "the", "a", "an",
})

_EDGE_PUNCT = " \t\"'`.,;:!?()[]{}<>*-_#/\\|"


def intent_key(name: str) -> str:
    """The identity of an intent: lower-case, single-spaced, outer punctuation stripped."""
    return " ".join(name.strip(_EDGE_PUNCT).lower().split()).strip(_EDGE_PUNCT)


def clean_name(name: str) -> str:
    return " ".join(name.split()).strip(_EDGE_PUNCT)


_PAREN = re.compile(r"\s*\([^)]*\)")
_ARTICLE_SUFFIX = re.compile(r"^(.*),\s*(the|a|an|les|la|le|il|el|das|der|die)$", re.IGNORECASE)


def title_variants(title: str) -> set[str]:
    """Keys a title may come back as: as is, without parentheses ("Shanghai Triad (Yao a yao …)"), with a
    MovieLens-style trailing article moved to the front ("Birdcage, The" → "the birdcage") and without it."""
    out: set[str] = set()
    for t in {title, _PAREN.sub("", title)}:
        key = intent_key(t)
        if not key:
            continue
        out.add(key)
        m = _ARTICLE_SUFFIX.match(key)
        if m:
            out.add(f"{m.group(2)} {m.group(1)}")
            out.add(m.group(1))
        for art in ("the ", "a ", "an "):
            if key.startswith(art):
                out.add(key[len(art):])
    return out


class InvalidAnswer(ValueError):
    """The model's answer is unusable (retry, then mark the node failed with this reason). ``dropped``: the
    phrases normalisation dropped on the way, with their reasons (for the extraction summary)."""

    def __init__(self, message: str, *, dropped: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.dropped = list(dropped or [])


@dataclass
class Normalized:
    intents: list[IntentOut]
    dropped: list[tuple[str, str]]  # (phrase, reason)
    copied: int


def normalize_phrases(
    phrases: list[Any],
    *,
    source_text: str = "",
    title: str | None = None,
    example_keys: frozenset[str] = frozenset(),
    max_items: int = MAX_EXACT,
) -> Normalized:
    """Clean a round-1 answer. Raises :class:`InvalidAnswer` when nothing usable is left, or when half or
    more of the phrases repeat the few-shot examples (the model is parroting, not reading the input)."""
    out: list[IntentOut] = []
    dropped: list[tuple[str, str]] = []
    seen: set[str] = set()
    copied = 0
    source_lc = " ".join(source_text.lower().split())
    title_keys = title_variants(title) if title else set()
    for raw in phrases:
        if not isinstance(raw, str):
            dropped.append((repr(raw), "not a string"))
            continue
        name = clean_name(raw)
        key = intent_key(name)
        if not key:
            dropped.append((raw, "empty"))
        elif key in example_keys and key not in source_lc:
            copied += 1
            dropped.append((raw, "copied from the examples"))
        elif len(key) < MIN_KEY_CHARS or len(key) > MAX_KEY_CHARS:
            dropped.append((raw, "length"))
        elif len(key.split()) > MAX_WORDS:
            dropped.append((raw, "too many words"))
        elif not re.search(r"[a-z]", key):
            dropped.append((raw, "no letters"))
        elif key in GENERIC:
            dropped.append((raw, "generic"))
        elif key in title_keys or (key.startswith("the ") and key[4:] in title_keys):
            dropped.append((raw, "the node's own title"))
        elif title and is_echo(key, title):
            dropped.append((raw, "echoes the title"))
        elif has_code(key):
            dropped.append((raw, "a model number or year"))
        elif key in seen:
            dropped.append((raw, "duplicate"))
        else:
            seen.add(key)
            out.append(IntentOut(key=key, name=name))
    n = len([p for p in phrases if isinstance(p, str)])
    if n and copied * 2 >= n:
        raise InvalidAnswer(f"{copied} of {n} phrases repeat the few-shot examples", dropped=dropped)
    if not out:
        reasons = ", ".join(sorted({r for _, r in dropped})) or "empty list"
        raise InvalidAnswer(f"no usable intent ({reasons})", dropped=dropped)
    return Normalized(out[:max_items], dropped, copied)


def validate_selection(picks: list[Any], options: dict[str, float], max_items: int = MAX_RELATED
                       ) -> list[RelatedOut]:
    """Round-2 answer → the offered options it names (by key), with their retrieval scores.

    Names outside ``options`` are an error (the answer is rejected and retried), never silently linked.
    """
    if not isinstance(picks, list):
        raise InvalidAnswer("answer is not a list")
    out: list[RelatedOut] = []
    seen: set[str] = set()
    unknown: list[str] = []
    for p in picks:
        key = intent_key(p) if isinstance(p, str) else ""
        if key not in options:
            unknown.append(str(p))
            continue
        if key in seen:
            continue
        seen.add(key)
        out.append(RelatedOut(key=key, score=float(options[key])))
    if unknown:
        raise InvalidAnswer(f"picked {len(unknown)} phrase(s) that were not offered: {unknown[:3]}")
    if not out:
        raise InvalidAnswer("no option picked")
    return out[:max_items]
