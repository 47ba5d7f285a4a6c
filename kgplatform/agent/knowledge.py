"""Fused user knowledge (the heterogeneous knowledge fusion paper, §2): the LLM reads a user's behaviours as text
and writes one short structured profile.

A user's behaviours arrive here already rendered from the **training split only** (:class:`UserBehaviors`, built
by :mod:`kgplatform.knowledge` from the data contract's training view): grouped by behaviour type (``loved``,
``liked``, ``watched``, ``disliked`` for MovieLens' typed feedback; ``view``, ``cart``, ``buy``… for generic data),
most recent first, each item with its title and a few KG facts, plus the user's profile (age, occupation…) as
context. The model answers a bounded schema (:class:`KnowledgeProfile`: up to 5 likes, 3 dislikes, 3 contexts,
3 leanings, each a short phrase — the llama.cpp grammar enforces the bounds), and the answer is validated:
phrases are cleaned and de-duplicated; a phrase that only repeats one of the shown titles, or copies the
few-shot example, is dropped; an answer left with no like is rejected and retried. Answers are cached (the
extraction cache, keyed by model, prompt version and the rendered prompt) and carry provenance (model, prompt
version).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Annotated, Any

from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel, Field, StringConstraints

from .cache import ResultCache
from .checked import Answered, ask_checked
from .llm import LLMBackend
from .schemas import InvalidAnswer, clean_name, intent_key, title_variants

KNOWLEDGE_NAME = "knowledge-v1"
#: a phrase: at most 40 characters, starting with a letter or digit
PHRASE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 '&,./-]{0,39}$"
LIMITS = {"likes": 5, "dislikes": 3, "contexts": 3, "leanings": 3}
#: items shown per behaviour type, and KG facts per item
ITEMS_PER_BEHAVIOR = 8
FACTS_PER_ITEM = 2

_Phrase = Annotated[str, StringConstraints(pattern=PHRASE_PATTERN)]


class KnowledgeProfile(BaseModel):
    """What a user likes and dislikes, when and how they consume, and their leanings, as short phrases."""

    likes: list[_Phrase] = Field(max_length=LIMITS["likes"])
    dislikes: list[_Phrase] = Field(max_length=LIMITS["dislikes"])
    contexts: list[_Phrase] = Field(max_length=LIMITS["contexts"])
    leanings: list[_Phrase] = Field(max_length=LIMITS["leanings"])


class KnowledgeAnswer(BaseModel):
    """The fused knowledge about one user."""

    profile: KnowledgeProfile


@dataclass
class BehaviorItem:
    title: str
    facts: list[str] = field(default_factory=list)


@dataclass
class UserBehaviors:
    """One user's training behaviours as text parts: ``groups`` maps a behaviour type to its items (most recent
    first); ``profile`` is the user's own profile text (demographics), if any."""

    user: str
    groups: dict[str, list[BehaviorItem]]
    profile: str = ""
    total: int = 0  # training interactions behind the groups (before the per-type cut)

    @property
    def titles(self) -> list[str]:
        return [it.title for items in self.groups.values() for it in items]


@dataclass
class Knowledge(Answered):
    """A validated profile, or the reason there is none (``error``)."""

    user: str
    likes: list[str] = field(default_factory=list)
    dislikes: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    leanings: list[str] = field(default_factory=list)
    dropped: int = 0  # phrases dropped by validation

    @property
    def text(self) -> str:
        """The profile as one line (what the text encoder embeds)."""
        parts = [f"{name}: {', '.join(vals)}" for name, vals in
                 (("likes", self.likes), ("dislikes", self.dislikes), ("contexts", self.contexts),
                  ("leanings", self.leanings)) if vals]
        return "; ".join(parts)


def _short(text: str, n: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def render(b: UserBehaviors) -> str:
    """The prompt block for one user: profile line, then one line per behaviour type."""
    lines = []
    if b.profile:
        lines.append(f"Profile: {_short(b.profile, 120)}")
    for name in sorted(b.groups, key=lambda g: (-len(b.groups[g]), g)):
        shown = []
        for it in b.groups[name][:ITEMS_PER_BEHAVIOR]:
            facts = [f for f in it.facts[:FACTS_PER_ITEM] if f]
            shown.append(_short(it.title) + (f" [{', '.join(_short(f, 30) for f in facts)}]" if facts else ""))
        lines.append(f"{name} ({len(b.groups[name])}): " + "; ".join(shown))
    return "\n".join(lines) if lines else "(no behaviour recorded)"


_SYSTEM = ("You read what a user of a recommender system did and write what they are like. Answer with JSON only: "
           "likes (up to 5 short phrases: genres, themes, kinds of product), dislikes (up to 3), contexts (up to 3: "
           "when or how they use things), leanings (up to 3: periods, styles, price or audience). Use general "
           "words, not titles.")
_EXAMPLE = (UserBehaviors("example", {
    "loved": [BehaviorItem("The Hobbit", ["fantasy novel", "J. R. R. Tolkien"]),
              BehaviorItem("A Wizard of Earthsea", ["fantasy novel"])],
    "liked": [BehaviorItem("Cosmos", ["popular science"])],
    "disliked": [BehaviorItem("Gone Girl", ["thriller"])],
}, profile="reader, 35"), {"likes": ["fantasy adventures", "classic fantasy authors", "popular science"],
                           "dislikes": ["dark thrillers"], "contexts": ["long reads at home"],
                           "leanings": ["older classics"]})
_EXAMPLE_KEYS = frozenset(intent_key(p) for vals in _EXAMPLE[1].values() for p in vals)


def _esc(s: str) -> str:
    return s.replace("{", "{{").replace("}", "}}")


def knowledge_messages() -> list[tuple[str, str]]:
    ask = "What is this user like?"
    return [("system", _SYSTEM),
            ("human", _esc(render(_EXAMPLE[0]) + "\n" + ask)),
            ("ai", _esc(json.dumps({"profile": _EXAMPLE[1]}))),
            ("human", "{behaviors}\n" + ask)]


def knowledge_prompt() -> tuple[ChatPromptTemplate, str]:
    msgs = knowledge_messages()
    digest = hashlib.sha256(json.dumps([msgs, PHRASE_PATTERN, LIMITS]).encode()).hexdigest()[:6]
    return ChatPromptTemplate.from_messages(msgs), f"{KNOWLEDGE_NAME}.{digest}"


def check_profile(raw: Any, b: UserBehaviors) -> tuple[dict[str, list[str]], int]:
    """The usable phrases of an answer per field, and how many were dropped; :class:`InvalidAnswer` when no
    like is left."""
    if not isinstance(raw, dict):
        raise InvalidAnswer("the profile is not an object")
    titles: set[str] = set()
    for t in b.titles:
        titles |= title_variants(t)
    out: dict[str, list[str]] = {}
    dropped = 0
    seen: set[str] = set()
    for name, limit in LIMITS.items():
        vals = raw.get(name) or []
        if not isinstance(vals, list):
            raise InvalidAnswer(f"{name} is not a list")
        keep: list[str] = []
        for v in vals:
            phrase = clean_name(str(v))
            key = intent_key(phrase)
            if not key or key in seen or key in titles or key in _EXAMPLE_KEYS or len(keep) >= limit:
                dropped += 1
                continue
            seen.add(key)
            keep.append(phrase)
        out[name] = keep
    if not out["likes"]:
        raise InvalidAnswer("no usable like (empty, or only titles / the example repeated)")
    return out, dropped


def input_hash(b: UserBehaviors) -> str:
    return hashlib.sha256(render(b).encode("utf-8")).hexdigest()[:16]


def fuse_knowledge(backend: LLMBackend, behaviors: list[UserBehaviors], *, cache: ResultCache | None = None,
                   retries: int = 2, on_result=None) -> list[Knowledge]:
    """One :class:`Knowledge` per user (see the module docstring). ``on_result(k)`` is called as each user is
    done (the caller writes it at once, so a killed run keeps what it finished)."""
    template, version = knowledge_prompt()
    out: list[Knowledge] = []
    for b in behaviors:
        variables = {"behaviors": render(b)}
        k = Knowledge(b.user, model=backend.model_id, prompt_version=version, input_hash=input_hash(b))
        res = ask_checked(backend, template, variables, KnowledgeAnswer, lambda raw, b=b: check_profile(raw, b),
                          kind="knowledge", version=version, field="profile", retries=retries, cache=cache)
        value = k.record(res)
        if value is not None:
            fields, k.dropped = value
            for name, vals in fields.items():
                setattr(k, name, vals)
        out.append(k)
        if on_result is not None:
            on_result(k)
    return out


__all__ = ["BehaviorItem", "Knowledge", "KnowledgeAnswer", "KnowledgeProfile", "UserBehaviors", "check_profile",
           "fuse_knowledge", "input_hash", "knowledge_prompt", "render"]
