"""Guided and progressive distillation on tiny models: the student starts as the teacher, guidance
costs one forward pass, the progressive target is two teacher DDIM steps (checked on an analytic teacher
and against the DDIM sampler), a stopped and resumed run ends with the same weights, and the CLI's
errors are one line."""

import zipfile

import pytest
import torch
from helpers import make_tiny_checkpoint
from torch import nn

from fastdiff.cli import main
from fastdiff.config import DiffusionConfig, DistillConfig, ModelConfig, TrainConfig
from fastdiff.data import ImageDataset
from fastdiff.diffusion.distillation import ProgressiveDistillationLoss
from fastdiff.diffusion.guidance import GuidedDenoiser, combine
from fastdiff.diffusion.samplers import SAMPLERS
from fastdiff.diffusion.sampling import make_plan, sample
from fastdiff.diffusion.schedule import NoiseSchedule
from fastdiff.nn.checkpoint import load_model, load_tensors
from fastdiff.train.distill import Distillation, plan_rounds

SIZE, T = 8, 50
SCHEDULE = NoiseSchedule(DiffusionConfig(num_timesteps=T))
CLASSES = tuple("abcdefghij")


def dataset(n=16) -> ImageDataset:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, SIZE, SIZE), generator=generator, dtype=torch.uint8)
    return ImageDataset(images, torch.arange(n) % len(CLASSES), CLASSES)


@pytest.fixture
def teacher(tmp_path):
    return make_tiny_checkpoint(tmp_path / "teacher", num_timesteps=T, image_size=SIZE)


def distillation(teacher, out, resume=False, prediction="v", **options) -> Distillation:
    config = DistillConfig(steps=2, from_steps=4, prediction=prediction, guidance_epochs=1, round_epochs=1)
    train_config = TrainConfig(batch_size=4, lr=1e-3, precision="fp32", preview_every=0, **options)
    return Distillation(teacher, out, dataset(), config, train_config, resume=resume)


def test_rounds_halve_from_steps_to_steps():
    names = [r.name for r in plan_rounds(DistillConfig(steps=4, from_steps=32))]
    assert names == ["round-1-guidance", "round-2-32to16", "round-3-16to8", "round-4-8to4"]
    with pytest.raises(ValueError, match="halved"):
        plan_rounds(DistillConfig(steps=4, from_steps=24))


def test_student_at_initialisation_is_the_teacher_at_w0_in_one_pass(teacher, tmp_path):
    run = distillation(teacher, tmp_path / "out", prediction="eps")
    student = run.round_trainer(0, run.rounds[0]).model.eval()
    assert student.config.guidance_embedding and student.config.guidance_range == (0.0, 4.0)
    model, _, _ = load_model(teacher)
    generator = torch.Generator().manual_seed(1)
    x_t, t, labels = (
        torch.randn(3, 3, SIZE, SIZE, generator=generator),
        torch.tensor([3, 20, 49]),
        torch.tensor([0, 4, 9]),
    )
    with torch.no_grad():
        eps_cond, eps_null = model(x_t, t, labels), model(x_t, t, torch.full_like(labels, model.null_class))
        target_at_w0 = combine(eps_cond, eps_null, 0.0)
        for w in (0.0, 1.5, 4.0):  # the zero-initialised embedding: no effect of w yet
            assert torch.allclose(student(x_t, t, labels, guidance=torch.full((3,), w)), target_at_w0, atol=1e-5)
    calls = []
    student.register_forward_hook(lambda module, inputs, output: calls.append(inputs[0].shape[0]))
    assert torch.allclose(GuidedDenoiser(student, labels, 2.0)(x_t, t), eps_cond, atol=1e-5)
    assert calls == [3]  # guidance in one forward pass of the plain batch


class DeltaTeacher(nn.Module):
    """The exact eps of data that is one image x0*: eps = (x_t - alpha x0*) / sigma, for which DDIM is
    exact, so two teacher steps and the distilled one-step target must both give x0*."""

    def __init__(self, x0):
        super().__init__()
        self.x0 = x0
        self.config = ModelConfig(n_feat=8, image_size=SIZE, class_names=CLASSES, guidance_embedding=True)
        self.weight = nn.Parameter(torch.zeros(()))

    def forward(self, x_t, t, class_labels=None, guidance=None):
        alpha_bar = SCHEDULE.alpha_bar[t].view(-1, 1, 1, 1)
        return (x_t - alpha_bar.sqrt() * self.x0) / (1 - alpha_bar).sqrt()


def test_progressive_target_recovers_the_data_of_an_analytic_teacher():
    x0 = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(2)) * 1.6 - 0.8
    loss = ProgressiveDistillationLoss(DeltaTeacher(x0), SCHEDULE, teacher_steps=8)
    index = torch.arange(4)  # every student step, the last one ending at the clean image
    x_t = SCHEDULE.q_sample(x0.expand(4, -1, -1, -1), loss.grid[2 * index], torch.randn(4, 3, SIZE, SIZE))
    eps, x0_target = loss.target(SCHEDULE, x_t, index, torch.zeros(4, dtype=torch.long), torch.full((4,), 2.0))
    assert torch.allclose(x0_target, x0.expand(4, -1, -1, -1), atol=1e-4)
    assert torch.allclose(SCHEDULE.q_sample(x0_target, loss.grid[2 * index], eps), x_t, atol=1e-4)


def test_one_student_step_on_the_target_lands_where_two_ddim_sampler_steps_land(teacher, tmp_path):
    run = distillation(teacher, tmp_path / "out")
    guided = run.round_trainer(0, run.rounds[0]).model.eval()
    for p in guided.guidance_mlp.parameters():  # a teacher whose output depends on w
        nn.init.normal_(p, std=0.1)
    loss = ProgressiveDistillationLoss(guided, SCHEDULE, teacher_steps=4)
    labels, x_T = torch.tensor([2, 5]), torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    steps = list(SAMPLERS["ddim"](GuidedDenoiser(guided, labels, 3.0), SCHEDULE, x_T, 4, prediction="v"))
    eps, x0 = loss.target(SCHEDULE, x_T, torch.zeros(2, dtype=torch.long), labels, torch.full((2,), 3.0))
    alpha_bar = SCHEDULE.alpha_bar[steps[2].t]
    assert torch.allclose(alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * eps, steps[1].x_t, atol=1e-4)


def weights(folder):
    return load_tensors(folder / "model.safetensors")[0]


def test_stopped_and_resumed_run_equals_an_uninterrupted_one(teacher, tmp_path):
    distillation(teacher, tmp_path / "a").run()
    steps_seen = []

    def stop_at(run, at):
        def on_event(event):
            if event.kind == "step":
                steps_seen.append(event.step)
                if len(steps_seen) == at:
                    run.request_stop()

        run.on_event = on_event
        return run

    first = stop_at(distillation(teacher, tmp_path / "b"), 2)  # in the guidance round
    assert first.run() is False and not (tmp_path / "b" / "round-2-4to2").exists()
    second = stop_at(distillation(teacher, tmp_path / "b", resume=True), 6)  # in the halving round
    assert second.run() is False
    assert distillation(teacher, tmp_path / "b", resume=True).run() is True
    for folder in ("round-1-guidance", "round-2-4to2", "."):
        expected, resumed = weights(tmp_path / "a" / folder), weights(tmp_path / "b" / folder)
        assert all(torch.equal(resumed[key], value) for key, value in expected.items()), folder
    student, _, training = load_model(tmp_path / "b")
    assert (student.config.prediction, student.config.distilled_steps) == ("v", 2)
    assert training["distillation"]["round"] == "round-2-4to2"
    plan = make_plan(student, SCHEDULE)  # DDIM on the distilled grid by default
    assert (plan.sampler, plan.num_steps) == ("ddim", 2)
    assert sample(student, SCHEDULE, torch.tensor([1]), [0], plan).shape == (1, 3, SIZE, SIZE)
    with pytest.raises(ValueError, match="distilled for guidance 0 to 4"):
        make_plan(student, SCHEDULE, guidance=6.0)


def write_zip(path):
    from PIL import Image

    with zipfile.ZipFile(path, "w") as archive:
        for name, color in (("a", (220, 20, 20)), ("b", (20, 20, 220))):
            for i in range(8):
                with archive.open(f"pictures/{name}/{i}.png", "w") as f:
                    Image.new("RGB", (SIZE, SIZE), color).save(f, format="PNG")
    return path


def test_cli_distills_and_samples_the_student(tmp_path, capsys):
    teacher = make_tiny_checkpoint(tmp_path / "teacher", T, image_size=SIZE, class_names=("a", "b"), num_classes=2)
    out, data = tmp_path / "student", write_zip(tmp_path / "data.zip")
    common = ["--teacher", str(teacher), "--out", str(out), "--data", str(data), "--device", "cpu", "--quiet"]
    options = ["--steps", "2", "--from-steps", "4", "--guidance-epochs", "1", "--round-epochs", "1"]
    assert main(["distill", *common, *options, "--batch-size", "8", "--precision", "fp32"]) == 0
    assert (out / "loss.png").is_file() and (out / "round-2-4to2" / "log.jsonl").is_file()
    assert main(["sample", "--checkpoint", str(out), "--n", "2", "--out", str(tmp_path / "s.png"), "--quiet"]) == 0
    assert (tmp_path / "s.png").is_file()


@pytest.mark.parametrize(
    "arguments,message",
    [
        (["--teacher", "missing"], "missing: checkpoint not found; looked in ./missing"),
        (["--steps", "4", "--from-steps", "12"], "halved"),
        (["--guidance-max", "20"], "--guidance-max"),
        (["--prediction", "score"], "invalid choice"),
        (["--resume"], "no distillation run to resume"),
        (["--round-epochs", "0"], "must be positive"),
    ],
)
def test_cli_errors_are_one_line(teacher, tmp_path, capsys, arguments, message):
    defaults = {"--teacher": str(teacher), "--out": str(tmp_path / "out"), "--data": str(write_zip(tmp_path / "d.zip"))}
    argv = [
        "distill",
        *[x for key, value in defaults.items() if key not in arguments for x in (key, value)],
        *arguments,
    ]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and "\n" not in error


def test_an_existing_run_needs_resume_and_a_cascade_cannot_teach(teacher, tmp_path):
    (tmp_path / "out" / "round-1-guidance").mkdir(parents=True)
    with pytest.raises(ValueError, match="add --resume"):
        distillation(teacher, tmp_path / "out")
    cascade = make_tiny_checkpoint(tmp_path / "cascade", T, cascade=True)
    with pytest.raises(ValueError, match="not a cascade"):
        distillation(cascade, tmp_path / "other")


def test_distilled_rows_join_the_sampling_table_when_its_checkpoint_exists(tmp_path):
    from fastdiff.bench.runner import sample_jobs

    plain = sample_jobs(tmp_path / "cascade", (tmp_path / "cifar10-distilled",))
    make_tiny_checkpoint(tmp_path / "cifar10-distilled", guidance_embedding=True, distilled_steps=4, prediction="v")
    rows = sample_jobs(tmp_path / "cascade", (tmp_path / "cifar10-distilled",))[len(plain) :]
    assert [(job.sampler, job.configuration) for job in rows] == [("DDIM-4", ("ddim", 4, 2.0, 1))]
    assert rows[0].timing(*rows[0].args)["seconds"] > 0  # warmed up and timed on the student's own grid


def test_a_student_teacher_continues_its_halving_without_a_guidance_round(teacher, tmp_path):
    distillation(teacher, tmp_path / "two").run()
    config = DistillConfig(steps=1, from_steps=2, prediction="v", round_epochs=1)
    train_config = TrainConfig(batch_size=4, lr=1e-3, precision="fp32", preview_every=0)
    run = Distillation(tmp_path / "two", tmp_path / "one", dataset(), config, train_config)
    assert [r.name for r in run.rounds] == ["round-1-2to1"]
    first = run.round_trainer(0, run.rounds[0]).model
    assert all(torch.equal(first.state_dict()[k].half(), v.half()) for k, v in weights(tmp_path / "two").items())
    assert run.run() is True
    student, _, training = load_model(tmp_path / "one")
    assert (student.config.distilled_steps, student.config.guidance_range) == (1, (0.0, 4.0))
    assert training["distillation"]["teacher"] == str(tmp_path / "two")
    with pytest.raises(ValueError, match="its halving continues with from-steps 2"):
        Distillation(tmp_path / "two", tmp_path / "x", dataset(), DistillConfig(steps=1, from_steps=4), train_config)


def test_cli_takes_a_student_teachers_own_settings(tmp_path):
    teacher = make_tiny_checkpoint(tmp_path / "teacher", T, image_size=SIZE, class_names=("a", "b"), num_classes=2)
    data = str(write_zip(tmp_path / "d.zip"))
    common = ["distill", "--data", data, "--device", "cpu", "--quiet", "--batch-size", "8", "--precision", "fp32"]
    first = ["--teacher", str(teacher), "--out", str(tmp_path / "two"), "--steps", "2", "--from-steps", "4"]
    assert main([*common, *first, "--guidance-epochs", "1", "--round-epochs", "1"]) == 0
    then = ["--teacher", str(tmp_path / "two"), "--steps", "1", "--round-epochs", "1"]
    assert main([*common, *then, "--out", str(tmp_path / "one")]) == 0
    assert load_model(tmp_path / "one")[0].config.distilled_steps == 1
    assert main([*common, *then, "--out", str(tmp_path / "x"), "--guidance-max", "3"]) == 2
