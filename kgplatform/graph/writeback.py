"""Write a training run back into the graph: a ``(:Run)`` node, learned embeddings as node properties
(``emb_<model>``, tagged ``emb_<model>_run``) with cosine vector indexes, and the top-k recommendations as
``(:User)-[:RECOMMENDED {rank, score, run, model}]->(:Item)``. Where the model's score is a function of
the stored vectors (dot-product models, IKGR's Eq. 9–11) the run also records how to recompute it
(``scoreKind``, and IKGR's λ, intent sets and intent vectors) so ``kgp explain`` can split it into terms.

Everything is written in **one** transaction: a failed (or killed) write-back leaves no half-written properties
or edges (and the previous run's embeddings and recommendations stay in place). The transaction first takes the
dataset's write lock, so two write-backs on one dataset at once run one after the other and the newest run's
recommendations are the only ones left. The indexes are created afterwards (schema changes cannot share a
transaction with data writes); creating them is idempotent, also when two write-backs create one at once.
"""
from __future__ import annotations

import datetime as _dt
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from .. import schema
from ..data import RecData
from ..db.graph import Graph
from ..errors import NotFound, QueryError


class TrainResult(Protocol):
    """What write-back needs of a finished run (``kgplatform.train.TrainResult`` provides it). A protocol,
    so the graph layer does not import the training layer."""

    run_id: str
    model_name: str
    dataset: str
    seed: int
    device: str
    data_checksum: str
    best_epoch: int
    epochs_run: int
    seconds_per_epoch: float
    metrics: dict
    model: Any
    user_embeddings: torch.Tensor | None
    item_embeddings: torch.Tensor | None

    def to_record(self) -> dict: ...

    def recommend(self, user_idx: Any, k: int = 10, exclude_seen: bool = True) -> tuple[torch.Tensor, torch.Tensor]: ...

BATCH = 2000


@dataclass
class WriteBackReport:
    run_id: str
    users: int
    items: int
    recommendations: int
    seconds: float


def _flat_metrics(metrics: dict) -> dict[str, float]:
    """``{'test': {'full': {'NDCG@10': x}}}`` → ``{'test_full_ndcg10': x}`` (property-name friendly)."""
    out = {}
    for phase, protocols in metrics.items():
        for protocol, values in protocols.items():
            for name, v in values.items():
                key = f"{phase}_{protocol}_{name}".lower().replace("@", "")
                out[key] = float(v)
    return out


def run_properties(result: TrainResult, recommendations: int) -> dict[str, Any]:
    rec = result.to_record()
    return {
        "id": result.run_id,
        "model": result.model_name,
        "dataset": result.dataset,
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(),
        "seed": result.seed,
        "device": result.device,
        "dataChecksum": result.data_checksum,
        "bestEpoch": result.best_epoch,
        "epochsRun": result.epochs_run,
        "secondsPerEpoch": float(result.seconds_per_epoch),
        "params": json.dumps({"model": rec["model_config"], "train": rec["train_config"],
                              "eval": rec["eval_params"]}, default=str),
        "record": json.dumps(rec, default=str),
        "recommendations": recommendations,
        **_flat_metrics(result.metrics),
    }


def write_back(graph: Graph, result: TrainResult, data: RecData, *, k: int = 10,
               recommend: bool = True, batch_users: int = 1024) -> WriteBackReport:
    """Write ``result`` (trained on ``data``) into the graph in one transaction; see the module docstring."""
    t0 = time.perf_counter()
    prop = schema.embedding_property(result.model_name)
    recs: list[dict[str, Any]] = []
    if recommend and result.model is not None:
        for users in torch.arange(data.num_users).split(batch_users):
            idx, scores = result.recommend(users, k=k, exclude_seen=True)
            for u, row_i, row_s in zip(users.tolist(), idx.tolist(), scores.tolist()):
                recs.append({"user": data.user_ids[u],
                             "items": [{"item": data.item_ids[i], "rank": r + 1, "score": float(s)}
                                       for r, (i, s) in enumerate(zip(row_i, row_s)) if s != float("-inf")]})
    n_recs = sum(len(r["items"]) for r in recs)

    def rows(ids: list[str], vectors: torch.Tensor | None) -> list[dict[str, Any]]:
        if vectors is None:
            return []
        v = vectors.detach().float().cpu().tolist()
        return [{"id": i, "props": {prop: vec, f"{prop}_run": result.run_id}} for i, vec in zip(ids, v)]

    user_rows = rows(data.user_ids, result.user_embeddings)
    item_rows = rows(data.item_ids, result.item_embeddings)
    score = _score_state(result, data, prop, user_rows, item_rows)
    try:
        with graph.transaction("runs/write_back") as tx:
            _write_run(tx, result, user_rows, item_rows, recs, n_recs, recommend, score)
    except QueryError as e:
        if _code(e) == "Neo.ClientError.Schema.ConstraintValidationFailed":
            raise QueryError(f"run {result.run_id} is already in the graph (another write-back of a run with this "
                             "id committed first); nothing of this write-back was written",
                             hint="run ids hold the model, dataset, seed and start second; train again") from e
        raise
    for label, vectors in (("User", result.user_embeddings), ("Item", result.item_embeddings)):
        if vectors is not None and vectors.dim() == 2 and vectors.shape[1] > 0:
            try:
                graph.write_schema("runs/create_embedding_index", {"label": label, "property": prop},
                                   index=f"{label.lower()}_{prop}", dimensions=int(vectors.shape[1]))
            except QueryError as e:  # a concurrent write-back created it between IF NOT EXISTS and the creation
                if _code(e) != "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists":
                    raise
    return WriteBackReport(result.run_id, len(user_rows), len(item_rows), n_recs, time.perf_counter() - t0)


def _code(e: QueryError) -> str:
    """The Neo4j status code behind a QueryError ('' when there is none)."""
    return str(getattr(e.__cause__, "code", "") or "")


def _score_state(result: TrainResult, data: RecData, prop: str, user_rows: list[dict], item_rows: list[dict]
                 ) -> dict[str, Any] | None:
    """What ``kgp explain`` needs to recompute the run's score term by term (the model's
    ``score_decomposition``): the Run's ``scoreKind`` / ``scoreLambda`` properties and, for IKGR, each user's
    and item's intent set (``<prop>_intents``, intent keys, added to their rows here) and the intent vectors
    (``(:Run)-[:INTENT_EMBEDDING {vector}]->(:Intent)``). ``None`` where the model has no decomposition."""
    model = result.model
    dec = model.score_decomposition() if model is not None and hasattr(model, "score_decomposition") else None
    if not dec or not user_rows or not item_rows:
        return None
    state: dict[str, Any] = {"props": {"scoreKind": dec["kind"]}, "intents": []}
    if dec["kind"] != "ikgr":
        return state
    state["props"]["scoreLambda"] = float(dec["lam"])
    keys = data.intent_keys
    vectors = dec.get("intent_vectors")
    if vectors is None or not keys:  # no intents in this run: clear what an earlier run's sets left
        for row in user_rows + item_rows:
            row["props"][f"{prop}_intents"] = []
        return state
    for rows, sets in ((user_rows, dec["user_sets"]), (item_rows, dec["item_sets"])):
        for row, members in zip(rows, sets.tolist()):
            row["props"][f"{prop}_intents"] = [keys[t] for t in members if t >= 0]
    used = sorted({t for sets in (dec["user_sets"], dec["item_sets"]) for t in sets.flatten().tolist() if t >= 0})
    v = vectors.detach().float().cpu()
    state["intents"] = [{"key": keys[t], "vector": v[t].tolist()} for t in used]
    return state


def _write_run(tx, result: TrainResult, user_rows, item_rows, recs, n_recs: int, recommend: bool,
               score: dict[str, Any] | None = None) -> None:
    """The write-back's statements, in one transaction (see :func:`write_back`)."""
    # first: the dataset's write lock, so overlapping write-backs on one dataset run one after the other
    tx.run("runs/lock_dataset", dataset=result.dataset)
    for name, payload in (("runs/set_user_embeddings", user_rows), ("runs/set_item_embeddings", item_rows)):
        for start in range(0, len(payload), BATCH):
            tx.run(name, rows=payload[start:start + BATCH])
    if recommend:
        tx.run("runs/delete_recommendations", model=result.model_name, dataset=result.dataset,
               keep_run=result.run_id)
        for start in range(0, len(recs), 500):
            tx.run("runs/write_recommendations", rows=recs[start:start + 500], run=result.run_id,
                   model=result.model_name)
    # the run's intent vectors replace the previous runs' (only the newest run's vectors are on the nodes)
    tx.run("runs/delete_intent_embeddings", model=result.model_name, dataset=result.dataset, keep_run=result.run_id)
    # then: a clash on Run.id (unique) or any earlier failure rolls back every write above
    props = run_properties(result, n_recs)
    if score:
        props.update(score["props"])
    tx.run("runs/create_run", run=props)
    if score and score["intents"]:
        for start in range(0, len(score["intents"]), BATCH):
            tx.run("runs/set_intent_embeddings", rows=score["intents"][start:start + BATCH], run=result.run_id)


def list_runs(graph: Graph, *, dataset: str | None = None, model: str | None = None, limit: int = 50,
              kinds: tuple[str, ...] = ("train",)) -> list[dict[str, Any]]:
    """Runs newest first; ``kinds`` picks training (``train``) and/or intent-extraction (``extract``) runs."""
    rows = graph.read("runs/list_runs", dataset=dataset, model=model, kinds=list(kinds), limit=limit)
    out = []
    for r in rows:
        run = dict(r["run"])
        run.pop("record", None)
        out.append(run)
    return out


def run_checkpoint(graph: Graph, dataset: str, model: str, run: str | None = None) -> tuple[str, str]:
    """The newest run of ``model`` on ``dataset`` that materialised recommendations (or run ``run``) and the
    path of its checkpoint on this machine; NotFound (one line, with a hint) otherwise."""
    from pathlib import Path

    if run is None:
        row = graph.read_one("recommend/latest_run", dataset=dataset, model=model)
        if row is None:
            raise NotFound(f"no {model} run with recommendations for dataset {dataset!r}",
                           hint=f"train one first: kgp train {model} -d {dataset}")
        run = row["id"]
    rec = graph.read_one("recommend/run_record", run=run)
    if rec is None or rec["model"] != model or rec["dataset"] != dataset:
        raise NotFound(f"no {model} run {run!r} for dataset {dataset!r}")
    ckpt = json.loads(rec["record"] or "{}").get("checkpoint")
    if not ckpt or not Path(ckpt).is_file():
        raise NotFound(f"run {run} has no checkpoint on this machine ({ckpt or 'none saved'})",
                       hint=f"train again: kgp train {model} -d {dataset}")
    return run, ckpt
