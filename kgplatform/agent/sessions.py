"""Session intent inference (LLM4SBR, Qiao et al., stage 1): the LLM reads a prefix of a user's behaviour as a
numbered list of item titles and guesses one item the user is after, from two views.

* ``long``: the user's whole history before the target (its last :data:`LONG_ITEMS` titles, oldest first);
* ``short``: the current session's items before the target (its last :data:`SHORT_ITEMS`); when the target
  opens a new session, the last :data:`SHORT_ITEMS` items before it (the user's most recent behaviour).

The prompt has the paper's shape (Figure 2): a numbered ``title`` list, "guess an item the user is interested
in", answer a short name. The answer is a bounded schema (:class:`GuessAnswer`: one name of at most 60
characters — the llama.cpp grammar enforces it), cleaned and checked (letters, not the few generic words), then
cached (the extraction cache, keyed by model, prompt version and the rendered prompt); an unusable answer is
retried (``retries`` times, sampled), then reported as failed.

What a prompt holds is decided by :class:`PrefixView` alone (built by :mod:`kgplatform.session_intents` from
the items *before* the target), so the target and anything after it never reach the LLM.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Annotated

from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel, StringConstraints

from .cache import ResultCache
from .checked import Answered, ask_checked
from .llm import LLMBackend
from .schemas import GENERIC, InvalidAnswer, clean_name, intent_key, title_variants

SESSIONS_NAME = "sessions-v1"
VIEWS = ("long", "short")
#: titles shown per view (the long view is cut to its most recent part to fit a small context)
LONG_ITEMS = 20
SHORT_ITEMS = 5
TITLE_CHARS = 60
#: an answer: one name, at most 60 characters, starting with a letter or digit
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 '&,.:!?-]{0,59}$"

_Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


class GuessAnswer(BaseModel):
    """The one item the user is most likely interested in next, by its short name."""

    item: _Name


@dataclass(frozen=True)
class PrefixView:
    """What one prompt shows: ``titles`` oldest first (already cut to the view's length)."""

    user: str
    prefix_end: int  # position of the target in the user's sequence; the prefix is seq[:prefix_end]
    view: str
    titles: tuple[str, ...]
    items: tuple[str, ...] = ()  # the item ids behind ``titles``
    anchor: str = ""  # the node the result hangs off: the user (long) or the target's session (short)
    phase: str = "train"  # train | valid | test
    seen: frozenset[str] = frozenset()  # every item id of the prefix (kept out of the localisation)


@dataclass
class Guess(Answered):
    """A validated guess for one prefix view, or the reason there is none (``error``)."""

    prefix: PrefixView
    text: str = ""
    echo: bool = False  # the answer names one of the titles shown


_SYSTEM = "You are a recommender system. You read the items a user interacted with and guess what they want next."
_ASK = {
    "long": "The user has interacted with the following items, oldest first:",
    "short": "In the current session, the user interacted with the following items, in order:",
}
_GUESS = ("Please guess an item the user is interested in. Answer with the item's short name only, as JSON "
          '{{"item": "..."}}.')


def _short(text: str, n: int = TITLE_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"


def render(p: PrefixView) -> str:
    """The numbered title list of one prefix view."""
    return "\n".join(f"{k}. {_short(t)}" for k, t in enumerate(p.titles, 1)) or "(nothing yet)"


def session_messages(view: str) -> list[tuple[str, str]]:
    return [("system", _SYSTEM), ("human", _ASK[view] + "\n{titles}\n" + _GUESS)]


def session_prompt(view: str) -> tuple[ChatPromptTemplate, str]:
    """The template of a view and its version (``sessions-v1.<view>.<hash of messages and limits>``)."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}")
    msgs = session_messages(view)
    digest = hashlib.sha256(json.dumps([msgs, NAME_PATTERN, LONG_ITEMS, SHORT_ITEMS, TITLE_CHARS]).encode()
                            ).hexdigest()[:6]
    return ChatPromptTemplate.from_messages(msgs), f"{SESSIONS_NAME}.{view}.{digest}"


def input_hash(p: PrefixView) -> str:
    return hashlib.sha256(f"{p.view}\n{render(p)}".encode("utf-8")).hexdigest()[:16]


def check_guess(raw: object, p: PrefixView) -> tuple[str, bool]:
    """The cleaned name of an answer and whether it repeats a shown title; :class:`InvalidAnswer` when it is
    empty, has no letter, or is a generic word."""
    if not isinstance(raw, str):
        raise InvalidAnswer("the answer is not a name")
    name = _short(clean_name(raw))
    key = intent_key(name)
    if not key or not any(c.isalpha() for c in key):
        raise InvalidAnswer(f"no usable name ({raw!r})")
    if key in GENERIC:
        raise InvalidAnswer(f"a generic word, not an item ({raw!r})")
    shown: set[str] = set()
    for t in p.titles:
        shown |= title_variants(t)
    return name, bool(title_variants(name) & shown)


def guess_intents(backend: LLMBackend, prefixes: list[PrefixView], *, cache: ResultCache | None = None,
                  retries: int = 2, on_result=None) -> list[Guess]:
    """One :class:`Guess` per prefix view (see the module docstring). ``on_result(g)`` is called as each is done
    (the caller writes it at once, so a killed run keeps what it finished)."""
    out: list[Guess] = []
    for p in prefixes:
        template, version = session_prompt(p.view)
        variables = {"titles": render(p)}
        g = Guess(p, model=backend.model_id, prompt_version=version, input_hash=input_hash(p))
        res = ask_checked(backend, template, variables, GuessAnswer, lambda raw, p=p: check_guess(raw, p),
                          kind="sessions", version=version, field="item", retries=retries, cache=cache)
        value = g.record(res)
        if value is not None:
            g.text, g.echo = value
        out.append(g)
        if on_result is not None:
            on_result(g)
    return out


__all__ = ["Guess", "GuessAnswer", "LONG_ITEMS", "PrefixView", "SHORT_ITEMS", "VIEWS", "check_guess",
           "guess_intents", "input_hash", "render", "session_prompt"]
