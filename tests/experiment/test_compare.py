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
                         out_dir=tmp_path, with_recbole=["pop"], recbole_config={"pop": {"train_batch_size": 512}},
                         log=lambda m: None, command="test")
    rows = {r["protocol"]: r for r in res.recbole}
    assert set(rows) == {"full", "sampled99"}
    assert {r["recbole_trained_for"] for r in rows.values()} == {"full"}
    # the setting reached RecBole (its final config; RecBole's default is 2048)
    assert all(r["recbole_options"] == {"train_batch_size": 512} for r in rows.values())
    for r in rows.values():
        assert r["differences"]["NDCG@10"]["users_paired"] == 80
    assert rows["sampled99"]["recbole"]["NDCG@10"] > rows["full"]["recbole"]["NDCG@10"]
    assert (tmp_path / "recbole" / "pop-full").is_dir() and not (tmp_path / "recbole" / "pop-uni99").exists()


def test_recbole_settings_may_not_change_the_shared_split_or_protocol():
    from kgplatform.experiment.compare import check_recbole_config

    check_recbole_config({"sasrec": {"MAX_ITEM_LIST_LENGTH": 20, "train_batch_size": 512}}, ["sasrec", "pop"])
    check_recbole_config(None, ["pop"])
    with pytest.raises(ConfigError, match="eval_args, seed cannot be set"):
        check_recbole_config({"sasrec": {"seed": 1, "eval_args": {}}}, ["sasrec"])
    with pytest.raises(ConfigError, match="names gru4rec, which is not in --with-recbole"):
        check_recbole_config({"gru4rec": {"MAX_ITEM_LIST_LENGTH": 20}}, ["sasrec"])


class _Summary:
    """The parts of a SeedSummary that the differences read: one seed, per-user test values in ``users`` order."""

    def __init__(self, name, users, values, valid=0.1):
        import numpy as np

        self.model_name, self._users, self._values = name, np.asarray(users), np.asarray([values], dtype=float)
        self.stats = {"valid": {"full": {"NDCG@10": (valid, 0.0)}}, "test": {"full": {"NDCG@10": (0.0, 0.0)}}}

    def users(self, phase="test"):
        return self._users

    def per_user(self, phase, protocol, metric):
        return self._values


def test_knowledge_pairs_are_also_measured_on_the_users_who_have_knowledge():
    import numpy as np
    import torch

    from kgplatform.experiment.compare import KNOWLEDGE_PAIR, knowledge_differences

    data = toy_data()
    n = data.num_users
    users = list(range(n))[::-1]  # evaluated in reverse index order: the mask must follow the summary's users
    has = torch.zeros(n, dtype=torch.bool)
    has[[0, 2, 4]] = True
    plain = np.zeros(n)
    with_k = np.where(np.isin(users, [0, 2, 4]), 1.0, -0.2)  # +1 on the knowledge users, −0.2 on the others
    rows = [_Summary("bpr", users, plain), _Summary("bpr:knowledge", users, with_k)]
    assert knowledge_differences(rows, data) == []  # the export read no knowledge
    data.user_knowledge_mask, data.user_knowledge_emb = has, torch.zeros(n, 4)
    got = knowledge_differences(rows, data, metrics=("NDCG@10",))
    assert len(got) == 1 and got[0]["a"] == "bpr:knowledge" and got[0]["b"] == "bpr"
    assert got[0]["why"] == KNOWLEDGE_PAIR and got[0]["users"] == f"users with fused knowledge (3 of {n})"
    assert got[0]["mean"] == pytest.approx(1.0)  # the all-user mean would be (3 − 0.2·(n − 3)) / n
    has[:] = False
    has[1] = True
    assert knowledge_differences(rows, data) == []  # one user is too few for an interval


def test_a_recbole_model_is_paired_with_the_row_named_for_it(tmp_path, monkeypatch):
    """``recbole_pairs`` pairs a RecBole model's per-user figures with a row of another name (e.g. RecBole's
    SASRec with LLM4SBR's SASRec backbone alone). RecBole itself is replaced by a fake that scores every user 0
    here (the real runs are the slow tests above and tests/eval/test_recbole.py)."""
    from kgplatform.experiment.compare import RECBOLE_NAMES

    data = toy_data(num_users=30, num_items=60, num_groups=3, seq_len=6, seed=0, kg=False, intents=False)
    users = [u.split(":", 1)[1] if ":" in u else u for u in data.user_ids]

    def fake_run(atomic, dataset, model, *, mode="full", seed=2020, epochs=None, config=None, workdir=None,
                 also_modes=()):
        def one(m):
            per = {"users": users, **{k: [0.0] * len(users) for k in ("NDCG@10", "HR@10")}}
            return rb.RecBoleResult(model=model, mode=m, seed=seed, metrics={"test": {"NDCG@10": 0.0}},
                                    per_user={"test": per}, seconds_per_epoch=1.0, epochs_run=1, best_epoch=1,
                                    config=dict(config or {}), recbole_version="fake")
        res = one(mode)
        res.extra = {m: one(m) for m in also_modes}
        return res

    monkeypatch.setattr(rb, "ensure_recbole", lambda venv=None: "fake")
    monkeypatch.setattr(rb, "run_recbole", fake_run)
    assert "bpr" in RECBOLE_NAMES
    train = {"device": "cpu", "convention": "recbole"}
    res = run_comparison(data, plan_rows(["pop"]), seeds=[1], train=train, out_dir=tmp_path / "a",
                         with_recbole=["bpr"], recbole_pairs={"bpr": "pop"}, log=lambda m: None, command="test")
    full = next(r for r in res.recbole if r["protocol"] == "full")
    ours = next(s for s in res.summaries if s.model_name == "pop")
    assert full["paired_with"] == "pop" and full["differences"]["NDCG@10"]["users_paired"] == 30
    # RecBole's side is 0 for every user, so the paired difference is our row's own mean
    assert full["differences"]["NDCG@10"]["mean"] == pytest.approx(ours.stats["test"]["full"]["NDCG@10"][0])
    # without a pairing, a RecBole model with no row of its name stays unpaired
    res = run_comparison(data, plan_rows(["pop"]), seeds=[1], train=train, out_dir=tmp_path / "b",
                         with_recbole=["bpr"], log=lambda m: None, command="test")
    assert all("differences" not in r and "paired_with" not in r for r in res.recbole)
    with pytest.raises(ConfigError, match="RecBole pairing names sasrec"):
        run_comparison(data, plan_rows(["pop"]), seeds=[1], train=train, out_dir=tmp_path / "c",
                       with_recbole=["bpr"], recbole_pairs={"sasrec": "pop"}, log=lambda m: None, command="test")
