"""Anonymous sessions: recommendations for a list of items with no user id (the persona paper's privacy and
cold-start case).

:class:`SessionRecommender` loads the newest ``persona-sasrec`` run of a dataset from its checkpoint (the Run
record names it), infers the session's persona from its items alone through the inductive HDGI encoder, fuses
it into the backbone's session representation, re-ranks the top N by the session's intent with the weight
tuned on validation, and never recommends an item of the session itself. Loaded once, it answers each request
in milliseconds (``benchmarks/personas.py`` measures p50/p95).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .db.graph import Graph
from .errors import ConfigError, NotFound, TrainingError

MODEL = "persona-sasrec"
MAX_SESSION = 200


@dataclass
class SessionItem:
    item: str
    title: str | None
    rank: int
    score: float
    closest_session_item: str | None = None
    session_similarity: float | None = None


@dataclass
class SessionResult:
    run: str
    dataset: str
    session: list[str]
    persona: int | None
    persona_weight: float | None
    items: list[SessionItem]
    persona_info: dict[str, Any] | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class SessionRecommender:
    """A trained persona-aware model ready to serve anonymous sessions (see the module docstring)."""

    def __init__(self, run_id: str, dataset: str, model, item_ids: list[str], titles: dict[str, str] | None = None
                 ) -> None:
        self.run_id = run_id
        self.dataset = dataset
        self.model = model.eval()
        self.item_ids = list(item_ids)
        self.index = {iid: k for k, iid in enumerate(self.item_ids)}
        self.titles = titles or {}

    @classmethod
    def from_checkpoint(cls, path: str | Path, run_id: str = "checkpoint", titles: dict[str, str] | None = None
                        ) -> SessionRecommender:
        from .models.persona_rec import for_serving

        path = Path(path)
        if not path.is_file():
            raise NotFound(f"the checkpoint {path} of run {run_id} is not on this machine",
                           hint=f"train again here: kgp train {MODEL} -d DATASET")
        blob = torch.load(path, map_location="cpu", weights_only=False)
        if blob.get("model") != MODEL or "item_ids" not in blob:
            raise TrainingError(f"{path} is not a {MODEL} checkpoint with item ids (model {blob.get('model')!r})",
                                hint=f"train one with: kgp train {MODEL} -d DATASET")
        model = for_serving(blob["model_config"], blob["state_dict"])
        for k, v in (blob.get("eval_params") or {}).items():
            model.set_eval_param(k, v)
        return cls(run_id, blob.get("dataset", ""), model, blob["item_ids"], titles)

    @classmethod
    def load(cls, graph: Graph, dataset: str, run: str | None = None) -> SessionRecommender:
        """The newest ``persona-sasrec`` run of ``dataset`` (or run ``run``) with its checkpoint."""
        from .graph.export import item_titles
        from .graph.writeback import run_checkpoint

        run, ckpt = run_checkpoint(graph, dataset, MODEL, run)
        return cls.from_checkpoint(ckpt, run, item_titles(graph, dataset))

    # ------------------------------------------------------------------------------------------ requests
    def resolve(self, items: list[str]) -> list[int]:
        """Session item ids (raw or ``dataset:raw``) → indices; one-line errors for empty, unknown, foreign."""
        items = [i.strip() for i in items if i.strip()]
        if not items:
            raise ConfigError("--session is empty: give the session's items as ITEM,ITEM,…")
        if len(items) > MAX_SESSION:
            raise ConfigError(f"--session has {len(items)} items; at most {MAX_SESSION}")
        out = []
        for it in items:
            gid = it if it in self.index or ":" in it else f"{self.dataset}:{it}"
            if gid not in self.index:
                ds = gid.split(":", 1)[0]
                if ds != self.dataset:
                    raise NotFound(f"item {it!r} is not an item of {self.dataset!r} (it names dataset {ds!r})",
                                   hint="a session's items must all come from the dataset given with -d")
                raise NotFound(f"unknown item {it!r} in dataset {self.dataset!r}",
                               hint="pass raw item ids (as kgp recommend prints them) or full ids")
            out.append(self.index[gid])
        return out

    @torch.no_grad()
    def recommend(self, items: list[str], k: int = 10) -> SessionResult:
        """Top-``k`` items for an anonymous session (oldest item first)."""
        t0 = time.perf_counter()
        idx = self.resolve(items)
        m = self.model
        if not 1 <= k <= len(self.item_ids):
            raise ConfigError(f"--k must be between 1 and {len(self.item_ids)}, got {k}")
        seq = torch.tensor([idx[-m.max_seq_len:]], dtype=torch.long)
        h = m.backbone.last_hidden(seq)
        persona = weight = None
        if m.persona_on:
            p_vec = m.infer_persona(seq)
            h = m.fuse(h, p_vec)
            persona, weight = m.infer_persona_index(seq)
            persona, weight = int(persona[0]), float(weight[0])
        scores = m.rerank(h @ m.item_emb.weight[: m.num_items].t(), seq)[0]
        scores[torch.tensor(sorted(set(idx)))] = float("-inf")  # never the session's own items
        top = torch.topk(scores, k)
        out = []
        sims = None
        if getattr(m, "item_text", None) is not None:
            sims = m.item_text[top.indices] @ m.item_text[torch.tensor(idx)].t()  # [k, |session|]
        for r, (i, s) in enumerate(zip(top.indices.tolist(), top.values.tolist())):
            iid = self.item_ids[i]
            close = sim = None
            if sims is not None:
                j = int(sims[r].argmax())
                close, sim = self.item_ids[idx[j]], float(sims[r, j])
            out.append(SessionItem(iid, self.titles.get(iid), r + 1, float(s), close, sim))
        return SessionResult(self.run_id, self.dataset, [self.item_ids[i] for i in idx], persona, weight, out,
                             seconds=time.perf_counter() - t0)


def describe_persona(graph: Graph, result: SessionResult) -> dict[str, Any] | None:
    """The graph's Persona node behind the inferred persona (written by the same run), or ``None``."""
    from .graph.personas import persona_by_index

    if result.persona is None or result.persona < 0:
        return None
    return persona_by_index(graph, result.dataset, result.run, result.persona)


__all__ = ["SessionItem", "SessionRecommender", "SessionResult", "describe_persona"]
