"""Runs one RecBole 1.2.1 model on RecBole atomic files; executed *inside the RecBole virtualenv*.

Not part of kgplatform's import graph: it must not import kgplatform (the RecBole venv does not have it) and
is started by :func:`kgplatform.eval.recbole.run_recbole` as ``<recbole-venv>/bin/python -I
_recbole_worker.py REQUEST.json`` with the working directory set to the run's workdir (``-I`` keeps this
file's folder, which holds kgplatform's ``recbole.py``, off ``sys.path``).

REQUEST.json: ``{"data_path", "dataset", "model", "mode", "seed", "epochs", "config", "device", "workdir"}``
and optionally ``"also_modes"`` (e.g. ``["uni99"]``): after training and testing under ``mode`` (which also
drives early stopping), the best model is evaluated again on RecBole's own validation and test dataloaders of
each further mode (``"extra"`` in the output), so one training serves both protocols.
Writes exactly one JSON document to stdout; everything else (RecBole's log, warnings, prints) goes to stderr
and to ``<workdir>/log/``, ``<workdir>/log_tensorboard/``. On a known failure the last stderr line is
``KGP_RECBOLE_ERROR: <one line>`` and the exit status is 2.

What it does, in RecBole's own order (as ``recbole.quick_start.run_recbole`` does, without importing it and
so without ``ray``): ``Config`` → ``init_seed`` → ``create_dataset`` → ``data_preparation`` → ``init_seed``
→ model → trainer → ``fit`` (early stopping on validation ``NDCG@10``, ``stopping_step`` 10 by default) →
evaluate the *best* model on test. Under ``full`` with a general or knowledge model, ``eval_batch_size`` is
raised (unless the request's config sets it) from RecBole's 4096 scores (one user per batch on a catalogue
over 4096 items) to about 2**21 scores (2**16 for knowledge models): full ranking is deterministic, and
the per-user results are the same. The best model is kept in memory: the trainer's
``_save_checkpoint`` is replaced by one that copies ``state_dict()`` and ``other_parameter()`` (torch >= 2.6
refuses to ``torch.load`` RecBole's pickled checkpoints, and nothing needs to touch the disk).

Per-user metrics: the evaluator's ``rec.topk`` matrix (per evaluated row: the 0/1 hits of the top
``max(topk)`` positions, then the number of positives) is captured at every evaluation, with the user of
each row recorded from the eval batches. Validation = the snapshot of the best epoch's validation (so it is
RecBole's ``best_valid_result``); test = one evaluation of the best model right after ``fit``, as
``recbole.quick_start`` does (under ``uniN`` the negatives come from the global RNG, so that order matters).
From each snapshot HR@k, NDCG@k and MRR@k are computed here with the same definitions as RecBole's
``Hit``/``NDCG``/``MRR`` (MRR truncated at k), and their means are checked against RecBole's reported
values to 1e-6 (``metric_decimal_place`` is raised to 10 for that). A mismatch fails the run.
"""
from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
import traceback
import warnings

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]

KS = (1, 5, 10, 20)
TOLERANCE = 1e-6
RECBOLE_TO_OURS = {"hit": "HR", "ndcg": "NDCG", "mrr": "MRR"}


class WorkerError(Exception):
    """A failure with a one-line explanation (printed as ``KGP_RECBOLE_ERROR: ...``)."""


def _numpy_compat(np) -> None:
    # RecBole 1.2.1 uses aliases NumPy 1.24 / 2.0 removed; its Config patches some only under NumPy < 1.24.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPy 1.2x warns on looking the removed aliases up
        for name, value in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_),
                            ("float", float), ("int", int), ("bool", bool), ("object", object)):
            if not hasattr(np, name):
                setattr(np, name, value)


def _dgl_without_graphbolt() -> None:
    """Make ``import dgl`` work for RecBole's KGAT (it builds a DGL graph) under torch 2.9.

    DGL's last PyPI wheel (2.1.0) ships its GraphBolt C++ library only for torch 2.0-2.2 and fails to import
    without it, although KGAT only uses DGL's core graph, subgraph and message-passing API (which runs on
    any torch through DGL's own C library). When that is the failure, ``dgl.graphbolt`` is replaced by an
    empty module and dgl is imported again; GraphBolt (DGL's sampling pipeline) is then unavailable. Also
    translates KGAT's DGL 0.x calls (:func:`_dgl_compat`).
    """
    os.environ.setdefault("DGLBACKEND", "pytorch")  # else DGL writes ~/.dgl/config.json
    try:
        import dgl  # noqa: F401
        return _dgl_compat()
    except ModuleNotFoundError as e:
        if e.name == "dgl":
            raise WorkerError("this model needs DGL (RecBole's KGAT builds a DGL graph): run "
                              "scripts/setup_recbole.sh, which installs dgl==2.1.0") from e
        raise
    except FileNotFoundError as e:
        if "graphbolt" not in str(e):
            raise
    import types

    for mod in [m for m in sys.modules if m == "dgl" or m.startswith("dgl.")]:
        del sys.modules[mod]
    sys.modules["dgl.graphbolt"] = types.ModuleType("dgl.graphbolt")
    import dgl  # noqa: F401,F811

    _dgl_compat()


def _dgl_compat() -> None:
    """RecBole 1.2.1's KGAT was written for DGL 0.x; translate its two calls that DGL 1.0 changed.

    - ``dgl.edge_subgraph(g, e, preserve_nodes=True)`` is DGL >= 0.8's ``relabel_nodes=False``;
    - ``g.adjacency_matrix(transpose=False, scipy_fmt="coo")`` is DGL >= 1.0's ``g.adj_external(...)`` (same
      meaning: rows are sources unless ``transpose``); DGL 1's ``adjacency_matrix`` takes only ``etype``.
    """
    import inspect

    import dgl

    orig_sub = dgl.edge_subgraph
    if "preserve_nodes" not in inspect.signature(orig_sub).parameters and not getattr(orig_sub, "_kgp", False):
        def edge_subgraph(graph, edges, *args, preserve_nodes=None, **kwargs):
            if preserve_nodes is not None:
                kwargs.setdefault("relabel_nodes", not preserve_nodes)
            return orig_sub(graph, edges, *args, **kwargs)

        edge_subgraph._kgp = True
        dgl.edge_subgraph = edge_subgraph

    graph_cls = dgl.DGLGraph
    orig_adj = graph_cls.adjacency_matrix
    if hasattr(graph_cls, "adj_external") and "scipy_fmt" not in inspect.signature(orig_adj).parameters \
            and not getattr(orig_adj, "_kgp", False):
        def adjacency_matrix(self, transpose=None, ctx=None, scipy_fmt=None, etype=None):
            if transpose is None and ctx is None and scipy_fmt is None:
                return orig_adj(self, etype)
            kwargs = {"transpose": bool(transpose), "scipy_fmt": scipy_fmt, "etype": etype}
            if ctx is not None:
                kwargs["ctx"] = ctx
            return self.adj_external(**kwargs)

        adjacency_matrix._kgp = True
        graph_cls.adjacency_matrix = adjacency_matrix


def _resolve_model(name: str):
    """The RecBole model class for ``name``; exact class name first, then case-insensitive (``sasrec``)."""
    import importlib
    import importlib.util

    from recbole.utils import get_model

    try:
        return get_model(name)
    except (ValueError, AttributeError):
        pass
    for sub in ("general_recommender", "context_aware_recommender", "sequential_recommender",
                "knowledge_aware_recommender", "exlib_recommender"):
        path = f"recbole.model.{sub}.{name.lower()}"
        if importlib.util.find_spec(path) is None:
            continue
        module = importlib.import_module(path)
        for attr in dir(module):
            if attr.lower() == name.lower() and isinstance(getattr(module, attr), type):
                return getattr(module, attr)
    raise WorkerError(f"RecBole 1.2.1 has no model named {name!r} (names as in RecBole: Pop, BPR, LightGCN, "
                      f"SASRec, GRU4Rec, KGCN, KGAT, ...)")


def _header_fields(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n\r")
    return [col.split(":", 1)[0] for col in header.split("\t")]


def _count_items(path: str) -> int:
    items = set()
    with open(path, encoding="utf-8") as f:
        col = [c.split(":", 1)[0] for c in f.readline().rstrip("\n\r").split("\t")].index("item_id")
        for line in f:
            parts = line.rstrip("\n\r").split("\t")
            if len(parts) > col:
                items.add(parts[col])
    return len(items)


def _base_config(req: dict, model_cls) -> dict:
    from recbole.utils import ModelType

    folder = os.path.join(req["data_path"], req["dataset"])
    inter = os.path.join(folder, req["dataset"] + ".inter")
    if not os.path.isfile(inter):
        raise WorkerError(f"{inter} does not exist")
    fields = _header_fields(inter)
    for need in ("user_id", "item_id", "timestamp"):
        if need not in fields:
            raise WorkerError(f"{inter}: the header has no {need} column (has {fields}); leave-one-out by "
                              f"time order needs user_id, item_id and timestamp")
    load_col: dict = {"inter": ["user_id", "item_id", "timestamp"]}
    if model_cls.type == ModelType.KNOWLEDGE:
        for suffix in ("kg", "link"):
            if not os.path.isfile(os.path.join(folder, f"{req['dataset']}.{suffix}")):
                raise WorkerError(f"{model_cls.__name__} is a knowledge-aware model and needs "
                                  f"{os.path.join(folder, req['dataset'] + '.' + suffix)}, which does not exist")
        load_col["kg"] = ["head_id", "relation_id", "tail_id"]
        load_col["link"] = ["item_id", "entity_id"]
    workdir = req["workdir"]
    cuda = req.get("device", "cpu") != "cpu"
    cfg = {
        "data_path": req["data_path"],
        "load_col": load_col,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user",
                      "mode": req["mode"]},
        "metrics": ["Hit", "NDCG", "MRR"],
        "topk": list(KS),
        "valid_metric": "NDCG@10",
        "metric_decimal_place": 10,
        "seed": int(req["seed"]),
        "checkpoint_dir": os.path.join(workdir, "saved"),
        "show_progress": False,
        "save_dataset": False,
        "save_dataloaders": False,
        "use_gpu": cuda,
        "gpu_id": (req["device"].split(":", 1)[1] if ":" in req["device"] else "0") if cuda else "",
    }
    if model_cls.type == ModelType.SEQUENTIAL:
        # CE over all items; RecBole rejects negative sampling for CE.
        cfg.update({"MAX_ITEM_LIST_LENGTH": 50, "train_neg_sample_args": None, "loss_type": "CE"})
    elif req["mode"] == "full" and "eval_batch_size" not in (req.get("config") or {}):
        # RecBole counts eval_batch_size in scores (users x items) and defaults to 4096: one user per batch on
        # a catalogue of over 4096 items (Amazon Beauty: 22k batches, minutes of overhead). Full ranking has no
        # randomness, so bigger batches give the same ranking; knowledge models score user-item pairs, hence
        # a smaller budget. (Sampled modes keep RecBole's default: batching changes its negative draws.)
        n_items = _count_items(inter) + 1  # + RecBole's padding item
        budget = 2 ** 16 if model_cls.type == ModelType.KNOWLEDGE else 2 ** 21
        cfg["eval_batch_size"] = max(4096, (budget // n_items) * n_items)
    if req.get("epochs") is not None:
        cfg["epochs"] = int(req["epochs"])
    cfg.update(req.get("config") or {})
    return cfg


def per_user_from_topk(topk, ks=KS):
    """Per-row HR@k / NDCG@k / MRR@k from RecBole's ``rec.topk`` matrix ``[n, max(k) + 1]`` (numpy).

    Column j < max(k) is 1 when the item at rank j + 1 is a positive; the last column is the number of
    positives of the row. NDCG@k = DCG@k / IDCG@k with IDCG over ``min(#positives, max(k))`` positions
    (RecBole's definition), MRR@k = 1 / rank of the first positive if it is within k, else 0.
    """
    import numpy as np

    kmax = max(ks)
    hits = np.asarray(topk[:, :kmax], dtype=bool)
    pos_len = np.asarray(topk[:, kmax], dtype=np.int64)
    disc = 1.0 / np.log2(np.arange(2, kmax + 2, dtype=np.float64))  # rank r -> 1 / log2(r + 1)
    dcg = np.cumsum(np.where(hits, disc, 0.0), axis=1)
    ideal = np.cumsum(disc)
    idcg_len = np.minimum(pos_len, kmax)
    out = {}
    any_hit = hits.any(axis=1)
    first = np.where(any_hit, hits.argmax(axis=1), kmax)  # 0-based rank of the first positive
    for k in ks:
        out[f"HR@{k}"] = hits[:, :k].any(axis=1).astype(np.float64)
        # RecBole: the ideal DCG of a row stops growing after min(#positives, max(k)) positions
        idcg = np.where(idcg_len > 0, ideal[np.clip(np.minimum(k, idcg_len), 1, None) - 1], 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[f"NDCG@{k}"] = np.where(idcg > 0, dcg[:, k - 1] / np.where(idcg > 0, idcg, 1.0), 0.0)
        out[f"MRR@{k}"] = np.where(first < k, 1.0 / (first + 1.0), 0.0)
    return out


def _ours(recbole_result: dict) -> dict:
    out = {}
    for key, value in recbole_result.items():
        name, _, k = key.partition("@")
        out[f"{RECBOLE_TO_OURS.get(name.lower(), name)}@{k}"] = float(value)
    return out


def run(req: dict) -> dict:
    import numpy as np

    _numpy_compat(np)
    import torch

    import recbole
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_trainer, init_logger, init_seed

    os.chdir(req["workdir"])  # RecBole writes log/ and log_tensorboard/ relative to the working directory
    t_start = time.perf_counter()
    model_cls = _resolve_model(req["model"])
    if model_cls.__name__ == "KGAT":
        _dgl_without_graphbolt()
    cfg = _base_config(req, model_cls)
    try:
        config = Config(model=model_cls, dataset=req["dataset"], config_dict=cfg)
    except Exception as e:  # RecBole's own validation (bad eval_args etc.)
        raise WorkerError(f"RecBole rejected the configuration: {type(e).__name__}: {e}") from e
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = model_cls(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)

    # --- timing of training epochs (evaluation excluded)
    epoch_seconds: list[float] = []
    epoch_cpu_seconds: list[float] = []  # the process's CPU time: steadier than wall time on a shared machine
    orig_train_epoch = trainer._train_epoch

    def timed_train_epoch(*args, **kwargs):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return orig_train_epoch(*args, **kwargs)
        finally:
            epoch_seconds.append(time.perf_counter() - t0)
            epoch_cpu_seconds.append(time.process_time() - c0)

    trainer._train_epoch = timed_train_epoch

    # --- capture of rec.topk rows and their users at every evaluation (a snapshot per evaluate() call)
    capture: dict = {"users": [], "last": None}
    uid_field = config["USER_ID_FIELD"]
    orig_full, orig_neg = trainer._full_sort_batch_eval, trainer._neg_sample_batch_eval

    def full_eval(batched_data):
        out = orig_full(batched_data)
        interaction, scores = out[0], out[1]
        users = interaction[uid_field].cpu().numpy()
        if len(users) != scores.shape[0]:
            raise WorkerError(f"full-sort batch: {len(users)} users for {scores.shape[0]} score rows")
        capture["users"].append(users)
        return out

    def neg_eval(batched_data):
        out = orig_neg(batched_data)
        interaction, row_idx = batched_data[0], batched_data[1]
        scores = out[1]
        users = np.full(scores.shape[0], -1, dtype=np.int64)
        users[row_idx.cpu().numpy()] = interaction[uid_field].cpu().numpy()
        if (users < 0).any():
            raise WorkerError("sampled batch: a score row without a user")
        capture["users"].append(users)
        return out

    trainer._full_sort_batch_eval, trainer._neg_sample_batch_eval = full_eval, neg_eval
    orig_evaluate_struct = trainer.evaluator.evaluate

    def evaluate_struct(struct):
        result = orig_evaluate_struct(struct)
        users = np.concatenate(capture["users"]) if capture["users"] else np.zeros(0, dtype=np.int64)
        topk = struct.get("rec.topk").cpu().numpy().copy() if "rec.topk" in struct else None
        capture.update(users=[], last=(users, topk, dict(result)))
        return result

    trainer.evaluator.evaluate = evaluate_struct

    # --- the best model in memory instead of a pickled checkpoint; with it, that epoch's validation snapshot
    best: dict = {}

    def save_in_memory(epoch, verbose=True, **kwargs):
        best["epoch"] = int(epoch)
        best["state_dict"] = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        best["other"] = copy.deepcopy(trainer.model.other_parameter())
        best["valid"] = capture["last"]  # fit() saves right after the validation that improved

    trainer._save_checkpoint = save_in_memory

    t_fit = time.perf_counter()
    best_valid_score, _ = trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    fit_seconds = time.perf_counter() - t_fit
    if best:
        trainer.model.load_state_dict(best["state_dict"])
        trainer.model.load_other_parameter(best["other"])

    # test right after fit, as recbole.quick_start does (sampled modes draw negatives from the global RNG, so
    # the order matters); validation: the snapshot of the best epoch (RecBole's best_valid_result)
    snapshots = {}
    capture.update(users=[], last=None)
    if trainer.evaluate(test_data, load_best_model=False, show_progress=False) is not None:
        snapshots["test"] = capture["last"]
    snapshots["valid"] = best.get("valid")
    if snapshots["valid"] is None:  # no validation during fit (eval_step <= 0): evaluate it now
        capture.update(users=[], last=None)
        if trainer.evaluate(valid_data, load_best_model=False, show_progress=False) is not None:
            snapshots["valid"] = capture["last"]

    id2token = train_data._dataset.field2id_token[uid_field]
    metrics, recbole_metrics, per_user = _summarise(snapshots, id2token)

    # --- the same trained model under further protocols (``also_modes``): RecBole's own dataloaders for that
    # mode (its own negatives for uniN), built from the same files in the same order, so the ids match
    extra = {}
    for mode in req.get("also_modes") or []:
        cfg2 = dict(cfg, eval_args=dict(cfg["eval_args"], mode=mode))
        if mode != "full" and "eval_batch_size" not in (req.get("config") or {}):
            cfg2.pop("eval_batch_size", None)  # sampled modes keep RecBole's default (batching changes draws)
        config2 = Config(model=model_cls, dataset=req["dataset"], config_dict=cfg2)
        init_seed(config2["seed"], config2["reproducibility"])
        dataset2 = create_dataset(config2)
        if list(dataset2.field2id_token[uid_field]) != list(id2token) or \
                list(dataset2.field2id_token[config["ITEM_ID_FIELD"]]) != \
                list(train_data._dataset.field2id_token[config["ITEM_ID_FIELD"]]):
            raise WorkerError(f"{mode}: RecBole mapped the ids differently on the second load")
        _, valid2, test2 = data_preparation(config2, dataset2)
        snaps2 = {}
        for phase, loader in (("test", test2), ("valid", valid2)):
            capture.update(users=[], last=None)
            if trainer.evaluate(loader, load_best_model=False, show_progress=False) is not None:
                snaps2[phase] = capture["last"]
        m2, r2, p2 = _summarise(snaps2, id2token)
        extra[mode] = {"metrics": m2, "recbole_metrics": r2, "per_user": p2}

    final_config = json.loads(json.dumps(dict(config.final_config_dict), default=str))
    return {
        "ok": True,
        "model": model_cls.__name__,
        "dataset": req["dataset"],
        "mode": req["mode"],
        "seed": int(config["seed"]),
        "recbole_version": recbole.__version__,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "metrics": metrics,
        "recbole_metrics": recbole_metrics,
        "per_user": per_user,
        "epoch_seconds": epoch_seconds,
        "seconds_per_epoch": (sum(epoch_seconds) / len(epoch_seconds)) if epoch_seconds else None,
        "epoch_cpu_seconds": epoch_cpu_seconds,
        "epochs_run": len(epoch_seconds),
        "best_epoch": (best["epoch"] + 1) if best else None,
        "best_valid_score": float(best_valid_score) if best_valid_score is not None else None,
        "fit_seconds": fit_seconds,
        "seconds_total": time.perf_counter() - t_start,
        "n_users": int(dataset.user_num - 1),
        "n_items": int(dataset.item_num - 1),
        "n_inters": int(dataset.inter_num),
        "config": final_config,
        "extra": extra,
    }


def _summarise(snapshots: dict, id2token) -> tuple[dict, dict, dict]:
    """``(metrics, recbole_metrics, per_user)`` of the ``valid``/``test`` snapshots; the mean of every per-user
    list is checked against RecBole's reported value."""
    metrics, recbole_metrics, per_user = {}, {}, {}
    for phase in ("valid", "test"):
        snap = snapshots.get(phase)
        if snap is None or snap[1] is None:
            raise WorkerError(f"RecBole evaluated no {phase} users")
        users, topk, result = snap
        if len(users) != topk.shape[0]:
            raise WorkerError(f"{phase}: {len(users)} users recorded for {topk.shape[0]} rec.topk rows")
        values = per_user_from_topk(topk)
        reported = _ours(result)
        for name, reported_value in reported.items():
            if name not in values:
                continue
            mean = float(values[name].mean())
            if not math.isclose(mean, reported_value, rel_tol=0.0, abs_tol=TOLERANCE):
                raise WorkerError(f"{phase} {name}: mean of the per-user values {mean:.10f} differs from "
                                  f"RecBole's {reported_value:.10f} by more than {TOLERANCE:g}")
        recbole_metrics[phase] = {k: float(v) for k, v in result.items()}
        metrics[phase] = reported
        per_user[phase] = {"users": [str(id2token[u]) for u in users.tolist()],
                           **{name: [float(x) for x in arr] for name, arr in values.items()}}
    return metrics, recbole_metrics, per_user


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: _recbole_worker.py REQUEST.json", file=sys.stderr)
        return 2
    real_stdout = sys.stdout
    sys.argv = sys.argv[:1]  # RecBole's Config reads --key=value options from the command line
    # pandas 2.2 and torch 2.9 deprecation notices about RecBole 1.2.1's code: noise in the log
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    sys.stdout = sys.stderr  # RecBole and its libraries print; only our JSON goes to the real stdout
    try:
        with open(argv[1], encoding="utf-8") as f:
            req = json.load(f)
        doc = run(req)
    except WorkerError as e:
        traceback.print_exc(file=sys.stderr)
        print("KGP_RECBOLE_ERROR: " + " ".join(str(e).split()), file=sys.stderr, flush=True)
        return 2
    except Exception as e:  # noqa: BLE001 - anything RecBole raises, reported in one line
        traceback.print_exc(file=sys.stderr)
        print("KGP_RECBOLE_ERROR: " + " ".join(f"{type(e).__name__}: {e}".split()), file=sys.stderr, flush=True)
        return 2
    json.dump(doc, real_stdout, allow_nan=True)
    real_stdout.write("\n")
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
