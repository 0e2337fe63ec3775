"""The training step as CUDA runs it, checked on the CPU: the fused Adam (which also runs here) skips
the update of a non-finite loss without the host reading it, the EMA does too, losses are read in
bursts with the same events as when read every step, and the data path is the same draw on any device."""

import pytest
import torch
from helpers import color_dataset, make_trainer

from fastdiff.train.trainer import EMA


def on_the_device_path(trainer, sync_every=4):
    """Switch a CPU trainer to the CUDA step: fused Adam, losses read every sync_every steps."""
    trainer.fused, trainer.sync_every = True, sync_every
    trainer.optimizer = torch.optim.Adam(trainer.model.parameters(), lr=trainer.config.lr, fused=True)
    return trainer


def step_events(trainer):
    events = []
    trainer.on_event = lambda e: events.append((e.kind, e.step, e.data.get("loss"))) if e.kind != "checkpoint" else None
    trainer.run()
    return events


def test_losses_read_in_bursts_give_the_same_events_and_weights(tmp_path):
    every_step = make_trainer(tmp_path, "a", epochs=2)
    events = step_events(every_step)
    bursts = make_trainer(tmp_path, "b", epochs=2)
    bursts.sync_every = 3
    assert step_events(bursts) == events
    assert [e[1] for e in events if e[0] == "step"] == list(range(1, 9))
    for key, value in every_step.model.state_dict().items():
        assert torch.equal(bursts.model.state_dict()[key], value), key


def test_the_device_path_trains(tmp_path):
    trainer = on_the_device_path(make_trainer(tmp_path, epochs=2))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    events = step_events(trainer)
    assert [e[1] for e in events if e[0] == "step"] == list(range(1, 9))
    assert all(e[2] > 0 for e in events if e[0] == "step")
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


def test_the_device_path_skips_non_finite_steps_and_stops_after_max_bad_steps(tmp_path, monkeypatch):
    trainer = on_the_device_path(make_trainer(tmp_path, max_bad_steps=3))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    ema_before = {k: v.clone() for k, v in trainer.ema.shadow.items()}
    forward = trainer.model.forward
    monkeypatch.setattr(trainer.model, "forward", lambda x, t, c=None: forward(x, t, c) * float("nan"))
    warnings = []
    trainer.on_event = lambda e: warnings.append(e) if e.kind == "warning" else None
    with pytest.raises(FloatingPointError, match="3 non-finite losses in a row at step 3"):
        trainer.run()
    assert [w.step for w in warnings] == [1, 2, 3]
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    assert all(torch.equal(ema_before[k], v) for k, v in trainer.ema.shadow.items())
    assert all(state["step"] == 0 for state in trainer.optimizer.state.values())


def test_masked_ema_update_is_the_plain_one_or_nothing():
    model = torch.nn.Linear(3, 2)
    plain, masked, skipped = EMA(model, 0.9), EMA(model, 0.9), EMA(model, 0.9)
    start = {k: v.clone() for k, v in plain.shadow.items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    plain.update(model, 5)
    masked.update(model, 5, torch.tensor(True))
    skipped.update(model, 5, torch.tensor(False))
    assert not torch.equal(plain.shadow["weight"], start["weight"])
    for key, value in plain.shadow.items():
        assert torch.allclose(masked.shadow[key], value)
        assert torch.equal(skipped.shadow[key], start[key])


def test_batches_are_the_same_draw_whatever_the_device():
    data = color_dataset(40)
    assert data.to(torch.device("cpu")).images is data.images
    generator = torch.Generator().manual_seed(5)
    order = torch.randperm(40, generator=generator)
    flips = [torch.rand(16, generator=generator) < 0.5 for _ in range(2)]  # one draw per batch
    for number, (x, labels) in enumerate(data.batches(16, torch.Generator().manual_seed(5))):
        index = order[16 * number : 16 * (number + 1)]
        expected = data.images[index].float().div(127.5).sub(1)
        expected = torch.where(flips[number][:, None, None, None], expected.flip(3), expected)
        assert torch.equal(x, expected) and torch.equal(labels, data.labels[index])
    assert number == 1
    meta = data.to(torch.device("meta"))
    x, labels = next(meta.batches(16, torch.Generator().manual_seed(5)))
    assert x.device.type == "meta" and labels.device.type == "meta" and x.shape == (16, 3, 32, 32)
