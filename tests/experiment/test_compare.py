"""Comparison rows (any model's ablations) and RecBole side by side trained once for both protocols."""
import pytest

from kgplatform.data.devdata import toy_data
from kgplatform.errors import ConfigError
from kgplatform.eval import recbole as rb
from kgplatform.experiment.compare import plan_rows, run_comparison


def test_rows_take_any_models_ablations():
    rows = plan_rows(["sasrec", "persona-sasrec", "persona-sasrec:no_rerank"], ["no_aug", "persona-sasrec:anonymous"])
    by = {r.name: r for r in rows}
    assert by["persona-sasrec:no_rerank"].model_options["rerank"] is False
    assert by["persona-sasrec:anonymous"].model_options["anonymous"] is True
    assert by["ikgr:no_aug"].model_options["use_intents"] is False  # a bare name stays ikgr's
    with pytest.raises(ConfigError, match="has no ablations"):
        plan_rows(["sasrec:no_rerank"])
    with pytest.raises(ConfigError, match="unknown ablation"):
        plan_rows(["persona-sasrec:no_aug"])


@pytest.mark.slow
def test_recbole_trains_once_for_both_protocols(tmp_path):
    venv = rb.default_venv()
    if not (venv / "bin" / "python").exists():
        pytest.skip(f"no RecBole venv at {venv}")
    data = toy_data(num_users=80, num_items=200, num_groups=4, seq_len=8, seed=0, kg=False, intents=False)
    res = run_comparison(data, plan_rows(["pop"]), seeds=[1], train={"device": "cpu", "convention": "recbole"},
                         out_dir=tmp_path, with_recbole=["pop"], log=lambda m: None, command="test")
    rows = {r["protocol"]: r for r in res.recbole}
    assert set(rows) == {"full", "sampled99"}
    assert {r["recbole_trained_for"] for r in rows.values()} == {"full"}
    for r in rows.values():
        assert r["differences"]["NDCG@10"]["users_paired"] == 80
    assert rows["sampled99"]["recbole"]["NDCG@10"] > rows["full"]["recbole"]["NDCG@10"]
    assert (tmp_path / "recbole" / "pop-full").is_dir() and not (tmp_path / "recbole" / "pop-uni99").exists()
