"""RecBole 1.2.1 on our exported atomic files, in its own virtualenv, with per-user metrics.

RecBole is not a dependency of kgplatform: it needs NumPy < 2 and an older pandas/SciPy stack, so it lives in
``.venv-recbole`` at the repo root (``KGP_RECBOLE_VENV`` overrides the path), installed by
``scripts/setup_recbole.sh``. This module never imports RecBole (only the standard library and NumPy); it runs
``_recbole_worker.py`` with that venv's interpreter as a subprocess and parses the one JSON document the worker
prints.

Protocol (the same leave-one-out split as :mod:`kgplatform.data.split` on a file written by
:func:`kgplatform.graph.export.save_recbole`): ``eval_args: {split: {LS: valid_and_test}, order: TO,
group_by: user, mode: full | uniN}`` — per user, in timestamp order (stable, so ties keep the file's order),
the last interaction is the test target and the second-last the validation target. Early stopping on
validation NDCG@10 (RecBole's ``stopping_step``, 10 by default). Reported: validation = RecBole's
``best_valid_result`` (the best epoch's validation), test = the best epoch's model evaluated once right
after training, in the order ``recbole.quick_start`` uses (it matters under ``uniN``, whose negatives come
from the global RNG).

Metric names: RecBole's ``hit@k`` → ``HR@k``, ``ndcg@k`` → ``NDCG@k``, ``mrr@k`` → ``MRR@k`` for k in 1, 5,
10, 20. RecBole's MRR is truncated at k (a target ranked below k contributes 0), so there is no plain ``MRR``
key: ``MRR@20`` is the closest to our untruncated ``MRR`` (and a lower bound of it).

Differences from our own protocol that the caller should label (RecBole's conventions, not changed here):

- full ranking: general and knowledge models mask the user's earlier items (as we do); **sequential models
  (SASRec, GRU4Rec, SRGNN) do not mask the history** in RecBole 1.2.1.
- users evaluated: general/knowledge models are tested on every user with >= 2 interactions and validated on
  those with >= 3 (as our split). Sequential models split the n - 1 (prefix -> next item) instances of a
  user instead, so they are tested on users with >= 3 interactions and validated on users with >= 4 (a
  2-interaction user's single instance stays in training; a 3-interaction user has no validation target).
  The test target is still each user's last item.
- ``uniN``: RecBole draws its own N negatives per target (not our stored candidates), at every evaluation.
- KGAT needs DGL: the RecBole venv has dgl 2.1.0 (the last PyPI wheel), imported without its GraphBolt
  library and with two DGL 0.x calls of RecBole's KGAT translated (see ``_recbole_worker.py``).
- efficiency only: under ``full``, general/knowledge models are evaluated with a larger ``eval_batch_size``
  than RecBole's default (same per-user results; see ``_recbole_worker.py``); a ``config`` entry wins.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from kgplatform.errors import ConfigError, EnvironmentMissing, TrainingError

__all__ = ["RECBOLE_VERSION", "RecBoleResult", "default_venv", "ensure_recbole", "per_user_means", "recbole_python",
           "run_recbole"]

RECBOLE_VERSION = "1.2.1"
REPO = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = REPO / "scripts" / "setup_recbole.sh"
WORKER = Path(__file__).resolve().with_name("_recbole_worker.py")
ERROR_MARK = "KGP_RECBOLE_ERROR: "
SETUP_HINT = "run scripts/setup_recbole.sh (installs RecBole 1.2.1 into .venv-recbole; KGP_RECBOLE_VENV overrides)"
_MODE = re.compile(r"^(full|uni[1-9][0-9]*|pop[1-9][0-9]*)$")
_CHECKED: dict[Path, str] = {}  # venv -> recbole version, once checked in this process

Mode = Literal["full", "uni99"]  #: "full" or any "uniN" (and RecBole's "popN")


@dataclass
class RecBoleResult:
    """One RecBole run: test/valid metrics of the best validation epoch, per user, and timings.

    ``metrics[phase]`` maps ``HR@k``, ``NDCG@k``, ``MRR@k`` (k in 1, 5, 10, 20; MRR truncated at k, see the
    module docstring) to RecBole's reported means. ``per_user[phase]`` holds ``"users"`` (raw user tokens as in
    the ``.inter`` file, e.g. ``"42"`` for ``movielens-100k:42``) and one list per metric name, aligned with
    ``users``; the worker checked that each list's mean equals RecBole's reported value to 1e-6.
    ``seconds_per_epoch`` is the mean wall time of a training epoch (evaluation excluded), ``epochs_run`` how
    many epochs ran, ``best_epoch`` the 1-based epoch whose model was evaluated.
    """

    model: str
    mode: str
    seed: int
    metrics: dict[str, dict[str, float]]
    per_user: dict[str, dict[str, list]]
    seconds_per_epoch: float | None
    epochs_run: int
    best_epoch: int | None
    config: dict[str, Any]
    recbole_version: str
    log_tail: str = ""
    dataset: str = ""
    epoch_seconds: list[float] = field(default_factory=list)
    epoch_cpu_seconds: list[float] = field(default_factory=list)  # the worker's CPU time per training epoch
    seconds_total: float | None = None
    wall_seconds: float | None = None
    best_valid_score: float | None = None
    workdir: str = ""
    #: the same trained model under further modes (``run_recbole(..., also_modes=...)``): mode → result whose
    #: ``metrics``/``per_user`` are that protocol's and whose timings are the shared training's
    extra: dict[str, "RecBoleResult"] = field(default_factory=dict)

    def values_by_user(self, phase: str = "test", metric: str = "NDCG@10") -> dict[str, float]:
        """``{user token: value}`` of one per-user metric (for pairing with our per-user values)."""
        pu = self.per_user.get(phase) or {}
        if metric not in pu:
            raise ConfigError(f"RecBole result has no per-user {metric!r} for {phase}",
                              hint="one of: " + ", ".join(k for k in pu if k != "users"))
        return dict(zip(pu["users"], pu[metric]))

    def to_dict(self, *, per_user: bool = True) -> dict[str, Any]:
        d = asdict(self)
        if not per_user:
            d.pop("per_user")
        return d


# ----------------------------------------------------------------------------------------------- the venv
def default_venv() -> Path:
    """``$KGP_RECBOLE_VENV`` or ``<repo>/.venv-recbole``."""
    env = os.environ.get("KGP_RECBOLE_VENV")
    return Path(env).expanduser() if env else REPO / ".venv-recbole"


def recbole_python(venv: Path | None = None) -> Path:
    """The interpreter of the RecBole virtualenv (``<venv>/bin/python``); :class:`EnvironmentMissing` if absent.

    Does not check that RecBole imports there (:func:`ensure_recbole` does).
    """
    venv = Path(venv).expanduser() if venv is not None else default_venv()
    for name in ("bin/python", "bin/python3", "Scripts/python.exe"):
        p = venv / name
        if p.is_file() and os.access(p, os.X_OK):
            return p
    raise EnvironmentMissing(f"no RecBole virtualenv at {venv} (no {venv / 'bin' / 'python'})", hint=SETUP_HINT)


def _probe(python: Path, timeout_s: float = 180.0) -> tuple[str | None, str]:
    """``(recbole version, "")`` when ``import recbole`` works with that interpreter, else ``(None, why)``."""
    code = ("import json, warnings; warnings.simplefilter('ignore'); import recbole, numpy, torch; "
            "print(json.dumps({'recbole': recbole.__version__, 'numpy': numpy.__version__, "
            "'torch': torch.__version__}))")
    try:
        cp = subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True, timeout=timeout_s,
                            cwd=tempfile.gettempdir(), env=_child_env())
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{type(e).__name__}: {e}"
    if cp.returncode != 0:
        lines = [ln for ln in cp.stderr.strip().splitlines() if ln.strip()]
        return None, lines[-1] if lines else f"exit status {cp.returncode}"
    try:
        info = json.loads(cp.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, "unexpected output: " + cp.stdout.strip()[-200:]
    return str(info["recbole"]), ""


def ensure_recbole(venv: Path | None = None, *, install: bool = False, timeout_s: float = 1800.0) -> str:
    """Check that RecBole 1.2.1 imports in the RecBole venv; return its version.

    ``install=True`` runs ``scripts/setup_recbole.sh`` (with ``KGP_RECBOLE_VENV`` set to ``venv``) when the
    check fails, then checks again. Raises :class:`EnvironmentMissing` (exit code 3) with a one-line message
    and a hint when RecBole is not there or cannot be installed. The result is cached per venv for the process.
    """
    venv = Path(venv).expanduser() if venv is not None else default_venv()
    key = venv.resolve() if venv.exists() else venv
    if key in _CHECKED:
        return _CHECKED[key]
    why = ""
    try:
        version, why = _probe(recbole_python(venv))
    except EnvironmentMissing as e:
        if not install:
            raise
        version, why = None, e.message
    if version is None and install:
        _run_setup(venv, timeout_s)
        version, why = _probe(recbole_python(venv))
    if version is None:
        raise EnvironmentMissing(f"RecBole cannot be imported with {venv}: {why}", hint=SETUP_HINT)
    if version != RECBOLE_VERSION:
        raise EnvironmentMissing(f"{venv} has RecBole {version}, kgplatform drives RecBole {RECBOLE_VERSION}",
                                 hint=f"remove {venv} and run scripts/setup_recbole.sh")
    _CHECKED[key] = version
    return version


def _run_setup(venv: Path, timeout_s: float) -> None:
    if not SETUP_SCRIPT.is_file():
        raise EnvironmentMissing(f"{SETUP_SCRIPT} is missing; cannot install RecBole",
                                 hint="install RecBole 1.2.1 into a virtualenv and set KGP_RECBOLE_VENV")
    env = {**os.environ, "KGP_RECBOLE_VENV": str(venv)}
    try:
        cp = subprocess.run(["bash", str(SETUP_SCRIPT)], capture_output=True, text=True, env=env,
                            timeout=timeout_s, cwd=str(REPO))
    except subprocess.TimeoutExpired:
        raise EnvironmentMissing(f"installing RecBole into {venv} took over {timeout_s:.0f} s",
                                 hint=SETUP_HINT) from None
    if cp.returncode != 0:
        err = [ln for ln in cp.stderr.splitlines() if ln.startswith("Error:")]
        msg = err[-1][len("Error:"):].strip() if err else (cp.stderr.strip().splitlines() or ["failed"])[-1]
        raise EnvironmentMissing(f"cannot install RecBole {RECBOLE_VERSION}: {msg}",
                                 hint="run scripts/setup_recbole.sh to see the install log")


def _child_env() -> dict[str, str]:
    """The environment for RecBole's interpreter: ours without Python path overrides (the venv is isolated)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env["PYTHONNOUSERSITE"] = "1"
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


# -------------------------------------------------------------------------------------------------- a run
def _dataset_folder(atomic_dir: Path, dataset: str) -> Path:
    """The folder holding ``<dataset>.inter``: ``atomic_dir/<dataset>/`` or ``atomic_dir`` itself."""
    for folder in (atomic_dir / dataset, atomic_dir):
        if (folder / f"{dataset}.inter").is_file():
            return folder
    raise ConfigError(f"no RecBole atomic file {dataset}.inter in {atomic_dir} or {atomic_dir / dataset}",
                      hint="write it with `kgp export --format recbole` (kgplatform.graph.export.save_recbole)")


def run_recbole(atomic_dir: Path, dataset: str, model: str, *, mode: Mode | str = "full", seed: int = 2020,
                epochs: int | None = None, config: dict | None = None, device: str = "cpu",
                workdir: Path | None = None, timeout_s: float | None = None,
                venv: Path | None = None, also_modes: tuple[str, ...] | list[str] = ()) -> RecBoleResult:
    """Train and evaluate RecBole 1.2.1 ``model`` on ``<dataset>.inter`` (+ ``.kg``/``.link`` for KG models).

    ``atomic_dir`` is either the folder that holds ``<dataset>/<dataset>.inter`` (RecBole's ``data_path``) or
    the ``<dataset>/`` folder itself. ``model`` is RecBole's name (``Pop``, ``BPR``, ``LightGCN``, ``SASRec``,
    ``GRU4Rec``, ``SRGNN``, ``KGCN``, ``KGAT``; case-insensitive). ``mode``: ``"full"`` (rank all items) or ``"uniN"``
    (the target against N uniformly drawn negatives, RecBole's own draw). ``epochs`` caps training (RecBole's
    default: 300, with early stopping); ``config`` is merged last into RecBole's ``config_dict`` (so it can
    change anything, the protocol included — avoid ``eval_args``/``metrics``/``topk`` unless you mean it).
    ``also_modes`` (e.g. ``("uni99",)``): the model trained once under ``mode`` (early stopping on its
    validation) is also evaluated under each of these modes with RecBole's own dataloaders for them, in
    ``result.extra[mode]``; one training then serves both protocols, as our Trainer does.
    ``workdir`` receives RecBole's ``log/`` and ``log_tensorboard/``, the request and the worker's stderr log
    (a temporary folder, removed after a successful run, when not given). ``timeout_s`` bounds the run.

    Raises :class:`ConfigError` for bad arguments or missing files, :class:`EnvironmentMissing` when RecBole is
    not installed, :class:`TrainingError` when RecBole fails or times out (the message is RecBole's last error
    line, the hint names the full log). The sampled-protocol figures of RecBole and ours use different
    negatives; per-user pairing is exact under ``full`` only.
    """
    atomic_dir = Path(atomic_dir).expanduser()
    if not _MODE.match(str(mode)):
        raise ConfigError(f"RecBole evaluation mode {mode!r} is not full, uniN or popN", hint="e.g. full or uni99")
    if not re.fullmatch(r"[A-Za-z0-9_]+", str(model or "")):
        raise ConfigError(f"RecBole model name {model!r} is not a name",
                          hint="e.g. Pop, BPR, LightGCN, SASRec, GRU4Rec, KGCN, KGAT")
    also_modes = [str(m) for m in also_modes]
    for m in also_modes:
        if not _MODE.match(m) or m == str(mode):
            raise ConfigError(f"RecBole also_modes entry {m!r} is not a further full, uniN or popN mode")
    if epochs is not None and int(epochs) < 1:
        raise ConfigError(f"RecBole epochs must be at least 1, got {epochs}")
    if config is not None and not isinstance(config, dict):
        raise ConfigError("RecBole config must be a dict of RecBole settings")
    if device != "cpu" and not re.fullmatch(r"cuda(:[0-9]+)?", device):
        raise ConfigError(f"RecBole device {device!r} is not cpu or cuda[:N]")
    folder = _dataset_folder(atomic_dir, dataset)
    python = recbole_python(venv)
    version = ensure_recbole(venv)
    if not WORKER.is_file():
        raise EnvironmentMissing(f"{WORKER} is missing", hint="reinstall kgplatform")

    own_workdir = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="kgp-recbole-")) if own_workdir else Path(workdir).expanduser()
    try:
        wd.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the RecBole workdir {wd}: {e.strerror}",
                          hint="choose a folder you can write to") from None
    wd = wd.resolve()
    stamp = f"{model}-{mode}-s{seed}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    request = {"data_path": str(folder.parent.resolve()), "dataset": dataset, "model": model, "mode": mode,
               "seed": int(seed), "epochs": None if epochs is None else int(epochs), "config": config or {},
               "device": device, "workdir": str(wd), "also_modes": also_modes}
    if folder.name != dataset:
        # RecBole reads <data_path>/<dataset>/<dataset>.inter: a folder named otherwise gets a linked view
        view = wd / "data" / dataset
        view.mkdir(parents=True, exist_ok=True)
        for f in folder.glob(f"{dataset}.*"):
            link = view / f.name
            if not link.exists():
                link.symlink_to(f.resolve())
        request["data_path"] = str(view.parent)
    try:
        req_path = wd / f"request-{stamp}.json"
        req_path.write_text(json.dumps(request, indent=1), encoding="utf-8")
    except TypeError as e:
        raise ConfigError(f"RecBole config is not JSON-serialisable: {e}") from None
    log_path = wd / f"worker-{stamp}.log"

    t0 = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as err:
        try:
            cp = subprocess.run([str(python), "-I", str(WORKER), str(req_path)], stdout=subprocess.PIPE,
                                stderr=err, text=True, cwd=str(wd), env=_child_env(), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise TrainingError(f"RecBole {model} ({mode}) on {dataset} ran past {timeout_s:.0f} s and was stopped",
                                hint=f"log: {log_path}; raise the timeout or cap --recbole-epochs") from None
    wall = time.perf_counter() - t0
    log_text = log_path.read_text(encoding="utf-8", errors="replace")
    tail = "\n".join(log_text.splitlines()[-40:])
    if cp.returncode != 0:
        marks = [ln[len(ERROR_MARK):] for ln in log_text.splitlines() if ln.startswith(ERROR_MARK)]
        why = marks[-1] if marks else (f"killed by signal {-cp.returncode}" if cp.returncode < 0
                                       else f"exit status {cp.returncode}")
        raise TrainingError(f"RecBole {model} ({mode}) on {dataset} failed: {why}", hint=f"log: {log_path}")
    try:
        doc = json.loads(cp.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise TrainingError(f"RecBole {model} ({mode}) on {dataset}: the worker printed no result",
                            hint=f"log: {log_path}") from None
    result = RecBoleResult(
        model=doc["model"], mode=doc["mode"], seed=int(doc["seed"]), metrics=doc["metrics"],
        per_user=doc["per_user"], seconds_per_epoch=doc.get("seconds_per_epoch"),
        epochs_run=int(doc.get("epochs_run") or 0), best_epoch=doc.get("best_epoch"), config=doc.get("config", {}),
        recbole_version=doc.get("recbole_version", version), log_tail=tail, dataset=dataset,
        epoch_seconds=list(doc.get("epoch_seconds") or []), seconds_total=doc.get("seconds_total"),
        epoch_cpu_seconds=list(doc.get("epoch_cpu_seconds") or []),
        wall_seconds=wall, best_valid_score=doc.get("best_valid_score"),
        workdir="" if own_workdir else str(wd))
    for m, part in (doc.get("extra") or {}).items():
        result.extra[m] = dataclasses.replace(result, mode=m, metrics=part["metrics"], per_user=part["per_user"],
                                              extra={})
    if own_workdir:
        _remove_tree(wd)
    return result


def per_user_means(result: RecBoleResult, phase: str = "test") -> dict[str, float]:
    """The mean of each per-user list (equal to ``result.metrics[phase]`` to 1e-6)."""
    pu = result.per_user[phase]
    return {k: float(np.mean(v)) for k, v in pu.items() if k != "users" and len(v)}


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover - manual use: python -m kgplatform.eval.recbole DIR DATASET MODEL
    args = sys.argv[1:]
    if len(args) < 3:
        print("usage: python -m kgplatform.eval.recbole ATOMIC_DIR DATASET MODEL [full|uniN] [SEED] [EPOCHS]",
              file=sys.stderr)
        sys.exit(2)
    r = run_recbole(Path(args[0]), args[1], args[2], mode=args[3] if len(args) > 3 else "full",
                    seed=int(args[4]) if len(args) > 4 else 2020, epochs=int(args[5]) if len(args) > 5 else None)
    print(json.dumps(r.to_dict(per_user=False), indent=1, default=str))
