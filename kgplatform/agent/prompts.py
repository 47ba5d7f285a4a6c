"""Prompt templates of the two extraction rounds (IKGR §4.1–4.3), as LangChain chat templates.

Round 1 follows the paper's naive call ("###Item Description: … Return a list of entities … that the user may
have intents to interact with"), plus the glossary block under ``### Knowledge Context:``. Round 2 is the
paper's RAG prompt: the description, the knowledge context, ``### Options:`` (intents retrieved by vector
similarity that the node does not have yet, one per line), and "which of the options are the most
relevant?".

Small models copy few-shot answers. The examples are therefore deliberately *unlike* any catalogue the
platform ingests (a cookbook, hiking boots, a retired sailor), so a copied phrase is easy to spot, and
:func:`example_keys` lists them for :func:`~kgplatform.agent.schemas.normalize_phrases` to reject.

The prompt version recorded on every edge is ``<name>.<hash>``: a hand-bumped name plus a hash of the
template text, so editing a prompt can never be mistaken for the old one (done nodes are redone).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from langchain_core.prompts import ChatPromptTemplate

from .. import schema
from .schemas import MAX_EXACT, MAX_RELATED, PHRASE_PATTERN, intent_key

ROUND1_NAME = "r1-v2"
ROUND2_NAME = "r2-v2"  # v2: one option per line without a bullet (fewer prompt tokens per option)

#: phrases the round-1 instructions quote as examples (a copy of one is rejected like a copied few-shot answer)
_INSTRUCTION_EXAMPLES = ("refinish a deck", "date night")
_SYSTEM_1 = (
    "You extract intents for a recommender system. An intent is a short phrase of 1 to 4 words naming a "
    "need, interest, theme, mood or occasion that leads someone to choose this {kind}. Use only what the "
    "text says or clearly implies. Prefer what the person wants to do, feel or get (for example \""
    + _INSTRUCTION_EXAMPLES[0] + "\" or \"" + _INSTRUCTION_EXAMPLES[1] + "\") over what the {kind} is called: "
    "never repeat the title, brand names, model numbers or years. Answer with JSON only."
)
_ASK_1 = {
    schema.ITEM: "Return a list of up to {n} intents a user may have to interact with this item.",
    schema.USER: "Return a list of up to {n} intents this user may have when looking for something to enjoy.",
}
_HEAD = {schema.ITEM: "### Item Description:", schema.USER: "### User Profile:"}

# (label, text, answer) — unlike the catalogues we ingest, on purpose.
_EXAMPLES_1: dict[str, list[tuple[str, list[str]]]] = {
    schema.ITEM: [
        ("The Joy of Cooking (1931)\nA classic American cookbook with thousands of recipes, from weeknight "
         "dinners to holiday baking, and clear lessons on kitchen basics.",
         ["home cooking", "holiday baking", "learning to cook"]),
        ("TrailMaster hiking boots\nWaterproof leather boots with ankle support and a grippy sole for "
         "rocky mountain trails.",
         ["mountain hiking", "waterproof footwear", "ankle support"]),
    ],
    schema.USER: [
        ("A 67-year-old retired sailor.", ["sea stories", "nautical history", "quiet evenings"]),
    ],
}

_SYSTEM_2 = (
    "You link a {kind} to intents from a fixed list of options for a recommender system. Choose only "
    "options that fit the {kind}; copy them exactly as written. Answer with JSON only."
)
_ASK_2 = (
    "What are the intents in the options that are the most relevant to this {kind}? "
    "Choose up to {n}."
)
_EXAMPLES_2: dict[str, list[tuple[str, list[str], list[str]]]] = {
    schema.ITEM: [
        ("TrailMaster hiking boots\nWaterproof leather boots with ankle support for rocky mountain trails.",
         ["camping trips", "office wear", "outdoor adventure", "formal dinners", "rainy weather"],
         ["outdoor adventure", "camping trips", "rainy weather"]),
    ],
    schema.USER: [
        ("A 67-year-old retired sailor.",
         ["ocean voyages", "skateboarding", "maritime history", "nightclub music"],
         ["ocean voyages", "maritime history"]),
    ],
}


def _kind(label: str) -> str:
    return "item" if label == schema.ITEM else "user"


def _describe(label: str, text: str, context: str) -> str:
    body = f"{_HEAD[label]}\n{text.strip()}"
    if context:
        body += f"\n{context}"
    return body


def round1_messages(label: str) -> list[tuple[str, str]]:
    msgs: list[tuple[str, str]] = [("system", _SYSTEM_1.format(kind=_kind(label)))]
    ask = _ASK_1[label].format(n=MAX_EXACT)
    for text, answer in _EXAMPLES_1[label]:
        msgs.append(("human", _esc(_describe(label, text, "") + "\n" + ask)))
        msgs.append(("ai", _esc(json.dumps({"intents": answer}))))
    msgs.append(("human", "{description}\n" + _esc(ask)))
    return msgs


def round2_messages(label: str) -> list[tuple[str, str]]:
    kind = _kind(label)
    msgs: list[tuple[str, str]] = [("system", _SYSTEM_2.format(kind=kind))]
    ask = _ASK_2.format(kind=kind, n=MAX_RELATED)
    for text, options, answer in _EXAMPLES_2[label]:
        msgs.append(("human", _esc(_describe(label, text, "") + "\n" + format_options(options) + "\n" + ask)))
        msgs.append(("ai", _esc(json.dumps({"intents": answer}))))
    msgs.append(("human", "{description}\n{options}\n" + _esc(ask)))
    return msgs


def format_options(options: list[str]) -> str:
    """The ``### Options:`` block, one option per line. Round 2 is bound by prompt evaluation (K = 100
    options are most of the prompt), so the encoding is the shortest that keeps options apart: a bare line
    per option. Measured with SmolLM2's tokenizer on round-1 intents of MovieLens (benchmarks/extract.py prints
    it): 4.0 tokens per option this way, 4.6 with a ``- `` bullet (r2-v1), 6.4 numbered (``12. phrase``) —
    at K = 100 numbering costs ~240 prompt tokens to save a dozen generated ones."""
    return "### Options:\n" + "\n".join(options)


def describe(label: str, text: str, context: str = "", max_chars: int = 500) -> str:
    """The node block of a prompt: header, text (cut at ``max_chars`` on a word boundary), glossary."""
    text = " ".join(text.split()) if label == schema.USER else text.strip()
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0] + " …"
    return _describe(label, text, context)


def _esc(s: str) -> str:
    return s.replace("{", "{{").replace("}", "}}")


def _version(name: str, *parts: str) -> str:
    h = hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:6]
    return f"{name}.{h}"


@dataclass(frozen=True)
class PromptSet:
    round: int
    version: str
    templates: dict[str, ChatPromptTemplate]


_LABELS = (schema.ITEM, schema.USER)


def round1_prompts() -> PromptSet:
    msgs = {lb: round1_messages(lb) for lb in _LABELS}
    version = _version(ROUND1_NAME, PHRASE_PATTERN, str(MAX_EXACT), json.dumps(msgs, sort_keys=True))
    return PromptSet(1, version, {lb: ChatPromptTemplate.from_messages(m) for lb, m in msgs.items()})


def round2_prompts() -> PromptSet:
    msgs = {lb: round2_messages(lb) for lb in _LABELS}
    version = _version(ROUND2_NAME, str(MAX_RELATED), json.dumps(msgs, sort_keys=True))
    return PromptSet(2, version, {lb: ChatPromptTemplate.from_messages(m) for lb, m in msgs.items()})


def example_keys() -> frozenset[str]:
    """Keys of every phrase that appears in a few-shot *answer* (copying them is rejected)."""
    keys = {intent_key(p) for exs in _EXAMPLES_1.values() for _, ans in exs for p in ans}
    keys |= {intent_key(p) for exs in _EXAMPLES_2.values() for _, _, ans in exs for p in ans}
    keys |= {intent_key(p) for p in _INSTRUCTION_EXAMPLES}
    return frozenset(keys)
