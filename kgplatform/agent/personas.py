"""Short human labels for personas ("Hitchcock-era suspense fans", not "persona 7"), from the LLM agent.

The prompt shows a persona's most distinctive training items (titles), KG entities and intents — computed by
:mod:`kgplatform.models.personas` from training interactions only — and asks for one label of 2 to 6 words.
The answer is bounded by a JSON schema (llama.cpp grammar: at most 6 words of at most 16 characters), then
validated: not a copy of one of the titles shown, not a few-shot example, not a generic word alone. Answers
are cached (the same SQLite cache as intent extraction, keyed by model, prompt version and the rendered
prompt) and carry provenance (model, prompt version). When every attempt fails, the label is built from the
persona's top entities/intents/titles and marked ``source = "fallback"`` — never passed off as the model's.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel, StringConstraints, ValidationError

from .cache import ResultCache, cache_key
from .llm import LLMBackend
from .schemas import InvalidAnswer, clean_name, intent_key, title_variants

LABEL_NAME = "persona-label-v1"
MAX_LABEL_WORDS = 6
_WORD = r"[A-Za-z0-9][A-Za-z0-9'&-]{0,15}"
LABEL_PATTERN = rf"^{_WORD}( {_WORD}){{1,{MAX_LABEL_WORDS - 1}}}$"
GENERIC_LABELS = frozenset({"users", "people", "group", "fans", "customers", "viewers", "buyers", "persona",
                            "user group", "group of users", "all users", "general audience"})


class PersonaLabelOut(BaseModel):
    """A short label (2 to 6 words) describing the taste of a group of users."""

    label: Annotated[str, StringConstraints(pattern=LABEL_PATTERN)]


_SYSTEM = ("You name groups of users of a recommender system. From what a group likes more than everyone "
           "else, write one short label of 2 to 6 words describing their taste, in plain words a person "
           "understands. Do not copy a title. Answer with JSON only.")
# (items, entities, intents, answer) — unlike the catalogues we ingest, on purpose (a copy is easy to spot)
_EXAMPLES = [
    (["The Joy of Cooking", "Salt Fat Acid Heat", "Bread Baking Basics"], ["cookbooks", "baking"],
     ["home cooking", "learning to bake"], "home baking enthusiasts"),
    (["Raised Bed Planter", "Heirloom Tomato Seeds", "Garden Kneeler"], ["gardening"],
     ["growing vegetables"], "weekend vegetable gardeners"),
]
_EXAMPLE_KEYS = frozenset(intent_key(a) for *_, a in _EXAMPLES)


@dataclass
class PersonaDescription:
    """What a persona's members share, as text: distinctive titles, KG entities and intents."""

    items: list[str]
    entities: list[str] = field(default_factory=list)
    intents: list[str] = field(default_factory=list)


@dataclass
class PersonaLabel:
    text: str
    source: str  # "llm" | "fallback"
    model: str | None
    prompt_version: str | None
    error: str | None = None
    cached: bool = False


def _block(d: PersonaDescription, n: int = 8) -> str:
    parts = ["### Typical items:\n" + "\n".join(f"- {_short(t)}" for t in d.items[:n])]
    if d.entities:
        parts.append("### Typical topics:\n" + "\n".join(f"- {_short(e)}" for e in d.entities[:n]))
    if d.intents:
        parts.append("### Typical intents:\n" + ", ".join(_short(t) for t in d.intents[:n]))
    return "\n".join(parts)


def _short(text: str, max_chars: int = 80) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= max_chars else text[:max_chars].rsplit(" ", 1)[0] + " …"


def _esc(s: str) -> str:
    return s.replace("{", "{{").replace("}", "}}")


def label_messages() -> list[tuple[str, str]]:
    ask = "Name this group in 2 to 6 words."
    msgs: list[tuple[str, str]] = [("system", _SYSTEM)]
    for items, ents, ints, answer in _EXAMPLES:
        msgs.append(("human", _esc(_block(PersonaDescription(items, ents, ints)) + "\n" + ask)))
        msgs.append(("ai", _esc(json.dumps({"label": answer}))))
    msgs.append(("human", "{description}\n" + ask))
    return msgs


def label_prompt() -> tuple[ChatPromptTemplate, str]:
    msgs = label_messages()
    version = f"{LABEL_NAME}.{hashlib.sha256(json.dumps(msgs).encode() + LABEL_PATTERN.encode()).hexdigest()[:6]}"
    return ChatPromptTemplate.from_messages(msgs), version


def check_label(raw: Any, d: PersonaDescription) -> str:
    """A usable label or :class:`InvalidAnswer`."""
    if not isinstance(raw, str):
        raise InvalidAnswer("the label is not a string")
    name = clean_name(raw)
    key = intent_key(name)
    words = key.split()
    if not re.fullmatch(LABEL_PATTERN, name):
        raise InvalidAnswer(f"label {raw!r} is not 2 to {MAX_LABEL_WORDS} plain words")
    if len(words) < 2:
        raise InvalidAnswer(f"label {raw!r} has fewer than 2 words")
    if key in _EXAMPLE_KEYS:
        raise InvalidAnswer(f"label {raw!r} copies a few-shot example")
    if key in GENERIC_LABELS:
        raise InvalidAnswer(f"label {raw!r} is generic")
    for t in d.items:
        variants = title_variants(t)
        if key in variants:
            raise InvalidAnswer(f"label {raw!r} copies a title")
        if any(_contiguous(_words(key), _words(v)) for v in variants):
            raise InvalidAnswer(f"label {raw!r} is a piece of the title {t!r}")
    return name


_ARTICLES = ("the", "a", "an")


def _words(text: str) -> list[str]:
    return re.findall(r"[0-9a-z']+", text.lower())


def _contiguous(label: list[str], title: list[str]) -> bool:
    """Whether the label, leading article dropped and at least two words left, is a run of the title's words
    ("The Truth About Cats" in "The Truth About Cats & Dogs")."""
    if label and label[0] in _ARTICLES:
        label = label[1:]
    n = len(label)
    return n >= 2 and any(title[i:i + n] == label for i in range(len(title) - n + 1))


def fallback_label(d: PersonaDescription, index: int) -> str:
    """A label built from the data, for when the model gives none: up to three top entities / intents /
    title stems joined with " · "."""
    picks: list[str] = []
    for pool in (d.entities, d.intents, d.items):
        for x in pool:
            x = _short(re.sub(r"\s*\(\d{4}\)$", "", str(x)), 32)
            if x and x.lower() not in {p.lower() for p in picks}:
                picks.append(x)
            if len(picks) == 3:
                break
        if len(picks) == 3:
            break
    return " · ".join(picks) if picks else f"persona {index}"


def label_personas(backend: LLMBackend | None, descriptions: list[PersonaDescription], *,
                   cache: ResultCache | None = None, retries: int = 2, log=None) -> list[PersonaLabel]:
    """One label per description (see the module docstring). ``backend=None`` gives fallback labels only."""
    template, version = label_prompt()
    out: list[PersonaLabel] = []
    for j, d in enumerate(descriptions):
        if backend is None:
            out.append(PersonaLabel(fallback_label(d, j), "fallback", None, None, "no LLM asked"))
            continue
        variables = {"description": _block(d)}
        msgs = template.format_messages(**variables)
        key = cache_key("persona-label", backend.model_id, version,
                        json.dumps([[m.type, m.content] for m in msgs], ensure_ascii=False))
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            try:  # a cached answer meets today's checks too (they may have grown stricter since)
                out.append(PersonaLabel(check_label(hit, d), "llm", backend.model_id, version, cached=True))
                continue
            except InvalidAnswer:
                pass
        error = None
        label = None
        for attempt in range(retries + 1):
            t0 = time.perf_counter()
            try:
                label = check_label(backend.ask(template, variables, PersonaLabelOut, attempt, field="label"), d)
                break
            except (InvalidAnswer, ValidationError) as e:
                error = f"attempt {attempt + 1}: {' '.join(str(e).split())[:200]}"
            except Exception as e:  # noqa: BLE001 - backend down: fall back, say so
                error = f"attempt {attempt + 1}: {type(e).__name__}: {' '.join(str(e).split())[:200]}"
                break
            finally:
                if log:
                    log(f"[personas] label {j}: {time.perf_counter() - t0:.1f} s")
        if label is None:
            out.append(PersonaLabel(fallback_label(d, j), "fallback", backend.model_id, version, error))
            continue
        if cache is not None:
            cache.put(key, label, round=0, model=backend.model_id, prompt_version=version)
        out.append(PersonaLabel(label, "llm", backend.model_id, version))
    return out


__all__ = ["PersonaDescription", "PersonaLabel", "PersonaLabelOut", "check_label", "fallback_label",
           "label_personas", "label_prompt"]
