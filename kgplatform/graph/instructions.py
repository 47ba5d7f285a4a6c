"""Instruction data for tuning an LLM recommender on fused knowledge (``kgp export --format instructions``).

One JSONL file per phase (``train.jsonl``, ``valid.jsonl``, ``test.jsonl``), one example per user, each line::

    {"instruction": "...", "input": "...", "output": "<title>",
     "user": "<user id>", "phase": "train|valid|test", "target": "<item id>", "candidates": ["<item id>", ...]}

``input`` holds the user's fused knowledge (``(:Knowledge)``, written by ``kgp extract --round knowledge``;
"(none yet)" without it), the last :data:`RECENT` items of the prefix before the target, and the candidate
titles, numbered. ``output`` is the target's title; ``target`` and ``candidates`` make the file usable as a
re-ranking benchmark.

Prefixes and candidates follow the leave-one-out split:

- **train**: the target is the user's last *training* item; its prefix the training items before it; the
  candidates are the target and ``train_candidates - 1`` items the user never interacted with (seeded draw).
- **valid / test**: the target and prefix of the split (test's prefix includes the validation item, as in
  evaluation); the candidates are the target plus the **stored 99 negatives** of the ``kgp`` convention (the
  same file every model is scored on), shuffled with a per-user seed.

The knowledge itself comes from training interactions only; a validation or test target is never in it
(``tests/graph/test_instructions.py``). A training example's target, though, is the user's last *training* item,
so the default (training-scope) profile may name it: a cue tuning can learn that points, at test time, at items
already taken. ``train_knowledge`` (``kgp export --train-knowledge tuning``) gives the training examples the
**tuning-scope** profiles instead (``kgp extract --round knowledge --scope tuning``), fused from the prefix before
the example's target, so a training example is shown what a test example is: knowledge of the past only. A user
without a tuning-scope profile then shows "(none yet)" in their training example.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ..data import leave_one_out, sample_negatives
from ..data.recdata import RecData
from ..data.split import Split
from ..errors import ConfigError
from ..db.graph import Graph

RECENT = 10
INSTRUCTION = ("You recommend items. From what is known about the user and the items they took most recently, "
               "pick the one candidate they will take next. Answer with its title.")
FIELDS = ("instruction", "input", "output", "user", "phase", "target", "candidates")
KNOWLEDGE_LINE = "User knowledge: "
NO_KNOWLEDGE = "(none yet)"


def _input(knowledge: str | None, recent: list[str], candidates: list[str]) -> str:
    knowledge = " ".join((knowledge or "").split())  # one line: the ablation below replaces the first line
    lines = [f"{KNOWLEDGE_LINE}{knowledge or NO_KNOWLEDGE}",
             "Recent items: " + ("; ".join(recent) if recent else "(none)"),
             "Candidates:"]
    lines += [f"{k + 1}. {t}" for k, t in enumerate(candidates)]
    return "\n".join(lines)


def _train_negatives(data: RecData, u: int, n: int, gen: torch.Generator) -> list[int]:
    seen = set(data.sequence(u).tolist())
    out: list[int] = []
    if n <= 0 or data.num_items - len(seen) <= 0:
        return out
    while len(out) < min(n, data.num_items - len(seen)):
        for i in torch.randint(data.num_items, (2 * n,), generator=gen).tolist():
            if i not in seen and i not in out:
                out.append(i)
                if len(out) == n:
                    break
    return out


def instruction_examples(data: RecData, titles: dict[str, str], knowledge: dict[str, str], *,
                         split: Split | None = None, seed: int = 2024, train_candidates: int = 20,
                         cache_dir: Path | None = None,
                         train_knowledge: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """The examples of every phase (see the module docstring). ``knowledge`` maps a user id to the text shown in
    validation and test examples, and in training examples too unless ``train_knowledge`` is given."""
    if train_candidates < 2:
        raise ConfigError(f"train_candidates must be >= 2, got {train_candidates}")
    split = split or leave_one_out(data)
    cands = sample_negatives(split, data.checksum(), num_negatives=99, seed=seed, cache_dir=cache_dir)
    title = lambda i: titles.get(data.item_ids[i]) or data.item_ids[i].split(":", 1)[-1]  # noqa: E731
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, list[dict[str, Any]]] = {"train": [], "valid": [], "test": []}

    def example(phase: str, u: int, prefix: list[int], target: int, pool: list[int]) -> dict[str, Any]:
        order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed * 7919 + u)).tolist()
        shown = [pool[k] for k in order]
        uid = data.user_ids[u]
        known = train_knowledge if phase == "train" and train_knowledge is not None else knowledge
        return {"instruction": INSTRUCTION,
                "input": _input(known.get(uid), [title(i) for i in prefix[-RECENT:]], [title(i) for i in shown]),
                "output": title(target), "user": uid, "phase": phase, "target": data.item_ids[target],
                "candidates": [data.item_ids[i] for i in shown]}

    for u in range(data.num_users):
        n_train = int(split.train_len[u])
        if n_train < 2:
            continue
        seq = data.sequence(u).tolist()
        target = seq[n_train - 1]
        out["train"].append(example("train", u, seq[:n_train - 1], target,
                                    [target, *_train_negatives(data, u, train_candidates - 1, gen)]))
    for phase in ("valid", "test"):
        users = split.users(phase)
        if users.numel() == 0:
            continue
        targets = split.targets(phase, users).tolist()
        lens = split.history_len(phase, users).tolist()
        negs = cands.for_users(phase, users).tolist()
        for u, t, n, ng in zip(users.tolist(), targets, lens, negs):
            seq = data.sequence(u).tolist()
            out[phase].append(example(phase, u, seq[:n], t, [t, *ng]))
    return out


def user_knowledge_texts(graph: Graph, dataset: str, scope: str = "training") -> dict[str, str]:
    """User id → fused knowledge text of a scope (``training`` or ``tuning``, see :mod:`kgplatform.knowledge`)."""
    if scope not in ("training", "tuning"):
        raise ConfigError(f"knowledge scope must be training or tuning, got {scope!r}")
    query = "knowledge/user_knowledge" if scope == "training" else "knowledge/user_tuning_knowledge"
    return {r["user"]: r["text"] for r in graph.read(query, dataset=dataset) if r["text"]}


def example_knowledge(row: dict[str, Any]) -> str | None:
    """The fused knowledge an example's input shows, or None where it says there is none."""
    first = row["input"].partition("\n")[0]
    if not first.startswith(KNOWLEDGE_LINE):
        return None
    text = first[len(KNOWLEDGE_LINE):].strip()
    return None if text in ("", NO_KNOWLEDGE) else text


def without_knowledge(row: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` whose input says the user has no knowledge, all else equal: the ablation that isolates
    what the knowledge line adds to a prompt."""
    first, sep, rest = row["input"].partition("\n")
    if not first.startswith(KNOWLEDGE_LINE):
        return dict(row)
    return {**row, "input": f"{KNOWLEDGE_LINE}{NO_KNOWLEDGE}{sep}{rest}"}


def save_instructions(examples: dict[str, list[dict[str, Any]]], out: Path) -> list[Path]:
    """``train.jsonl``, ``valid.jsonl``, ``test.jsonl`` under ``out``, each written whole then renamed."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for phase, rows in examples.items():
        path = out / f"{phase}.jsonl"
        tmp = path.with_suffix(".jsonl.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        tmp.replace(path)
        files.append(path)
    return files


def read_instructions(path: Path) -> list[dict[str, Any]]:
    """Read and validate a JSONL file of examples; :class:`ConfigError` names the first bad line."""
    rows = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read it ({e})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}:{n}: not JSON ({e.msg})") from None
        if not isinstance(row, dict) or any(k not in row for k in FIELDS):
            raise ConfigError(f"{path}:{n}: an example needs the fields {', '.join(FIELDS)}")
        if not all(isinstance(row[k], str) for k in FIELDS[:6]) or not isinstance(row["candidates"], list):
            raise ConfigError(f"{path}:{n}: instruction/input/output/user/phase/target must be strings, "
                              "candidates a list")
        if row["target"] not in row["candidates"]:
            raise ConfigError(f"{path}:{n}: the target is not among the candidates")
        rows.append(row)
    return rows


__all__ = ["FIELDS", "INSTRUCTION", "KNOWLEDGE_LINE", "NO_KNOWLEDGE", "example_knowledge", "instruction_examples",
           "read_instructions", "save_instructions", "user_knowledge_texts", "without_knowledge"]
