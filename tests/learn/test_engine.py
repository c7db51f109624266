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
