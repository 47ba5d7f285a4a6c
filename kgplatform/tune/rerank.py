r"""The (tuned) LLM as a re-ranker over an example's stored candidates, and its evaluation.

Each candidate :math:`c` with answer tokens :math:`y_1..y_L` (title, then end-of-turn) is scored by the model's
log-likelihood of it as the answer to the user's prompt :math:`x`:

.. math::
    s_{\mathrm{sum}}(c) = \sum_{t=1}^{L} \log p(y_t \mid x, y_{<t}), \qquad
    s_{\mathrm{mean}}(c) = s_{\mathrm{sum}}(c) / L

(``mean`` removes the length penalty of long titles; the choice is made on validation users). The prompt is
run once; its key/value cache is repeated over a chunk of candidates, which are then run together, right-padded
(a causal model never attends to the padding after a token, so it changes no score). :func:`naive_scores` runs
every prompt + candidate sequence whole, the reference the tests compare with.

:func:`evaluate_rerank` ranks the target among an example's candidates (for validation/test: the target plus
the **stored 99 negatives** every model is scored on) and returns per-user HR@k, NDCG@k and MRR from
:mod:`kgplatform.eval.metrics` (ties averaged), so intervals and paired differences come from
:mod:`kgplatform.eval.stats`.
"""
from __future__ import annotations

import copy
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import torch

from ..errors import ConfigError
from ..eval.metrics import rank_counts, rank_metrics
from ..eval.stats import bootstrap_interval, paired_difference
from ..graph.instructions import example_knowledge, without_knowledge
from .base import Base, candidate_titles, encode_answer, encode_prompt, prompt_text

AGGREGATES = ("mean", "sum")
ABLATED = ":no_knowledge"  # suffix of a model's run on the same rows with the knowledge line blanked
HR_KS = (1, 5, 10)
NDCG_KS = (10,)


def _cache_kw(model) -> str:
    """``cache`` (transformers >= 5.2x) or ``past_key_values`` (older), whichever the model's forward takes."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"


def _answers(tok, titles: list[str]) -> list[list[int]]:
    return [encode_answer(tok, t) for t in titles]


@torch.no_grad()
def candidate_scores(base: Base, row: dict, *, with_candidates: bool = False, chunk: int = 50,
                     max_prompt: int = 1024) -> dict[str, torch.Tensor]:
    """``{"sum": [C], "mean": [C]}`` log-likelihood scores of ``row``'s candidates (shared prompt cache)."""
    model, tok, dev = base.model, base.tokenizer, base.device
    prompt = encode_prompt(tok, prompt_text(row, with_candidates=with_candidates))[-max_prompt:]
    answers = _answers(tok, candidate_titles(row))
    out = model(input_ids=torch.tensor([prompt], device=dev), use_cache=True)
    first = out.logits[0, -1].float().log_softmax(-1)
    cache = getattr(out, "past_key_values", None) or getattr(out, "cache", None)
    p = len(prompt)
    sums = torch.empty(len(answers), dtype=torch.float64)
    lens = torch.tensor([len(a) for a in answers], dtype=torch.float64)
    for s in range(0, len(answers), chunk):
        part = answers[s:s + chunk]
        b, n = len(part), max(len(a) for a in part)
        ids = torch.full((b, n), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((b, n), dtype=torch.bool)
        for k, a in enumerate(part):
            ids[k, :len(a)] = torch.tensor(a)
            mask[k, :len(a)] = True
        ids, mask = ids.to(dev), mask.to(dev)
        lp0 = first[ids[:, 0]]
        if n > 1:
            c = copy.deepcopy(cache)
            c.batch_repeat_interleave(b)
            pos = torch.arange(p, p + n - 1, device=dev).expand(b, n - 1)
            attn = torch.ones((b, p + n - 1), dtype=torch.long, device=dev)
            logits = model(input_ids=ids[:, :-1], attention_mask=attn, position_ids=pos, use_cache=True,
                           **{_cache_kw(model): c}).logits.float()
            lp = logits.log_softmax(-1).gather(2, ids[:, 1:, None]).squeeze(2)
            lp = torch.where(mask[:, 1:], lp, torch.zeros_like(lp))
            total = lp0 + lp.sum(1)
        else:
            total = lp0
        sums[s:s + b] = total.double().cpu()
    return {"sum": sums, "mean": sums / lens}


@torch.no_grad()
def naive_scores(base: Base, row: dict, *, with_candidates: bool = False) -> dict[str, torch.Tensor]:
    """Reference for :func:`candidate_scores`: each prompt + candidate run whole, one at a time."""
    model, tok, dev = base.model, base.tokenizer, base.device
    prompt = encode_prompt(tok, prompt_text(row, with_candidates=with_candidates))
    sums, lens = [], []
    for a in _answers(tok, candidate_titles(row)):
        ids = torch.tensor([prompt + a], device=dev)
        lp = model(input_ids=ids).logits[0, len(prompt) - 1:-1].float().log_softmax(-1)
        sums.append(float(lp.gather(1, torch.tensor(a, device=dev)[:, None]).sum()))
        lens.append(len(a))
    s = torch.tensor(sums, dtype=torch.float64)
    return {"sum": s, "mean": s / torch.tensor(lens, dtype=torch.float64)}


@dataclass
class RerankEval:
    """Per-user metrics (float64 ``[users]`` per name) for each score aggregate, plus timing."""

    users: list[str]
    metrics: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    seconds_per_user: float = 0.0
    candidates: int = 0

    def means(self, agg: str) -> dict[str, float]:
        return {k: float(v.mean()) for k, v in self.metrics[agg].items()}


def select_rows(rows: list[dict], n: int | None, seed: int = 0) -> list[dict]:
    """``n`` examples drawn without replacement with a seeded generator (all when ``n`` is None or too big),
    kept in file order."""
    if n is None or n >= len(rows):
        return list(rows)
    if n < 1:
        raise ConfigError(f"users must be >= 1, got {n}")
    pick = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:n].sort().values.tolist()
    return [rows[i] for i in pick]


def evaluate_rerank(base: Base, rows: list[dict], *, with_candidates: bool = False, chunk: int = 50,
                    progress=None) -> RerankEval:
    """Rank each row's target among its candidates by both aggregates; per-user metrics and seconds per user."""
    if not rows:
        raise ConfigError("no examples to evaluate")
    g = {a: [] for a in AGGREGATES}
    e = {a: [] for a in AGGREGATES}
    t0 = time.perf_counter()
    for k, row in enumerate(rows, 1):
        sc = candidate_scores(base, row, with_candidates=with_candidates, chunk=chunk)
        t = torch.tensor([row["candidates"].index(row["target"])])
        for a in AGGREGATES:
            ng, nt = rank_counts(sc[a][None, :], t)
            g[a].append(ng)
            e[a].append(nt)
        if progress is not None:
            progress(k, len(rows))
    seconds = time.perf_counter() - t0
    res = RerankEval([r["user"] for r in rows], seconds_per_user=seconds / len(rows),
                     candidates=len(rows[0]["candidates"]))
    for a in AGGREGATES:
        res.metrics[a] = rank_metrics(torch.cat(g[a]), torch.cat(e[a]), hr_ks=HR_KS, ndcg_ks=NDCG_KS, mrr_ks=())
    return res


def rows_with_knowledge(rows: list[dict]) -> list[dict]:
    """The examples whose prompt shows fused knowledge (the users ``kgp extract --round knowledge`` reached)."""
    return [r for r in rows if example_knowledge(r) is not None]


def evaluate_with_ablation(base: Base, rows: list[dict], name: str, *, knowledge_ablation: bool = False,
                           with_candidates: bool = False, chunk: int = 50,
                           progress: Callable[[str, int, int], None] | None = None) -> dict[str, RerankEval]:
    """``{name: eval}``, plus ``{name + ABLATED: eval}`` of the same rows, in the same order, with every
    knowledge line replaced by "(none yet)" when ``knowledge_ablation`` (what the knowledge adds, paired by user).
    ``progress(run name, users done, users)`` is called after each user."""
    if knowledge_ablation and not rows_with_knowledge(rows):
        raise ConfigError("knowledge ablation: no example shows fused knowledge, so both runs would be equal",
                          hint="kgp extract --round knowledge -d DATASET, then kgp export --format instructions")
    runs = {name: rows}
    if knowledge_ablation:
        runs[name + ABLATED] = [without_knowledge(r) for r in rows]
    return {n: evaluate_rerank(base, rs, with_candidates=with_candidates, chunk=chunk,
                               progress=None if progress is None else partial(progress, n))
            for n, rs in runs.items()}


def rerank_report(runs: dict[str, RerankEval], *, score: str, seed: int = 0) -> dict:
    """Intervals per run and the paired differences a re-ranking comparison reports (95 % bootstrap over users):
    ``tuned_minus_untuned`` when both ran, and ``knowledge_minus_none[model]`` (with − without the knowledge
    line) for each model scored both ways."""
    if score not in AGGREGATES:
        raise ConfigError(f"unknown score {score!r} (mean|sum)")
    doc: dict = {"models": {name: {"seconds_per_user": round(r.seconds_per_user, 3),
                                   **{k: bootstrap_interval(v.numpy(), seed=seed).to_dict()
                                      for k, v in r.metrics[score].items()}}
                            for name, r in runs.items()}}

    def diff(a: str, b: str) -> dict:
        return {k: paired_difference(runs[a].metrics[score][k].numpy(), runs[b].metrics[score][k].numpy(),
                                     names=(a, b), seed=seed).to_dict()
                for k in runs[a].metrics[score]}

    if "tuned" in runs and "untuned" in runs:
        doc["tuned_minus_untuned"] = diff("tuned", "untuned")
    ablated = {n: n + ABLATED for n in runs if n + ABLATED in runs}
    if ablated:
        doc["knowledge_minus_none"] = {n: diff(n, a) for n, a in ablated.items()}
    return doc


__all__ = ["ABLATED", "AGGREGATES", "RerankEval", "candidate_scores", "evaluate_rerank",
           "evaluate_with_ablation", "naive_scores", "rerank_report", "rows_with_knowledge", "select_rows"]
