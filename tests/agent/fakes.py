"""A deterministic chat model for the extra test seam (the real model is tested in test_extract_llm.py)."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict

from kgplatform.agent.llm import LLMBackend


class ScriptedChat(BaseChatModel):
    """Replies ``script(last_human_message_text, call_index)``; a raised exception propagates."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    script: Any
    prompts: list = []

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs: Any) -> ChatResult:
        last = messages[-1].content
        self.prompts.append(last)
        text = self.script(last, len(self.prompts) - 1)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    @property
    def _llm_type(self) -> str:
        return "scripted"


def scripted_backend(script: Callable[[str, int], str], model_id: str = "fake-llm") -> LLMBackend:
    return LLMBackend(ScriptedChat(script=script, prompts=[]), model_id, "text")


def title_of(prompt: str) -> str:
    """First line after the description header."""
    m = re.search(r"### (?:Item Description|User Profile):\n(.*)", prompt)
    return m.group(1).strip() if m else ""


def options_of(prompt: str) -> list[str]:
    """The option lines between ``### Options:`` and the question (one option per line, prompt r2-v2)."""
    m = re.search(r"### Options:\n(.*?)\nWhat are the intents", prompt, re.DOTALL)
    return [line.strip() for line in m.group(1).splitlines() if line.strip()] if m else []
