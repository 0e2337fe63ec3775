"""Where a guidance-distilled student departs from its teacher (docs/training.md): on n training images
noised to a few timesteps, the MSE between the student's one-pass output at w and the teacher's guided
output (1 + w) out(c) - w out(null), per w; and, per timestep, how much of the teacher's guidance effect
(its output at w = 2 minus at w = 0) the student's reproduces: the least-squares coefficient of the
student's effect on the teacher's (1 = all of it). Prints two markdown tables to stdout.

    python scripts/guidance_error.py runs/NAME/round-1-guidance --data ../shared/data/cifar10-jpeg.zip
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from fastdiff.data import load_dataset, to_model_range
from fastdiff.device import autocast, resolve_precision
from fastdiff.diffusion.guidance import guided_output
from fastdiff.diffusion.schedule import NoiseSchedule
from fastdiff.nn.checkpoint import load_model

TIMESTEPS = (450, 350, 250, 150, 50)
WEIGHTS = (0.0, 1.0, 2.0, 3.0, 4.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("student", type=Path, help="a guidance-distilled checkpoint folder")
    parser.add_argument("--teacher", type=Path, default=Path("checkpoints/cifar10-base"))
    parser.add_argument("--data", default="cifar10")
    parser.add_argument("--n", type=int, default=256)
    args = parser.parse_args()
    device = torch.device("cpu")
    teacher, diffusion, _ = load_model(args.teacher, device)
    student, _, _ = load_model(args.student, device)
    schedule = NoiseSchedule(diffusion)
    data = load_dataset(args.data, "train")
    chosen = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[: args.n]
    x0, labels = to_model_range(data.images[chosen]), data.labels[chosen]

    precision = resolve_precision("auto", device)
    outputs = {}  # (t, w) -> (student's, teacher's) output
    with torch.inference_mode(), autocast(device, precision):
        for t in TIMESTEPS:
            timesteps = torch.full((args.n,), t)
            x_t = schedule.q_sample(x0, timesteps, torch.randn(x0.shape, generator=torch.Generator().manual_seed(t)))
            for w in WEIGHTS:
                student_output = student(x_t, timesteps, labels, guidance=torch.full((args.n,), w))
                teacher_output = guided_output(teacher, x_t, timesteps, labels, w)
                outputs[t, w] = student_output.float(), teacher_output.float()
    print(f"| w | MSE (mean over t = {', '.join(map(str, TIMESTEPS))}) |\n|---|---|")
    for w in WEIGHTS:
        errors = [
            ((student_output - teacher_output) ** 2).mean().item()
            for student_output, teacher_output in (outputs[t, w] for t in TIMESTEPS)
        ]
        print(f"| {w:g} | {sum(errors) / len(errors):.5f} |")
    print("\n| t | share of the teacher's guidance effect (w = 2) |\n|---|---|")
    for t in TIMESTEPS:
        (student_2, teacher_2), (student_0, teacher_0) = outputs[t, 2.0], outputs[t, 0.0]
        teacher_effect, student_effect = (teacher_2 - teacher_0).flatten(), (student_2 - student_0).flatten()
        share = (student_effect @ teacher_effect / (teacher_effect @ teacher_effect)).item()
        print(f"| {t} | {share:.2f} |")


if __name__ == "__main__":
    main()
