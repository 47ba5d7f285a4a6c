"""One LLM question answered, checked, retried and cached: the loop the knowledge and session rounds share."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import ValidationError

from .cache import ResultCache, cache_key
from .llm import LLMBackend
from .schemas import InvalidAnswer


@dataclass(kw_only=True)
class Answered:
    """Provenance and outcome of one checked LLM answer (the knowledge and session rounds' results extend it)."""

    model: str | None = None
    prompt_version: str | None = None
    input_hash: str = ""
    error: str | None = None
    cached: bool = False
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None

    def record(self, res: "CheckedAnswer") -> Any:
        """Take ``res``'s attempts, cache flag and error; return its checked value (``None`` on failure)."""
        self.attempts, self.cached = res.attempts, res.cached
        if res.value is None:
            self.error = res.error
        return res.value


@dataclass
class CheckedAnswer:
    """``value``: what ``check`` returned for the first answer that passed (``None`` when none did);
    ``error``: the last failure; ``attempts``: questions asked; ``cached``: the value came from the cache."""

    value: Any = None
    error: str | None = None
    attempts: int = 0
    cached: bool = False


def ask_checked(backend: LLMBackend, template: Any, variables: dict[str, str], schema: type, check: Callable[[Any], Any],
                *, kind: str, version: str, field: str, retries: int, cache: ResultCache | None) -> CheckedAnswer:
    """Ask ``template`` with ``variables`` for a ``schema`` answer and pass it through ``check`` (which raises
    :class:`InvalidAnswer` to reject it). A cached answer (key: ``kind``, model, prompt ``version`` and the
    rendered messages) is checked like a fresh one; otherwise up to ``1 + retries`` questions are asked, and
    the first answer that passes is cached."""
    out = CheckedAnswer()
    msgs = template.format_messages(**variables)
    key = cache_key(kind, backend.model_id, version,
                    json.dumps([[m.type, m.content] for m in msgs], ensure_ascii=False))
    hit = cache.get(key) if cache is not None else None
    if hit is not None:
        try:  # a cached answer meets today's checks too
            out.value, out.cached = check(hit), True
            return out
        except InvalidAnswer:
            pass
    for attempt in range(retries + 1):
        out.attempts += 1
        try:
            raw = backend.ask(template, variables, schema, attempt, field=field)
            out.value = check(raw)
            if cache is not None:
                cache.put(key, raw, round=0, model=backend.model_id, prompt_version=version)
            out.error = None
            return out
        except (InvalidAnswer, ValidationError) as e:
            out.error = f"attempt {attempt + 1}: {' '.join(str(e).split())[:200]}"
    out.error = out.error or "no answer"
    return out
