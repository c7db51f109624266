"""Early stopping waits for its warm-up; a network that never left the uniform guess is flagged."""

import math

import pytest
import torch

from sdssclr.learn.engine import CHANCE_TOLERANCE, Schedule, fit


def _frozen_at_chance(n_classes=3):
    """A linear layer with zero weights and no learning rate: its logits are all zero, so its
    validation loss is exactly ln K at every epoch."""
    net = torch.nn.Linear(4, n_classes)
    torch.nn.init.zeros_(net.weight)
    torch.nn.init.zeros_(net.bias)
    return net


def test_warm_up_holds_off_early_stopping_and_at_chance_is_flagged():
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    y = torch.arange(64) % 3
    common = dict(inputs=(x,), y=y, val_inputs=(x[:30],), val_y=y[:30], device=torch.device("cpu"), seed=0)
    # batch 16 over 64 objects: 4 steps per epoch; patience 1 stops at the first epoch without improvement
    eager = fit(_frozen_at_chance(), schedule=Schedule(lr=0.0, batch_size=16, max_epochs=20, patience=1), **common)
    patient = fit(_frozen_at_chance(), schedule=Schedule(lr=0.0, batch_size=16, max_epochs=20, patience=1,
                                                         warmup_steps=24), **common)
    assert eager["epochs"] == 1
    assert patient["epochs"] == 6  # 24 warm-up steps are 6 epochs; the 6th is the first that counts
    assert eager["best_val_loss"] == pytest.approx(math.log(3))
    assert eager["at_chance"] and patient["at_chance"]


def test_a_network_that_learns_is_not_at_chance():
    y = torch.arange(64) % 3
    x = torch.nn.functional.one_hot(y, 4).float() + 0.01 * torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    r = fit(torch.nn.Linear(4, 3), (x,), y, (x[:30],), y[:30], device=torch.device("cpu"), seed=0,
            schedule=Schedule(lr=0.05, batch_size=16, max_epochs=40, patience=5))
    assert not r["at_chance"] and r["best_val_loss"] < math.log(3) - 10 * CHANCE_TOLERANCE


def test_a_network_at_chance_is_retried_once_with_a_longer_schedule(monkeypatch, caplog):
    import sdssclr.learn.engine as engine

    calls = []

    def fake_fit(model, *args, schedule, name, **kw):
        calls.append((name, schedule.max_epochs, schedule.warmup_steps))
        return {"epochs": schedule.max_epochs, "best_epoch": 1, "best_val_loss": 0.5, "history": [],
                "at_chance": name in ("margnet CNN", "stuck", "stuck retry")}

    monkeypatch.setattr(engine, "fit", fake_fit)
    schedule = engine.Schedule(lr=1e-3, batch_size=8, max_epochs=10, patience=2, warmup_steps=40)
    report = engine.fit_or_retry(None, schedule=schedule, name="margnet CNN")
    assert calls == [("margnet CNN", 10, 40), ("margnet CNN retry", 20, 80)]
    assert report["retried"] and not report["at_chance"]
    assert "retrying once with a longer schedule (20 epochs, warm-up 80 steps)" in caplog.text
    calls.clear()
    assert "retried" not in engine.fit_or_retry(None, schedule=schedule, name="learns")  # no retry needed
    assert calls == [("learns", 10, 40)]
    calls.clear()
    stuck = engine.fit_or_retry(None, schedule=schedule, name="stuck")  # still at chance: the run fails later
    assert stuck["at_chance"] and stuck["retried"] and len(calls) == 2
