"""RecBole 1.2.1 in its own venv (kgplatform.eval.recbole): clear errors without it, a real run with it."""
from __future__ import annotations

import collections
import subprocess
import sys
from pathlib import Path

import pytest

from kgplatform.errors import ConfigError, EnvironmentMissing, KgpError
from kgplatform.eval import recbole as rb

METRICS = [f"{m}@{k}" for m in ("HR", "NDCG", "MRR") for k in (1, 5, 10, 20)]


def _write_tiny(src: Path, out: Path, name: str = "tiny") -> dict[str, int]:
    """RecBole atomic ``<out>/<name>/<name>.inter`` from the tiny MovieLens file; returns interactions per user.

    The one user who rated all 200 items is left out: RecBole's negative sampler refuses a user with no
    item left to sample ("Some users have interacted with all items").
    """
    rows = [ln.rstrip("\n").split("\t") for ln in src.read_text(encoding="utf-8").splitlines()[1:] if ln.strip()]
    per_user = collections.Counter(r[0] for r in rows)
    rows = [r for r in rows if per_user[r[0]] < 150]
    folder = out / name
    folder.mkdir(parents=True)
    with (folder / f"{name}.inter").open("w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    return dict(collections.Counter(r[0] for r in rows))


# ------------------------------------------------------------------------------------------ without RecBole
def test_no_recbole_in_venv_is_one_clear_error(tmp_path, data_dir):
    _write_tiny(data_dir / "movielens-100k-tiny" / "test.inter", tmp_path / "atomic")
    missing = tmp_path / "no-such-venv"
    with pytest.raises(EnvironmentMissing) as ei:
        rb.run_recbole(tmp_path / "atomic", "tiny", "Pop", venv=missing)
    assert str(ei.value).count("\n") == 0 and str(missing) in str(ei.value)
    assert isinstance(ei.value, KgpError) and "setup_recbole.sh" in ei.value.hint and ei.value.exit_code == 3

    # a real interpreter without RecBole (a bare venv, no pip: fast)
    bare = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    with pytest.raises(EnvironmentMissing) as ei:
        rb.run_recbole(tmp_path / "atomic", "tiny", "Pop", venv=bare)
    msg = str(ei.value)
    assert "\n" not in msg and "RecBole cannot be imported" in msg and "No module named 'recbole'" in msg
    assert "setup_recbole.sh" in ei.value.hint


def test_cli_shows_error_and_hint_without_traceback(tmp_path, data_dir, monkeypatch, capsys):
    from kgplatform.cli import main as cli

    _write_tiny(data_dir / "movielens-100k-tiny" / "test.inter", tmp_path / "atomic")
    monkeypatch.delenv("KGP_DEBUG", raising=False)
    monkeypatch.setattr(cli, "app", lambda **kw: rb.run_recbole(tmp_path / "atomic", "tiny", "BPR",
                                                            venv=tmp_path / "nothing-here"))
    with pytest.raises(SystemExit) as ei:
        cli.main()
    assert ei.value.code == EnvironmentMissing.exit_code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("Error: no RecBole virtualenv") and lines[1].startswith("Hint: ")
    assert "Traceback" not in err


def test_bad_arguments_are_config_errors(tmp_path, data_dir):
    _write_tiny(data_dir / "movielens-100k-tiny" / "test.inter", tmp_path / "atomic")
    with pytest.raises(ConfigError, match="mode"):
        rb.run_recbole(tmp_path / "atomic", "tiny", "Pop", mode="sampled99")
    with pytest.raises(ConfigError, match="no RecBole atomic file"):
        rb.run_recbole(tmp_path / "atomic", "other", "Pop")
    with pytest.raises(ConfigError, match="epochs"):
        rb.run_recbole(tmp_path / "atomic", "tiny", "Pop", epochs=0)


def test_worker_per_user_metrics_match_recbole_definitions():
    """The worker's per-row HR/NDCG/MRR from a rec.topk matrix, by hand (runs with the main venv's NumPy)."""
    import importlib.util

    import numpy as np

    spec = importlib.util.spec_from_file_location("_rbw", rb.WORKER)
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    topk = np.zeros((3, 21), dtype=np.int64)
    topk[0, 0] = 1  # hit at rank 1
    topk[1, 6] = 1  # hit at rank 7
    topk[:, 20] = 1  # one positive each; row 2 has no hit in the top 20
    v = worker.per_user_from_topk(topk)
    assert v["HR@1"].tolist() == [1, 0, 0] and v["HR@10"].tolist() == [1, 1, 0]
    assert v["MRR@5"].tolist() == [1, 0, 0] and v["MRR@10"][1] == pytest.approx(1 / 7)
    assert v["NDCG@10"][1] == pytest.approx(1 / np.log2(8)) and v["NDCG@20"][2] == 0
    # two positives: IDCG over two positions
    two = np.zeros((1, 21), dtype=np.int64)
    two[0, 1], two[0, 20] = 1, 2
    assert worker.per_user_from_topk(two)["NDCG@5"][0] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))


# --------------------------------------------------------------------------------------------- with RecBole
@pytest.fixture(scope="module")
def recbole_venv() -> Path:
    venv = rb.default_venv()
    if not (venv / "bin" / "python").exists():
        pytest.skip(f"no RecBole venv at {venv} (run scripts/setup_recbole.sh to enable the real RecBole runs)")
    rb.ensure_recbole(venv)
    return venv


@pytest.mark.slow
@pytest.mark.parametrize("model,epochs", [("Pop", None), ("BPR", 2)])
def test_real_run_per_user_metrics(recbole_venv, tmp_path, data_dir, model, epochs):
    counts = _write_tiny(data_dir / "movielens-100k-tiny" / "test.inter", tmp_path / "atomic")
    work = tmp_path / "work"
    res = rb.run_recbole(tmp_path / "atomic", "tiny", model, mode="full", seed=2020, epochs=epochs,
                         workdir=work, timeout_s=300, venv=recbole_venv)

    assert res.model == model and res.mode == "full" and res.seed == 2020 and res.recbole_version == "1.2.1"
    for phase in ("valid", "test"):
        assert set(METRICS) <= set(res.metrics[phase])
        pu = res.per_user[phase]
        # the worker checked it to 1e-6 already; check again on this side of the JSON
        means = rb.per_user_means(res, phase)
        for name in METRICS:
            assert len(pu[name]) == len(pu["users"])
            assert means[name] == pytest.approx(res.metrics[phase][name], abs=1e-6)
        assert all(h in (0.0, 1.0) for h in pu["HR@10"])
        assert all(n <= h + 1e-12 for n, h in zip(pu["NDCG@10"], pu["HR@10"]))
        assert len(set(pu["users"])) == len(pu["users"])
    # leave-one-out by time order: tested = users with >= 2 interactions, validated = users with >= 3
    assert set(res.per_user["test"]["users"]) == {u for u, n in counts.items() if n >= 2}
    assert set(res.per_user["valid"]["users"]) == {u for u, n in counts.items() if n >= 3}
    assert res.values_by_user("test", "NDCG@10").keys() == set(res.per_user["test"]["users"])

    assert res.epochs_run == (1 if model == "Pop" else 2)  # Pop: RecBole's TraditionalTrainer, one pass
    assert 1 <= res.best_epoch <= res.epochs_run and res.seconds_per_epoch > 0
    assert res.config["eval_args"]["split"] == {"LS": "valid_and_test"} and res.config["eval_args"]["order"] == "TO"
    assert res.config["valid_metric"] == "NDCG@10"
    # RecBole's logs land in the workdir, not in the checkout
    assert (work / "log").is_dir() and (work / "log_tensorboard").is_dir()
    assert "valid result" in res.log_tail


@pytest.mark.slow
def test_one_training_evaluated_under_both_protocols(recbole_venv, tmp_path, data_dir):
    """``also_modes``: BPR trained once (early stopping on full-ranking validation), tested under full and uni99
    with RecBole's own uni99 dataloaders: the same users, the same training, per-user values checked."""
    counts = _write_tiny(data_dir / "movielens-100k-tiny" / "test.inter", tmp_path / "atomic")
    res = rb.run_recbole(tmp_path / "atomic", "tiny", "BPR", mode="full", seed=2020, epochs=2, workdir=tmp_path / "w",
                         timeout_s=300, venv=recbole_venv, also_modes=("uni99",))
    assert set(res.extra) == {"uni99"}
    uni = res.extra["uni99"]
    assert uni.mode == "uni99" and uni.epochs_run == res.epochs_run and uni.seconds_per_epoch == res.seconds_per_epoch
    for phase in ("valid", "test"):
        assert set(uni.per_user[phase]["users"]) == set(res.per_user[phase]["users"])
        for name in METRICS:
            assert rb.per_user_means(uni, phase)[name] == pytest.approx(uni.metrics[phase][name], abs=1e-6)
    assert set(uni.per_user["test"]["users"]) == {u for u, n in counts.items() if n >= 2}
    # 100 candidates are easier than the whole catalogue
    assert uni.metrics["test"]["NDCG@10"] > res.metrics["test"]["NDCG@10"]
    with pytest.raises(ConfigError):
        rb.run_recbole(tmp_path / "atomic", "tiny", "BPR", mode="full", also_modes=("full",), venv=recbole_venv)
