"""``TrainConfig.ema_decay``: the Trainer validates, keeps and returns an exponential moving average of the
parameters, updated after every step, while training itself follows the raw weights unchanged."""
import pytest
import torch

import kgplatform.train.trainer as trainer_mod
from kgplatform.data.devdata import toy_data
from kgplatform.errors import TrainingError
from kgplatform.train import TrainConfig, Trainer
from kgplatform.train.trainer import _ParamAverage


def test_param_average_updates_swaps_and_restores():
    net = torch.nn.Linear(3, 2)
    start = [p.detach().clone() for p in net.parameters()]
    avg = _ParamAverage(net, 0.75)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(4.0)
    avg.update()
    live = avg.swap_in()
    for p, s in zip(net.parameters(), start):
        assert torch.allclose(p, s + 1.0)  # 0.75 * s + 0.25 * (s + 4)
    avg.restore(live)
    for p, s in zip(net.parameters(), start):
        assert torch.allclose(p, s + 4.0)


def _steps(monkeypatch):
    """Record the parameters after every optimiser step of the Trainer's loop."""
    seen: list[list[torch.Tensor]] = []
    make = trainer_mod.make_adam

    def recording(net, cfg, device):
        opt = make(net, cfg, device)
        step = opt.step

        def wrapped(*a, **k):
            out = step(*a, **k)
            seen.append([p.detach().clone() for p in net.parameters()])
            return out
        opt.step = wrapped
        return opt
    monkeypatch.setattr(trainer_mod, "make_adam", recording)
    return seen


@pytest.mark.parametrize("model", ["bpr", "ikgr"])
def test_trainer_returns_the_average_of_the_raw_trajectory(monkeypatch, model):
    toy = toy_data(num_users=30, num_items=20, seq_len=6, seed=2, text_dim=12)
    base = dict(device="cpu", epochs=1, eval_every=1, batch_size=32, seed=3, tune=False, num_negatives=10)
    seen = _steps(monkeypatch)
    trainer = Trainer(TrainConfig(**base), log=lambda m: None)
    run = trainer.prepare(model, toy)
    init = [p.detach().clone() for p in run.net.parameters()]
    trainer.train_loop(run)
    raw = list(seen)
    assert len(raw) > 3

    seen.clear()
    beta = 0.6
    trainer = Trainer(TrainConfig(**base, ema_decay=beta), log=lambda m: None)
    run = trainer.prepare(model, toy)
    trainer.train_loop(run)
    for a, b in zip(raw, seen):  # the average does not steer training
        for x, y in zip(a, b):
            assert torch.allclose(x, y, atol=1e-6), float((x - y).abs().max())
    expect = init
    for step in raw:
        expect = [beta * e + (1 - beta) * p for e, p in zip(expect, step)]
    for p, e in zip(run.net.parameters(), expect):  # epoch 1 is the best (only) one: its averaged weights
        assert torch.allclose(p, e, atol=1e-6)


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, "x"])
def test_bad_decay_is_refused(value):
    with pytest.raises(TrainingError, match="ema_decay"):
        TrainConfig(ema_decay=value).validate()
