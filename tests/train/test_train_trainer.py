"""The Trainer: result object, run records, checkpoints, early stopping, recommend, seeds."""
import json

import pytest
import torch

from kgplatform.errors import TrainingError
from kgplatform.data import leave_one_out, training_view
from kgplatform.eval import FULL
from kgplatform.train import TrainConfig, Trainer, load_checkpoint, run_seeds
from kgplatform.data.devdata import toy_data
from kgplatform.train.samplers import PairSampler, SequenceSampler

BASE = dict(device="cpu", num_negatives=10, epochs=3, batch_size=64, lr=0.02, eval_every=1)


@pytest.fixture(scope="module")
def toy():
    return toy_data(num_users=40, num_items=30, seq_len=7, seed=4)


def quiet(**kw):
    return Trainer(TrainConfig(**(BASE | kw)), log=lambda m: None)


def test_result_object(toy, tmp_path):
    res = quiet(run_dir=tmp_path, cache_dir=tmp_path / "cands").fit("bpr", toy, {"embedding_dim": 8})
    assert res.model_config["embedding_dim"] == 8 and res.train_config["epochs"] == 3
    assert res.seed == 2024 and res.data_checksum == toy.checksum()
    assert {"torch", "torch_geometric", "python"} <= set(res.versions)
    for phase in ("valid", "test"):
        assert set(res.metrics[phase]) == {FULL, "sampled10"}
        assert {"HR@1", "HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR"} <= set(res.metrics[phase][FULL])
    assert res.user_embeddings.shape == (40, 8) and res.item_embeddings.shape == (30, 8)
    assert len(res.log) == 3 and res.log[0].valid is not None and res.seconds_per_epoch > 0
    run = tmp_path / res.run_id
    record = json.loads((run / "run.json").read_text())
    assert record["metrics"]["test"][FULL]["NDCG@10"] == pytest.approx(res.metrics["test"][FULL]["NDCG@10"])
    assert len((run / "log.jsonl").read_text().splitlines()) == 3
    assert list((tmp_path / "cands").iterdir())
    # checkpoint round trip scores identically
    net = load_checkpoint(res.checkpoint_path, toy)
    u = torch.arange(5)
    assert torch.allclose(net.full_scores(u), res.model.full_scores(u))


def test_recommend_excludes_seen(toy):
    res = quiet(epochs=1).fit("pop", toy)
    items, scores = res.recommend([0, 1], k=5)
    assert items.shape == (2, 5)
    for row, u in zip(items.tolist(), (0, 1)):
        assert not set(row) & set(toy.sequence(u).tolist())
    items, _ = res.recommend(0, k=toy.num_items, exclude_seen=False)
    assert set(items[0].tolist()) == set(range(toy.num_items))


def test_sequential_user_embeddings_use_the_full_sequence(toy):
    res = quiet(epochs=1, batch_size=16).fit("sasrec", toy, {"hidden_size": 8, "inner_size": 16, "max_seq_len": 8})
    assert res.user_embeddings.shape == (40, 8)


def test_same_seed_same_result(toy):
    a = quiet().fit("bpr", toy, {"embedding_dim": 8})
    b = quiet().fit("bpr", toy, {"embedding_dim": 8})
    assert a.metrics == b.metrics
    c = quiet(seed=7).fit("bpr", toy, {"embedding_dim": 8})
    assert c.metrics != a.metrics


def test_early_stopping(toy):
    res = quiet(epochs=50, lr=1e-12, patience=2).fit("bpr", toy)
    assert res.epochs_run == 3 and res.best_epoch == 1


def test_cuda_request_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(TrainingError):
        quiet(device="cuda").fit("pop", toy_data())


def test_lambda_is_tuned_on_validation(toy):
    res = quiet(epochs=2, batch_size=128).fit("ikgr", toy, {"embedding_dim": 8, "lambda_grid": (0.0, 0.5)})
    assert res.eval_params["lam"] in (0.0, 0.5)


def test_run_seeds_mean_std(toy):
    summary = run_seeds("bpr", toy, TrainConfig(**(BASE | {"epochs": 1})), {"embedding_dim": 4}, seeds=(1, 2, 3),
                        log=lambda m: None)
    mean, std = summary.stats["test"][FULL]["NDCG@10"]
    vals = [r.metrics["test"][FULL]["NDCG@10"] for r in summary.results]
    assert mean == pytest.approx(sum(vals) / 3) and std >= 0
    assert "±" in summary.format()


def test_pair_sampler_negatives_are_unseen(toy):
    s = leave_one_out(toy)
    sampler = PairSampler(training_view(toy, s), 32, torch.Generator().manual_seed(0))
    seen = set(zip(*[t.tolist() for t in s.train_pairs()]))
    n = 0
    for b in sampler:
        assert not any((u, j) in seen for u, j in zip(b["users"].tolist(), b["neg"].tolist()))
        n += b["users"].numel()
    assert n == s.num_train


def test_sequence_sampler_covers_every_step_once():
    d = toy_data(num_users=5, num_items=30, seq_len=12, seed=0, sequential=True)
    s = leave_one_out(d)
    steps = []
    for b in SequenceSampler(training_view(d, s), max_len=4, batch_size=3, generator=torch.Generator().manual_seed(0)):
        m = b["target"] >= 0
        for u, row_s, row_t, row_m in zip(b["users"].tolist(), b["seq"].tolist(), b["target"].tolist(), m.tolist()):
            steps += [(u, a, t) for a, t, k in zip(row_s, row_t, row_m) if k]
    want = []
    for u in range(5):
        tr = d.sequence(u).tolist()[:-2]
        want += [(u, tr[k], tr[k + 1]) for k in range(len(tr) - 1)]
    assert sorted(steps) == sorted(want)
