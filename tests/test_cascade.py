"""The LowDiff cascade on tiny models: shapes at every resolution and stage count, per-resolution
training touching only that resolution's blocks, the truncated sampling loop, equivalence of one
stage with the plain sampler, checkpoints, effective NFE and the CLI."""

import dataclasses
import json

import pytest
import torch
from helpers import TINY, color_dataset

from fastdiff.bench.cascade import ranked, stage_candidates
from fastdiff.cli import main
from fastdiff.config import CascadeConfig, DiffusionConfig, ModelConfig
from fastdiff.diffusion.cascade import Stage, default_stages
from fastdiff.diffusion.guidance import GuidedDenoiser
from fastdiff.diffusion.losses import cascade_loss, diffusion_loss, noisy_condition
from fastdiff.diffusion.rng import ImageRNG
from fastdiff.diffusion.samplers import SAMPLERS, timestep_grid
from fastdiff.diffusion.sampling import make_plan, sample, sample_steps
from fastdiff.diffusion.schedule import NoiseSchedule
from fastdiff.eval.cost import effective_nfe, measure_step_latency, stage_nfe
from fastdiff.nn.cascade import CascadeUNet, parameter_overhead
from fastdiff.nn.checkpoint import load_model, save_model
from fastdiff.nn.unet import UNet
from fastdiff.train.trainer import Trainer

SCHEDULE = NoiseSchedule(DiffusionConfig(num_timesteps=50))
LABELS = torch.tensor([1, 7])


def randomized(model):
    """Random weights everywhere, also in the layers that start at zero, so that every path matters."""
    torch.manual_seed(0)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return model.eval()


@pytest.fixture
def cascade():
    return randomized(CascadeUNet(ModelConfig(**TINY), CascadeConfig((8, 16, 32))))


def io_parameters(model, size):
    """The resolution-specific layers of one resolution, by name."""
    if size == model.config.image_size:
        names = ("conv_in.", "conv_out.", f"conditions.{size}.")
    else:
        names = (f"inputs.{size}.", f"outputs.{size}.", f"conditions.{size}.")
    return {k for k, _ in model.named_parameters() if k.startswith(names)}


def test_network_shapes_at_every_resolution(cascade):
    t = torch.tensor([3, 40])
    for size in (8, 16, 32):
        x_t = torch.randn(2, 3, size, size)
        condition = None if size == 8 else torch.randn(2, 3, size, size)
        assert cascade(x_t, t, LABELS, condition).shape == x_t.shape
        assert cascade(x_t, t).shape == x_t.shape  # unconditioned and no condition
    with pytest.raises(ValueError, match="not 4x4"):
        cascade(torch.randn(2, 3, 4, 4), t)
    with pytest.raises(ValueError, match="must end at 32"):
        CascadeUNet(ModelConfig(**TINY), CascadeConfig((8, 16)))


def test_plain_weights_keep_their_names_and_the_overhead_is_the_added_layers():
    config = ModelConfig(**TINY)
    plain, cascade = UNet(config), CascadeUNet(config, CascadeConfig())
    shapes = {k: v.shape for k, v in cascade.state_dict().items()}
    assert all(shapes[k] == v.shape for k, v in plain.state_dict().items())
    added = sum(p.numel() for k, p in cascade.named_parameters() if k not in plain.state_dict())
    extra, fraction = parameter_overhead(config, CascadeConfig())
    assert extra == added and fraction == pytest.approx(added / sum(p.numel() for p in plain.parameters()))
    assert parameter_overhead(ModelConfig(), CascadeConfig())[1] < 0.02  # n_feat = 64: about 1%


@pytest.mark.parametrize("size", [8, 16, 32])
def test_a_step_at_one_resolution_updates_only_the_blocks_it_uses(cascade, size):
    x0 = torch.rand(4, 3, 32, 32) * 2 - 1
    low = {16: 8, 32: 16}.get(size)
    generator = torch.Generator().manual_seed(0)
    condition = (
        None
        if low is None
        else noisy_condition(SCHEDULE, torch.nn.functional.interpolate(x0, size=low, mode="area"), size, generator, 0.0)
    )
    cascade.train()
    loss = diffusion_loss(
        cascade,
        SCHEDULE,
        torch.nn.functional.interpolate(x0, size=size, mode="area"),
        torch.arange(4),
        generator,
        0.1,
        **({} if condition is None else {"condition": condition}),
    )
    loss.backward()
    grads = {k for k, p in cascade.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    other_io = set().union(*(io_parameters(cascade, s) for s in (8, 16, 32) if s != size))
    assert io_parameters(cascade, size) <= grads and not grads & other_io
    outer = {8: ("enc1.", "dec1.", "down1.", "enc2.", "dec2.", "down2."), 16: ("enc1.", "dec1.", "down1."), 32: ()}
    assert not any(k.startswith(outer[size]) for k in grads)  # blocks above this resolution stay idle
    assert any(k.startswith("mid.") for k in grads)  # the shared bottleneck learns at every resolution
    before = {k: p.detach().clone() for k, p in cascade.named_parameters()}
    torch.optim.Adam(cascade.parameters(), lr=1e-3).step()
    changed = {k for k, p in cascade.named_parameters() if not torch.equal(p, before[k])}
    assert changed == grads


def test_cascade_loss_sums_one_term_per_resolution_and_reaches_every_io_layer(cascade):
    x0 = torch.rand(4, 3, 32, 32) * 2 - 1
    loss = cascade_loss(cascade, SCHEDULE, x0, torch.arange(4), torch.Generator().manual_seed(0), 0.1)
    loss.backward()
    grads = {k for k, p in cascade.named_parameters() if p.grad is not None}
    assert set().union(*(io_parameters(cascade, s) for s in (8, 16, 32))) <= grads
    assert loss.item() > 1.5  # three MSE terms of roughly 1 each (an untrained net)


def test_condition_is_a_noisy_upsampled_low_resolution_image():
    low = torch.ones(64, 3, 8, 8)
    condition = noisy_condition(SCHEDULE, low, 16, torch.Generator().manual_seed(0), 0.0)
    assert condition.shape == (64, 3, 16, 16)
    assert condition.std(dim=(1, 2, 3)).max() > 0.1  # independent noise at a random level
    dropped = noisy_condition(SCHEDULE, low, 16, torch.Generator().manual_seed(0), 1.0)
    assert torch.equal(dropped, torch.zeros_like(dropped))


@pytest.mark.parametrize("num_stages", [1, 2, 3])
def test_truncated_sampling_visits_the_configured_stages_and_steps(cascade, num_stages):
    stages = [Stage(8, "ddim", 20, 11), Stage(16, "dpm++", 12, 5, 40), Stage(32, "ddpm", 6, None, 40)][-num_stages:]
    if num_stages == 2:
        stages[0].truncate = 5  # the 16x16 stage now starts the cascade
    plan = make_plan(cascade, SCHEDULE, stages=stages)
    records = list(sample_steps(cascade, SCHEDULE, LABELS, [0, 1], plan))
    visited = [(r.stage, r.resolution) for r in records]
    assert visited == [(i, s.resolution) for i, s in enumerate(stages) for _ in range(s.nfe)]
    assert [r.index for r in records] == list(range(len(records)))
    assert all(r.num_steps == len(records) == sum(stage_nfe(stages).values()) for r in records)
    for r in records:
        assert r.x_t.shape == r.x0.shape == (2, 3, r.resolution, r.resolution)
    for i, stage in enumerate(stages):  # each stage walks its own grid from t_start, cut at the truncation
        grid = timestep_grid(50, stage.num_steps, stage.t_start)
        assert [r.t for r in records if r.stage == i] == grid[: stage.nfe] and grid[0] == (stage.t_start or 49)
    assert sample(cascade, SCHEDULE, LABELS, [0, 1], plan).shape == (2, 3, 32, 32)


def test_default_stages_follow_the_paper_ratios(cascade):
    schedule = NoiseSchedule(DiffusionConfig())
    three = default_stages(3, cascade, schedule)
    assert [(s.resolution, s.num_steps, s.truncate) for s in three] == [(8, 50, 27), (16, 35, 19), (32, 25, None)]
    assert three[0].t_start is None and three[1].t_start == three[2].t_start < 499  # narrower range when conditioned
    assert [s.resolution for s in default_stages(2, cascade, schedule)] == [16, 32]
    assert default_stages(1, cascade, schedule) == [Stage(32, "ddim", 50)]
    with pytest.raises(ValueError, match="plain model"):
        default_stages(2, UNet(ModelConfig(**TINY)), schedule)


def test_one_stage_equals_the_plain_sampler_on_the_same_weights():
    plain = randomized(UNet(ModelConfig(**TINY)))
    x_T = ImageRNG([3, 4]).randn(3, 32, 32)
    expected = list(SAMPLERS["ddim"](GuidedDenoiser(plain, LABELS, 2.0), SCHEDULE, x_T, 10))
    got = list(sample_steps(plain, SCHEDULE, LABELS, [3, 4], make_plan(plain, SCHEDULE, "ddim", 10, 2.0)))
    assert all(torch.equal(a.x_t, b.x_t) and a.t == b.t for a, b in zip(expected, got)) and len(got) == 10
    # A cascade warm-started from the plain weights computes the plain model at full size.
    cascade = CascadeUNet(plain.config, CascadeConfig()).eval()
    cascade.load_state_dict(plain.state_dict(), strict=False)
    images = sample(cascade, SCHEDULE, LABELS, [3, 4], make_plan(cascade, SCHEDULE))
    assert torch.equal(images, sample(plain, SCHEDULE, LABELS, [3, 4], make_plan(plain, SCHEDULE)))


def test_cascade_checkpoint_round_trip(cascade, tmp_path):
    save_model(
        tmp_path / "c",
        cascade.state_dict(),
        cascade.config,
        SCHEDULE.config,
        dtype=torch.float32,
        cascade_config=cascade.cascade,
    )
    loaded, diffusion_config, _ = load_model(tmp_path / "c")
    assert isinstance(loaded, CascadeUNet) and loaded.cascade == cascade.cascade
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in cascade.state_dict().items())
    save_model(tmp_path / "p", UNet(cascade.config).state_dict(), cascade.config, SCHEDULE.config)
    assert "cascade" not in json.loads((tmp_path / "p" / "config.json").read_text())
    assert type(load_model(tmp_path / "p")[0]) is UNet


@pytest.mark.slow
def test_trainer_trains_a_cascade_and_warm_starts_it_from_a_plain_run(tmp_path, plain_run):
    config = plain_run.config
    trainer = Trainer(
        color_dataset(),
        tmp_path / "cascade",
        config,
        ModelConfig(n_feat=8),
        init=plain_run.out_dir,
        cascade_config=CascadeConfig(),
    )
    assert trainer.loss.func is cascade_loss and trainer.loss.keywords == {"min_snr_gamma": config.min_snr_gamma}
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert all(torch.equal(start[k], v.half().float()) for k, v in plain_run.ema.shadow.items())
    trainer.run()
    model, _, _ = load_model(tmp_path / "cascade")
    assert isinstance(model, CascadeUNet) and model.cascade == CascadeConfig()
    assert not torch.equal(start["inputs.8.weight"], trainer.model.state_dict()["inputs.8.weight"])
    assert trainer.preview().exists()  # all three stages, frames enlarged to 32x32
    resumed = Trainer(
        color_dataset(),
        tmp_path / "cascade",
        config,
        ModelConfig(n_feat=8),
        resume=True,
        cascade_config=CascadeConfig(),
    )
    assert resumed.step == trainer.step


def test_freeze_base_trains_only_the_added_layers_and_needs_a_warm_start(tmp_path, plain_run):
    frozen = dataclasses.replace(plain_run.config, freeze_base=True)
    trainer = Trainer(
        color_dataset(),
        tmp_path / "cascade",
        frozen,
        ModelConfig(n_feat=8),
        init=plain_run.out_dir,
        cascade_config=CascadeConfig(),
    )
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run()
    plain_names = set(UNet(trainer.model_config).state_dict())
    changed = {k for k, v in trainer.model.state_dict().items() if not torch.equal(start[k], v)}
    assert changed and not changed & plain_names
    assert {"inputs.8.weight", "conditions.32.weight", "resolution_embedding.weight"} <= changed
    # the full size without a condition is still the plain model: only the conditioned stages changed
    plain, _, _ = load_model(plain_run.out_dir)
    full_size = trainer.model.resolution_embedding.weight[:, -1]
    assert torch.equal(full_size, torch.zeros_like(full_size))
    x, t, labels = torch.randn(2, 3, 32, 32), torch.tensor([10, 40]), torch.tensor([0, 1])
    with torch.no_grad():
        assert torch.allclose(trainer.model.eval()(x, t, labels), plain.float()(x, t, labels), atol=1e-5)
    with pytest.raises(ValueError, match="needs a warm start"):
        Trainer(color_dataset(), tmp_path / "scratch", frozen, ModelConfig(n_feat=8), cascade_config=CascadeConfig())
    with pytest.raises(ValueError, match="nothing to train"):
        Trainer(color_dataset(), tmp_path / "again", frozen, ModelConfig(n_feat=8), init=plain_run.out_dir)


def test_effective_nfe_scales_low_resolution_steps_by_latency():
    # The paper's CIFAR-10 stages (18, 13, 17 NFEs) with latencies 0.1 and 0.2 of the 32x32 one:
    # 17 + 1.8 + 2.6 = 21.4 -> 22, the paper's effective NFE.
    assert effective_nfe({8: 18, 16: 13, 32: 17}, {8: 0.1, 16: 0.2, 32: 1.0}) == 22
    assert effective_nfe({16: 10, 32: 17}, {16: 0.3, 32: 1.0}) == 20  # exactly 20, no float round-up
    assert effective_nfe({32: 50}, {32: 0.004}) == 50


def test_step_latency_is_measured_for_every_resolution(cascade):
    latency = measure_step_latency(cascade, batch_size=2, repeats=1)
    assert sorted(latency) == [8, 16, 32] and all(v > 0 for v in latency.values())


def test_sweep_ranks_candidates_with_the_evaluator(cascade):
    base = default_stages(3, cascade, SCHEDULE)
    candidates = stage_candidates(base, stage=0, num_steps=(20, 30), truncate_fractions=(0.4, 0.6))
    assert len(candidates) == 4 and all(c[1:] == base[1:] for c in candidates)
    ranking = ranked(lambda stages: abs(stages[0].truncate - 12), candidates)
    assert ranking[0][1][0].truncate == 12 and [score for score, _ in ranking] == sorted(s for s, _ in ranking)


def test_cli_samples_a_cascade_and_refuses_stages_on_a_plain_checkpoint(cascade, tiny_checkpoint, tmp_path, capsys):
    folder = tmp_path / "cascade"
    save_model(folder, cascade.state_dict(), cascade.config, SCHEDULE.config, cascade_config=cascade.cascade)
    out, gif = tmp_path / "grid.png", tmp_path / "denoise.gif"
    assert (
        main(
            [
                "sample",
                "--checkpoint",
                str(folder),
                "--stages",
                "3",
                "--stage-steps",
                "10,8,5",
                "--truncate",
                "6,4",
                "--n",
                "2",
                "--out",
                str(out),
                "--gif",
                str(gif),
                "--quiet",
            ]
        )
        == 0
    )
    assert out.exists() and gif.exists()
    capsys.readouterr()
    assert (
        main(
            [
                "sample",
                "--checkpoint",
                str(tiny_checkpoint),
                "--stages",
                "2",
                "--quiet",
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "plain model" in err


def test_a_v_predicting_cascade_trains_on_its_target_and_samples_every_stage_count():
    model = randomized(CascadeUNet(ModelConfig(**TINY, prediction="v"), CascadeConfig((8, 16, 32))))
    x0 = torch.rand(4, 3, 32, 32) * 2 - 1
    cascade_loss(model, SCHEDULE, x0, torch.arange(4), torch.Generator().manual_seed(0), 0.1, 5.0).backward()
    assert all(p.grad is not None and p.grad.isfinite().all() for p in model.parameters())
    for stages in (1, 2, 3):
        images = sample(model, SCHEDULE, LABELS, [0, 1], make_plan(model, SCHEDULE, "ddim", 10, 2.0, stages=stages))
        assert images.shape == (2, 3, 32, 32) and images.isfinite().all()


def test_a_cascade_refuses_a_guidance_input():
    with pytest.raises(ValueError, match="no guidance input"):
        CascadeUNet(ModelConfig(**TINY, guidance_embedding=True), CascadeConfig((8, 16, 32)))
