"""A distillation run (Meng et al. 2023): guidance distillation, then progressive distillation down to
a few DDIM steps, each round a Trainer run in its own folder of the run folder:

    out/round-1-guidance/      stage one: the student takes w as input, matching the guided teacher
    out/round-2-64to32/ ...    stage two: two teacher DDIM steps become one student step, halving
    out/model.safetensors      the latest finished round's student, with its config.json
    out/loss.png               the loss curve of each round

Each round starts from the previous one's shipped checkpoint (the teacher's weights for the first), and
Trainer gives it EMA weights, atomic checkpoints and exact resume, so a resumed run (finished rounds
skipped, the current one resumed) ends with the same weights as an uninterrupted one.

A teacher that is itself a step-distilled student continues the halving from its step count, with no
guidance round (out/round-1-4to2/, out/round-2-2to1/ for a 4-step teacher and steps = 1).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import DistillConfig, ModelConfig, TrainConfig, from_dict, to_dict
from ..data import ImageDataset
from ..diffusion.distillation import GuidanceDistillationLoss, ProgressiveDistillationLoss
from ..nn import checkpoint as ckpt
from ..nn.unet import UNet
from .trainer import LOG_NAME, STATE_NAME, Trainer, TrainEvent

GUIDANCE_ROUND = "round-1-guidance"


@dataclass(frozen=True)
class Round:
    name: str  # its folder in the run folder
    teacher_steps: int | None  # DDIM steps of its teacher; None: the guidance round
    student_steps: int  # the student's distilled_steps (0 for the guidance round)


def plan_rounds(config: DistillConfig, guidance_round: bool = True) -> list[Round]:
    """The guidance round (unless the teacher is already a student), then one round per halving from
    from_steps to steps."""
    steps, ratio = config.steps, config.from_steps // max(config.steps, 1)
    if steps < 1 or config.from_steps <= steps or config.from_steps % steps or ratio & (ratio - 1):
        raise ValueError(
            f"steps must be from-steps halved one or more times (e.g. 64 -> 4), got {config.from_steps} -> {steps}"
        )
    rounds, teacher_steps = [Round(GUIDANCE_ROUND, None, 0)] if guidance_round else [], config.from_steps
    while teacher_steps > steps:
        rounds.append(
            Round(f"round-{len(rounds) + 1}-{teacher_steps}to{teacher_steps // 2}", teacher_steps, teacher_steps // 2)
        )
        teacher_steps //= 2
    return rounds


class Distillation:
    def __init__(
        self,
        teacher: Path,
        out_dir: Path,
        dataset: ImageDataset,
        config: DistillConfig = DistillConfig(),
        train_config: TrainConfig = TrainConfig(),
        device: torch.device = torch.device("cpu"),
        resume: bool = False,
        on_event: Callable[[TrainEvent], None] | None = None,
    ):
        """teacher: a plain class-conditional checkpoint, or a step-distilled student whose halving
        continues (config.from_steps, prediction and guidance_max then its own); train_config: the
        settings of every round (its epochs replaced by the round's, its seed offset by the round's
        number)."""
        self.teacher, self.out_dir, self.dataset = Path(teacher), Path(out_dir), dataset
        self.config, self.train_config, self.device = config, train_config, device
        self.on_event = on_event or (lambda event: None)
        self.trainer: Trainer | None = None
        self.stop_requested = False
        model_config, _, _, cascade = ckpt.read_full_config(self.teacher)
        if cascade is not None or not model_config.num_classes:
            raise ValueError(f"{self.teacher}: the teacher must be a class-conditional model, not a cascade")
        if model_config.guidance_embedding:
            check_continued_student(self.teacher, model_config, config)
        self.rounds = plan_rounds(config, guidance_round=not model_config.guidance_embedding)
        started = (self.out_dir / self.rounds[0].name).exists()
        if started and not resume:
            raise ValueError(f"{self.out_dir} already holds a distillation run: add --resume to continue it")
        if resume and not started:
            raise ValueError(f"--resume: {self.out_dir} holds no distillation run to resume")

    def request_stop(self) -> None:
        """End the current round at its next step, with a checkpoint written; later rounds do not start."""
        self.stop_requested = True
        if self.trainer is not None:
            self.trainer.request_stop()

    def run(self) -> bool:
        """Run (or resume) every round; returns whether all finished (False: stopped)."""
        for number, round_ in enumerate(self.rounds):
            if self.stop_requested:
                return False
            self.trainer = self.round_trainer(number, round_)
            self.trainer.run()
            if self.trainer.step < self.trainer.total_steps:
                return False
            self.publish(round_)
        return True

    def round_trainer(self, number: int, round_: Round) -> Trainer:
        """The Trainer of a round: its student starts from the previous round's checkpoint, the new
        guidance embedding (guidance round) at zero, so it starts as the teacher's conditional model."""
        previous = self.teacher if number == 0 else self.out_dir / self.rounds[number - 1].name
        teacher, diffusion_config, teacher_training = ckpt.load_model(previous, self.device)
        guidance_round = round_.teacher_steps is None
        student_config = from_dict(
            ModelConfig,
            {
                **to_dict(teacher.config),
                **(self.student_guidance() if guidance_round else {}),
                "distilled_steps": round_.student_steps,
            },
        )
        seed = self.train_config.seed + number
        torch.manual_seed(seed)  # the new embedding's first layer starts random
        student = UNet(student_config)
        student.load_state_dict(teacher.state_dict(), strict=not guidance_round)  # the teacher lacks guidance_mlp
        folder = self.out_dir / round_.name
        train_config = dataclasses.replace(
            self.train_config,
            epochs=self.config.guidance_epochs if round_.teacher_steps is None else self.config.round_epochs,
            seed=seed,
        )
        trainer = Trainer(
            self.dataset,
            folder,
            train_config,
            student_config,
            diffusion_config,
            self.device,
            resume=(folder / STATE_NAME).exists(),
            on_event=self.on_event,
            model=student,
        )
        if trainer.model_config != student_config:
            raise ValueError(f"{self.teacher}: was trained on other images or classes than this dataset")
        if round_.teacher_steps is None:
            trainer.loss = GuidanceDistillationLoss(teacher)
        else:
            trainer.loss = ProgressiveDistillationLoss(teacher, trainer.schedule, round_.teacher_steps)
        trainer.warm_start = trainer.warm_start or {
            "checkpoint": str(previous),
            "images_seen": ckpt.images_seen_total(teacher_training),
        }
        return trainer

    def student_guidance(self) -> dict:
        """What the guidance round's student adds to its teacher's config."""
        return {
            "guidance_embedding": True,
            "guidance_range": (0.0, self.config.guidance_max),
            "prediction": self.config.prediction,
        }

    def publish(self, round_: Round) -> None:
        """Copy a finished round's student to the run folder, so that it loads as a checkpoint."""
        folder = self.out_dir / round_.name
        model_config, diffusion_config, training = ckpt.read_config(folder)
        state_dict, _ = ckpt.load_tensors(folder / ckpt.WEIGHTS_NAME)
        distillation = {"teacher": str(self.teacher), "round": round_.name, "config": to_dict(self.config)}
        ckpt.save_model(
            self.out_dir, state_dict, model_config, diffusion_config, training | {"distillation": distillation}
        )


def check_continued_student(folder: Path, model_config: ModelConfig, config: DistillConfig) -> None:
    """A student teacher's halving goes on from its own steps, parameterization and guidance range."""
    own = (model_config.distilled_steps, model_config.prediction, model_config.guidance_range[1])
    if not model_config.distilled_steps:
        raise ValueError(f"{folder}: a guidance-distilled teacher must be step-distilled too (distilled_steps)")
    if (config.from_steps, config.prediction, config.guidance_max) != own:
        raise ValueError(
            f"{folder} is a {own[0]}-step student ({own[1]}, w up to {own[2]:g}): its halving continues with "
            f"from-steps {own[0]}, prediction {own[1]} and guidance-max {own[2]:g}, got {config.from_steps}, "
            f"{config.prediction} and {config.guidance_max:g}"
        )


def plot_rounds(run_dir: Path) -> Path:
    """The loss curve of every round (log.jsonl of each round folder) as run_dir/loss.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6, 3.5))
    for log in sorted(Path(run_dir).glob(f"round-*/{LOG_NAME}")):
        records = [json.loads(line) for line in open(log)]
        axis.plot([r["epoch"] for r in records], [r["loss"] for r in records], "o-", label=log.parent.name)
    axis.set(xlabel="epoch of the round", ylabel="distillation loss (MSE)", yscale="log")
    axis.legend()
    fig.tight_layout()
    path = Path(run_dir) / "loss.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
