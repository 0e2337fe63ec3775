"""This checkout against another one on the CPU (issue 20's ratios): each side runs in fresh processes as
its entry points run it, taking turns, so that a drift of the machine's speed falls on both alike. Per
round and side: the guided forward pass of the shipped base at batch 32 (64 images; median of 40), bf16
training at batch 128 (images/s, median of 3 x 4 steps), and the guided 16-image DPM-Solver++ 20 grid
(seconds, median of 3). Prints a markdown table to stdout.

    git worktree add /tmp/before 35951c1
    python scripts/speed_ab.py /tmp/before --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def measure() -> dict:
    """One side's numbers, in this process (cwd and sys.path: that side's checkout)."""
    import torch

    import fastdiff.device
    from fastdiff.bench.runner import trainer_speed
    from fastdiff.bench.timing import GUIDANCE, grid_setup, time_run
    from fastdiff.config import ModelConfig
    from fastdiff.diffusion.guidance import GuidedDenoiser
    from fastdiff.diffusion.sampling import make_plan, sample_steps

    if hasattr(fastdiff.device, "keep_freed_memory"):  # as that side's entry points do
        fastdiff.device.keep_freed_memory()
    model, schedule, labels, seeds, precision, _ = grid_setup("base", Path("checkpoints/cifar10-base"))
    denoiser = GuidedDenoiser(model, torch.arange(32) % 10, GUIDANCE, precision)
    x, t = torch.randn(32, 3, 32, 32), torch.full((32,), 250)
    for _ in range(3):
        denoiser(x, t)
    forward = []
    for _ in range(40):
        start = time.perf_counter()
        denoiser(x, t)
        forward.append(time.perf_counter() - start)

    def run(sampler, steps):
        plan = make_plan(model, schedule, sampler, steps, GUIDANCE)
        return sample_steps(model, schedule, labels, seeds, plan, precision)

    grid = [time_run(run, "dpm++", 20)["seconds"] for _ in range(3)]
    train = [trainer_speed(ModelConfig(), None, "bf16", 128, 4, torch.device("cpu")) for _ in range(3)]
    return {
        "forward_ms": 1000 * statistics.median(forward),
        "train_images_per_s": statistics.median(train),
        "grid_s": statistics.median(grid),
    }


def side(checkout: Path) -> dict:
    """measure() in a fresh process that imports fastdiff from the checkout."""
    env = os.environ | {"PYTHONPATH": str(checkout)}
    command = [sys.executable, __file__, "--measure"]
    done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"measuring {checkout} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path, nargs="?", help="the other checkout (a git worktree of the old main)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # one side, in this process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure()))
        return
    if args.before is None:
        parser.error("name the checkout to compare against")
    if not (args.before / "fastdiff").is_dir():
        sys.exit(f"error: {args.before} is not a FastDiff checkout")
    rows = []
    for round_ in range(1, args.rounds + 1):
        before, after = side(args.before.resolve()), side(HERE)
        rows.append(
            f"| {round_} | {before['forward_ms']:.1f} -> {after['forward_ms']:.1f} ms "
            f"({before['forward_ms'] / after['forward_ms']:.2f}x) | {before['train_images_per_s']:.0f} -> "
            f"{after['train_images_per_s']:.0f} ({after['train_images_per_s'] / before['train_images_per_s']:.2f}x) | "
            f"{before['grid_s']:.3f} -> {after['grid_s']:.3f} s ({before['grid_s'] / after['grid_s']:.2f}x) |"
        )
    print("| round | guided forward, batch 32 | bf16 training, images/s at batch 128 | DPM-Solver++ 20 grid |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
