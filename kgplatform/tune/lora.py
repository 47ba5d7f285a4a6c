r"""LoRA instruction tuning of a small local causal LM on ``kgp export --format instructions`` data.

LoRA (Hu et al., 2021) freezes the base weights :math:`W_0` and learns a low-rank update of chosen
projections,

.. math::
    h = W_0 x + \frac{\alpha}{r} B A x, \qquad A \in \mathbb{R}^{r \times d_{in}},\; B \in \mathbb{R}^{d_{out} \times r},

with :math:`B` initialised to zero (the tuned model starts as the base). The loss is the mean token
cross-entropy of the answer (the ``output`` title and the end-of-turn token) given the prompt; prompt and
padding tokens carry no loss. Training draws batches from a seeded permutation of the examples (a new one each
epoch) and runs ``steps`` AdamW updates of the adapter only.

:func:`tune` saves the adapter (``adapter_config.json`` + ``adapter_model.safetensors``, PEFT's format) and
``tune.json`` (base, data file hash, options, loss curve, probe loss before/after, examples/s, peak memory)
into a temporary folder renamed to ``out`` at the end, so a failed run leaves nothing half-written.
"""
from __future__ import annotations

import json
import math
import os
import platform
import resource
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, EnvironmentMissing, TrainingError
from ..graph.instructions import read_instructions
from .base import Base, encode_answer, encode_prompt, file_sha256, prompt_text

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
META = "tune.json"


@dataclass
class TuneConfig:
    """Options of one tuning run (recorded in ``tune.json``)."""

    steps: int = 100
    lr: float = 2e-4
    batch_size: int = 4
    max_length: int = 384
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    with_candidates: bool = False
    seed: int = 2024
    probe: int = 16
    log_every: int = 10
    max_seconds: float | None = None  # stop after the step that passes this much training time


    def check(self) -> None:
        for name in ("steps", "batch_size", "max_length", "r", "alpha"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive number, got {self.lr}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise ConfigError("target-modules: name at least one projection (e.g. q_proj,v_proj)")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ConfigError(f"max time must be positive, got {self.max_seconds} s")
        if self.probe < 0:
            raise ConfigError(f"probe must be >= 0, got {self.probe}")


@dataclass
class TuneResult:
    out: Path
    meta: dict[str, Any] = field(default_factory=dict)


def _peft():
    try:
        import peft
    except ImportError as e:
        raise EnvironmentMissing("LoRA tuning needs the peft package", hint="pip install -e . (peft is a dependency)") from e
    return peft


def encode_example(tok, row: dict, *, with_candidates: bool, max_length: int) -> tuple[list[int], int]:
    """``(ids, n_prompt)``: prompt then answer tokens; the prompt is cut from the left to fit ``max_length``."""
    prompt = encode_prompt(tok, prompt_text(row, with_candidates=with_candidates))
    answer = encode_answer(tok, row["output"])
    if len(answer) >= max_length:
        raise ConfigError(f"max-length {max_length} leaves no room for a prompt (an answer has {len(answer)} tokens)")
    keep = max_length - len(answer)
    if len(prompt) > keep:
        prompt = prompt[-keep:]
    return prompt + answer, len(prompt)


def collate(examples: list[tuple[list[int], int]], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (``-100`` on prompt and padding)."""
    n = max(len(ids) for ids, _ in examples)
    ids = torch.full((len(examples), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), n), dtype=torch.long)
    labels = torch.full((len(examples), n), -100, dtype=torch.long)
    for b, (seq, n_prompt) in enumerate(examples):
        ids[b, :len(seq)] = torch.tensor(seq)
        mask[b, :len(seq)] = 1
        labels[b, n_prompt:len(seq)] = torch.tensor(seq[n_prompt:])
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def answer_loss(model, batch: dict[str, torch.Tensor], reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of the answer tokens only; the output layer runs on answer positions alone (on a short
    title after a ~130-token prompt that skips most of its cost)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = inner.get_decoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    labels = batch["labels"][:, 1:]
    keep = labels != -100
    logits = inner.get_output_embeddings()(hidden[:, :-1][keep]).float()
    return torch.nn.functional.cross_entropy(logits, labels[keep], reduction=reduction)


@torch.no_grad()
def mean_loss(model, tok, encoded: list[tuple[list[int], int]], device: torch.device, batch_size: int = 8) -> float:
    """Token-weighted mean answer cross-entropy of ``encoded`` examples (eval mode, no dropout)."""
    was = model.training
    model.eval()
    total, count = 0.0, 0
    for s in range(0, len(encoded), batch_size):
        batch = collate(encoded[s:s + batch_size], tok.pad_token_id, device)
        total += float(answer_loss(model, batch, reduction="sum"))
        count += int((batch["labels"][:, 1:] != -100).sum())
    model.train(was)
    return total / max(count, 1)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB)."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024.0 if platform.system() != "Darwin" else kb / 2 ** 20


def attach_lora(base: Base, cfg: TuneConfig):
    peft = _peft()
    names = {n.rsplit(".", 1)[-1] for n, _ in base.model.named_modules()}
    missing = [t for t in cfg.target_modules if t not in names]
    if missing:
        raise ConfigError(f"target-modules {', '.join(missing)} are not modules of {base.model_id}",
                          hint="e.g. q_proj,k_proj,v_proj,o_proj (attention) or up_proj,down_proj (MLP)")
    lcfg = peft.LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                           target_modules=list(cfg.target_modules), task_type="CAUSAL_LM")
    return peft.get_peft_model(base.model, lcfg)


def tune(base: Base, data_file: Path, out: Path, cfg: TuneConfig, *, dataset: str = "",
         progress=None) -> TuneResult:
    """LoRA-tune ``base`` on the examples of ``data_file`` (a ``train.jsonl``) and save the adapter to ``out``.

    ``base.model`` is wrapped in place (the returned adapter stays attached to it). ``progress(step, loss)`` is
    called every ``cfg.log_every`` steps.
    """
    cfg.check()
    data_file = Path(data_file)
    if not data_file.is_file():
        raise ConfigError(f"{data_file}: no such instruction file",
                          hint="kgp export --format instructions -d DATASET --out DIR writes train.jsonl")
    rows = read_instructions(data_file)
    if not rows:
        raise ConfigError(f"{data_file}: no examples")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"--out {out} exists and is not empty", hint="choose a new folder")
    tok, dev = base.tokenizer, base.device
    torch.manual_seed(cfg.seed)
    encoded = [encode_example(tok, r, with_candidates=cfg.with_candidates, max_length=cfg.max_length) for r in rows]
    probe = encoded[:cfg.probe]
    model = attach_lora(base, cfg)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    probe_before = mean_loss(model, tok, probe, dev) if probe else None
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed)
    order: list[int] = []
    losses: list[float] = []
    tokens = 0
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    model.train()
    t0 = time.perf_counter()
    step = 0
    for step in range(1, cfg.steps + 1):
        if len(order) < cfg.batch_size:
            order += torch.randperm(len(encoded), generator=gen).tolist()
        idx, order = order[:cfg.batch_size], order[cfg.batch_size:]
        batch = collate([encoded[i] for i in idx], tok.pad_token_id, dev)
        loss = answer_loss(model, batch)
        if not torch.isfinite(loss):
            raise TrainingError(f"tuning diverged at step {step} (loss {float(loss)})", hint="lower --lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(round(float(loss.detach()), 5))
        tokens += int(batch["attention_mask"].sum())
        if progress is not None and (step % cfg.log_every == 0 or step == cfg.steps):
            progress(step, sum(losses[-cfg.log_every:]) / len(losses[-cfg.log_every:]))
        if cfg.max_seconds is not None and time.perf_counter() - t0 > cfg.max_seconds:
            break
    seconds = time.perf_counter() - t0
    model.eval()
    probe_after = mean_loss(model, tok, probe, dev) if probe else None
    meta = {
        "dataset": dataset,
        "base": base.model_id,
        "base_path": str(base.path),
        "data_file": str(data_file.resolve()),
        "data_sha256": file_sha256(data_file),
        "examples": len(rows),
        "config": {**asdict(cfg), "target_modules": list(cfg.target_modules)},
        "trainable_parameters": trainable,
        "device": str(dev),
        "steps": step,
        "stopped_by_time": step < cfg.steps,
        "epochs": round(step * cfg.batch_size / len(rows), 3),
        "seconds": round(seconds, 2),
        "examples_per_s": round(step * cfg.batch_size / seconds, 3),
        "tokens_per_s": round(tokens / seconds, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_cuda_mb": round(torch.cuda.max_memory_allocated(dev) / 2 ** 20, 1) if dev.type == "cuda" else None,
        "loss_curve": losses,
        "probe_examples": len(probe),
        "probe_loss_before": probe_before,
        "probe_loss_after": probe_after,
        "versions": _versions(),
    }
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(str(tmp))
        (tmp / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if out.exists():
            out.rmdir()
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.replace(out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ConfigError(f"--out {out}: cannot write there ({e.strerror or e})") from None
    base.model = model
    return TuneResult(out, meta)


def _versions() -> dict[str, str]:
    import transformers

    peft = _peft()
    return {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
            "python": platform.python_version(), "threads": str(torch.get_num_threads()),
            "cpu_count": str(os.cpu_count())}


def read_meta(adapter: Path) -> dict[str, Any]:
    adapter = Path(adapter)
    if not (adapter / "adapter_config.json").is_file():
        raise ConfigError(f"{adapter}: not a LoRA adapter folder (no adapter_config.json)",
                          hint="kgp tune … --out DIR writes one")
    try:
        return json.loads((adapter / META).read_text(encoding="utf-8")) if (adapter / META).is_file() else {}
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{adapter / META}: cannot read it ({e})") from None


def load_adapter(base: Base, adapter: Path) -> dict[str, Any]:
    """Attach the saved adapter at ``adapter`` to ``base.model`` (in place, eval mode); returns its ``tune.json``."""
    meta = read_meta(adapter)
    if meta.get("base") and meta["base"] != base.model_id:
        raise ConfigError(f"{adapter} was tuned on {meta['base']}, not on {base.model_id}",
                          hint=f"pass --base matching the adapter ({meta.get('base_path', meta['base'])})")
    peft = _peft()
    try:
        model = peft.PeftModel.from_pretrained(base.model, str(adapter))
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ConfigError(f"{adapter}: cannot load the adapter ({' '.join(str(e).split())[:300]})") from e
    base.model = model.to(base.device).eval()
    return meta


__all__ = ["DEFAULT_TARGETS", "TuneConfig", "TuneResult", "attach_lora", "collate", "encode_example", "load_adapter",
           "mean_loss", "peak_rss_mb", "read_meta", "tune"]
