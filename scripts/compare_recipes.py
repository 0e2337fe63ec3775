"""Training recipes compared at a fixed budget (the quality issue's step 3): each recipe continues the
shipped base for the same images, in the same order, with the same noise (seed 0), and the evaluator scores
every result on the same seeds. Writes assets/recipes.md. Resumable: a finished run or score is kept.

The table in assets/recipes.md started from the eps base that was shipped before the comparison (its winner
is the base shipped now):

    git worktree add /tmp/eps-base a028889
    python -m scripts.compare_recipes --base /tmp/eps-base/checkpoints/cifar10-base \
        --data ../shared/data/cifar10-jpeg.zip --runs /tmp/recipes
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

from fastdiff.data import dataset_label
from fastdiff.device import resolve_precision
from fastdiff.eval.classifier import load_classifier
from fastdiff.eval.evaluate import Reference, evaluate, reference
from fastdiff.report import machine, markdown_table

CLASSIFIER = Path("checkpoints/evaluator-cifar10")
RECIPES = {  # name -> (train flags beyond the shared ones, what it tests); all explicit, whatever the defaults
    "paper": (["--prediction", "eps", "--min-snr-gamma", "0"], "the paper's recipe: eps, uniform t, linear betas"),
    "min-snr-5": (
        ["--prediction", "eps", "--min-snr-gamma", "5"],
        "Min-SNR-gamma weighting, gamma = 5 (Hang et al. 2023)",
    ),
    "v": (["--prediction", "v", "--min-snr-gamma", "0"], "v-prediction (Salimans & Ho 2022)"),
    "v-zero-snr": (
        ["--prediction", "v", "--zero-terminal-snr", "--min-snr-gamma", "0"],
        "v-prediction on a zero-terminal-SNR schedule (Lin et al. 2024)",
    ),
    "v-min-snr-5": (["--prediction", "v", "--min-snr-gamma", "5"], "v-prediction with Min-SNR-5"),
}
SAMPLERS = (("ddim", 50), ("dpm++", 20))


def shared_train_args(out: Path, base: Path, data: str, epochs: int) -> list[str]:
    """The `fastdiff train` arguments every recipe's run has; each recipe adds its flags."""
    return [
        *("train", "--data", data, "--out", str(out), "--init", str(base)),
        *f"--epochs {epochs} --warmup-steps 100 --seed 0 --preview-every 0 --quiet".split(),
    ]


def train(name: str, base: Path, data: str, runs: Path, epochs: int) -> None:
    log = runs / name / "log.jsonl"
    done = log.is_file() and len(log.read_text().splitlines()) >= epochs
    if not done:
        resume = ["--resume"] if (runs / name / "training_state.safetensors").is_file() else []
        args = shared_train_args(runs / name, base, data, epochs) + RECIPES[name][0] + resume
        subprocess.run([sys.executable, "-m", "fastdiff", *args], check=True)


def score(name: str, checkpoint: Path, data: str, n: int, runs: Path, ref: Reference) -> dict[str, dict]:
    """The evaluator's numbers for each of SAMPLERS, kept in runs/scores/."""
    results = {}
    for sampler, steps in SAMPLERS:
        path = runs / "scores" / f"{name}-{sampler}-{steps}-n{n}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file():
            result = evaluate(checkpoint, CLASSIFIER, data, sampler, steps, 2.0, n, ref=ref)
            path.write_text(json.dumps(result, indent=2))
        results[f"{sampler}-{steps}"] = json.loads(path.read_text())
    return results


def cells(result: dict) -> list[str]:
    return [
        f"{100 * result['class_accuracy']:.1f}%",
        f"{result['kid']:.3f}",
        f"{100 * result['texture_share']:.1f}%",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", type=Path, required=True, help="the checkpoint every recipe continues")
    parser.add_argument("--data", required=True, help="the training and test images")
    parser.add_argument("--runs", type=Path, required=True, help="where the recipe runs go (outside the repo)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs each recipe trains")
    parser.add_argument("--n", type=int, default=500, help="samples per score")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    args = parser.parse_args()
    classifier, _ = load_classifier(CLASSIFIER, torch.device("cpu"))
    ref = reference(classifier, args.data, args.n, resolve_precision("auto", torch.device("cpu")))
    headers = ["recipe", "what it changes"]
    for sampler, steps in SAMPLERS:
        headers += [f"{sampler}-{steps} acc.", "KID", "textures"]
    headers.append("final loss")
    start = score("base", args.base, args.data, args.n, args.runs, ref)
    rows = [["the start (--base)", "no further training", *sum(map(cells, start.values()), []), ""]]
    for name in args.recipes:
        train(name, args.base, args.data, args.runs, args.epochs)
        results = score(name, args.runs / name, args.data, args.n, args.runs, ref)
        loss = json.loads((args.runs / name / "log.jsonl").read_text().splitlines()[-1])["loss"]
        rows.append([name, RECIPES[name][1], *sum(map(cells, results.values()), []), f"{loss:.4f}"])
        print(rows[-1], flush=True)
    images = args.epochs * 50_000
    recipe_flags = "; ".join(f"{name}: `{' '.join(RECIPES[name][0])}`" for name in args.recipes)
    jpeg = " (CIFAR-10 JPEG copy)" if dataset_label(args.data) == "cifar10-jpeg.zip" else ""
    shared = " ".join(shared_train_args(Path("RUNS/NAME"), Path("BASE"), args.data, args.epochs))
    text = (
        f"# Training recipes at a fixed budget\n\n"
        f"Each recipe continues BASE = `{args.base}` for {args.epochs} epochs ({images:,} images, the same "
        f"images in the same order with the same noise: seed 0), learning rate 1e-4 with 100 warm-up steps, "
        f"cosine to 1e-6. Scored by the project's evaluator on {dataset_label(args.data)}{jpeg}, "
        f"n = {args.n} samples on the same seeds for every model, guided w = 2. The final loss is each recipe's "
        f"own objective, so it compares epochs of one recipe, not recipes.\n\n"
        f"Made with `python -m scripts.compare_recipes --base BASE --data {args.data} --runs RUNS "
        f"--epochs {args.epochs} --n {args.n}` on: {machine()}. Each run's command: `python -m fastdiff {shared}` "
        f"plus the recipe's flags ({recipe_flags}).\n\n" + markdown_table(headers, rows) + "\n"
    )
    Path("assets/recipes.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
