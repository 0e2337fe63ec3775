"""Sample quality with the project's own classifier (classifier.py): class accuracy of guided samples,
and KID and FD in the classifier's penultimate features against the real test split, printed beside
the real-vs-real values (the classifier's accuracy on the test split; KID and FD of a train subset
against the test split) so a reader can judge the scale.
Also wall time, NFE and images/s, and the quality sweep (assets/quality.md, docs/quality.md)."""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import dataset_label, load_dataset, to_model_range
from ..device import resolve_precision
from ..diffusion.cascade import Stage, resolutions_of
from ..diffusion.sampling import make_plan, sample
from ..diffusion.schedule import NoiseSchedule
from ..images import save_image, to_uint8
from ..nn.checkpoint import images_seen_total, load_model
from ..report import machine, markdown_table
from .classifier import classify, load_classifier
from .cost import stage_nfe
from .metrics import TEXTURE_QUANTILE, class_accuracy, frechet_distance, kid, texture_share, texture_threshold
from .records import EVAL_NAME


@dataclass
class Reference:
    """Real images: the test split with its features and the classifier's accuracy on it (its labels
    are held out from the classifier's training), and features of a train subset of the samples' size."""

    test_images: torch.Tensor  # (N, C, H, W) uint8
    test_features: torch.Tensor
    test_accuracy: float
    train_features: torch.Tensor
    texture_threshold: float  # high-frequency energy above which a sample counts as a noise texture


def reference(classifier, data: str, n: int, precision: str) -> Reference:
    test = load_dataset(data, "test")
    train = load_dataset(data, "train")
    subset = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:n]
    test_logits, test_features = classify(classifier, to_model_range(test.images), precision)
    _, train_features = classify(classifier, to_model_range(train.images[subset]), precision)
    return Reference(
        test.images,
        test_features,
        class_accuracy(test_logits, test.labels),
        train_features,
        texture_threshold(to_model_range(test.images)),
    )


def generate(
    model,
    schedule: NoiseSchedule,
    labels: torch.Tensor,
    sampler: str,
    steps: int | None,
    guidance: float,
    stages: int | list[Stage],
    seed: int,
    precision: str,
    batch_size: int = 250,
) -> torch.Tensor:
    """Images for the given labels in batches; image i uses seed + i. stages: a count (1 = plain
    sampling) for the default stage settings, or explicit ones."""
    plan = make_plan(model, schedule, sampler, steps, guidance, stages=stages)
    images = []
    for start in range(0, len(labels), batch_size):
        batch = labels[start : start + batch_size]
        seeds = list(range(seed + start, seed + start + len(batch)))
        images.append(sample(model, schedule, batch, seeds, plan, precision).cpu())
    return torch.cat(images)


def sample_quality(
    model,
    schedule: NoiseSchedule,
    classifier,
    test_features: torch.Tensor,
    threshold: float,
    n: int,
    sampler: str = "ddim",
    steps: int | None = 50,
    guidance: float = 2.0,
    stages: int | list[Stage] = 1,
    seed: int = 0,
    precision: str = "fp32",
) -> tuple[dict, torch.Tensor]:
    """Generate n samples, balanced over the classes, and score them against the test split's features and
    noise-texture threshold: (metrics, images)."""
    device = next(model.parameters()).device
    labels = torch.arange(n) % model.config.num_classes
    start = time.perf_counter()
    images = generate(model, schedule, labels.to(device), sampler, steps, guidance, stages, seed, precision)
    seconds = time.perf_counter() - start
    scores = score(images, labels, classifier, test_features, threshold, precision)
    return scores | {"seconds": seconds, "images_per_s": n / seconds}, images


def score(
    images: torch.Tensor,
    labels: torch.Tensor,
    classifier,
    test_features: torch.Tensor,
    threshold: float,
    precision: str = "fp32",
) -> dict:
    """Class accuracy, KID, FD and noise-texture share of samples of the given labels."""
    logits, features = classify(classifier, images, precision)
    sample_kid, sample_kid_std = kid(features, test_features)
    return {
        "class_accuracy": class_accuracy(logits, labels),
        "kid": sample_kid,
        "kid_std": sample_kid_std,
        "fd": frechet_distance(features, test_features),
        "texture_share": texture_share(images, threshold),
    }


def evaluate(
    checkpoint: Path,
    classifier_dir: Path,
    data: str,
    sampler: str = "ddim",
    steps: int | None = 50,
    guidance: float = 2.0,
    n: int = 1000,
    stages: int = 1,
    seed: int = 0,
    device: torch.device = torch.device("cpu"),
    ref: Reference | None = None,
    with_fid: bool = False,
) -> dict:
    if with_fid:
        fid_backend()  # fail before the long generation when FID cannot be computed
    precision = resolve_precision("auto", device)
    model, diffusion, training = load_model(checkpoint, device)
    classifier, classifier_meta = load_classifier(classifier_dir, device)
    ref = ref or reference(classifier, data, n, precision)
    schedule = NoiseSchedule(diffusion)
    metrics, images = sample_quality(
        model,
        schedule,
        classifier,
        ref.test_features,
        ref.texture_threshold,
        n,
        sampler,
        steps,
        guidance,
        stages,
        seed,
        precision,
    )
    real_kid, _ = kid(ref.train_features, ref.test_features)
    extra = {"fid": standard_fid(images, to_model_range(ref.test_images), device)} if with_fid else {}
    nfe = stage_nfe(make_plan(model, schedule, sampler, steps, guidance, stages=stages).stages)
    return {
        "checkpoint": str(checkpoint),
        "sampler": sampler,
        "steps": steps,
        "guidance": guidance,
        "stages": stages,
        "n": n,
        "seed": seed,
        **metrics,
        "real_vs_real": {
            "class_accuracy": ref.test_accuracy,
            "kid": real_kid,
            "fd": frechet_distance(ref.train_features, ref.test_features),
            "texture_share": 1 - TEXTURE_QUANTILE,
        },
        "texture_threshold": ref.texture_threshold,
        "nfe": nfe,
        "classifier_test_accuracy": classifier_meta.get("test_accuracy"),
        "training_images_seen": images_seen_total(training),
        "data": dataset_label(data),
        "machine": machine(),
        **extra,
    }


class QualityJudge:
    """The evaluator and the test split's features and noise-texture threshold, loaded once, for scoring
    many sample sets: class accuracy, KID, FD and noise-texture share of n guided samples of a model
    (sample_quality)."""

    def __init__(self, classifier_dir: Path, data: str, device: torch.device):
        self.precision = resolve_precision("auto", device)
        self.classifier, _ = load_classifier(classifier_dir, device)
        test = load_dataset(data, "test")
        _, self.test_features = classify(self.classifier, to_model_range(test.images), self.precision)
        self.texture_threshold = texture_threshold(to_model_range(test.images))

    def __call__(
        self,
        model,
        schedule: NoiseSchedule,
        n: int,
        sampler: str = "ddim",
        steps: int | None = 50,
        stages: int | list[Stage] = 1,
    ) -> dict:
        metrics, _ = sample_quality(
            model,
            schedule,
            self.classifier,
            self.test_features,
            self.texture_threshold,
            n,
            sampler,
            steps,
            stages=stages,
            precision=self.precision,
        )
        return metrics


class QualityProbe:
    """Class accuracy, KID and noise-texture share of a model in training (`train --eval-every`): n guided
    DDIM-50 samples (w = 2, every cascade stage) against the test split, the curve of quality over training."""

    def __init__(self, classifier_dir: Path, data: str, n: int, device: torch.device):
        if n < 2:
            raise ValueError(f"the quality probe needs at least 2 samples, got {n}")
        self.n, self.judge = n, QualityJudge(classifier_dir, data, device)

    def __call__(self, model, schedule: NoiseSchedule) -> dict:
        metrics = self.judge(model, schedule, self.n, stages=len(resolutions_of(model)))
        return {key: metrics[key] for key in ("class_accuracy", "kid", "texture_share")} | {"eval_n": self.n}


ROW_HEADERS = [
    "configuration",
    "class acc.",
    "KID",
    "FD",
    "noise textures",
    "NFE",
    "images/s",
    "real vs real (acc. / KID / FD / textures)",
]


def row(label: str, result: dict) -> list[str]:
    real = result["real_vs_real"]
    return [
        label,
        f"{100 * result['class_accuracy']:.1f}%",
        f"{result['kid']:.4f} ± {result['kid_std']:.4f}",
        f"{result['fd']:.2f}",
        f"{100 * result['texture_share']:.1f}%",
        "+".join(str(v) for v in result["nfe"].values()),
        f"{result['images_per_s']:.1f}",
        f"{100 * real['class_accuracy']:.1f}% / {real['kid']:.4f} / {real['fd']:.2f} / "
        f"{100 * real['texture_share']:.0f}%",
    ]


def fid_backend() -> str:
    """The installed standard-FID package, or a ValueError saying what is missing."""
    for package in ("torch_fidelity", "cleanfid"):
        try:
            __import__(package)
            return package
        except ImportError:
            continue
    raise ValueError(
        "--metric fid is not available: it needs torch-fidelity or clean-fid "
        "(pip install torch-fidelity) and their Inception weights, which download on first use"
    )


def standard_fid(images: torch.Tensor, real_images: torch.Tensor, device: torch.device) -> float:
    """FID with Inception features (Heusel et al. 2017) between two image batches in [-1, 1]."""
    backend = fid_backend()
    with tempfile.TemporaryDirectory() as tmp:
        folders = [Path(tmp) / "samples", Path(tmp) / "real"]
        for folder, batch in zip(folders, (images, real_images)):
            folder.mkdir()
            for i, picture in enumerate(to_uint8(batch)):
                save_image(picture, folder / f"{i:05d}.png")
        if backend == "torch_fidelity":
            import torch_fidelity

            return torch_fidelity.calculate_metrics(
                input1=str(folders[0]), input2=str(folders[1]), fid=True, cuda=device.type == "cuda", verbose=False
            )["frechet_inception_distance"]
        from cleanfid import fid

        return fid.compute_fid(str(folders[0]), str(folders[1]), device=device)


SWEEP = [  # (label, checkpoint name, sampler, steps, guidance, stages, share of n)
    ("DDPM-500", "cifar10-base", "ddpm", 500, 2.0, 1, 1 / 20),
    ("DDIM-100", "cifar10-base", "ddim", 100, 2.0, 1, 1 / 4),
    ("DDIM-50", "cifar10-base", "ddim", 50, 2.0, 1, 1),
    *[(f"DDIM-{s}", "cifar10-base", "ddim", s, 2.0, 1, 1 / 2) for s in (20, 10)],
    ("DPM-Solver++ 20", "cifar10-base", "dpm++", 20, 2.0, 1, 1),
    ("DPM-Solver++ 10", "cifar10-base", "dpm++", 10, 2.0, 1, 1 / 2),
    ("DPM-Solver++ SDE 20 (the app's default)", "cifar10-base", "dpm++sde", 20, 2.0, 1, 1 / 2),
    *[(f"DDIM-50, w={w}", "cifar10-base", "ddim", 50, float(w), 1, 1 / 4) for w in (0, 1, 3, 4)],
    ("attention, DDIM-100", "cifar10-attn", "ddim", 100, 2.0, 1, 1 / 4),
    ("cascade 8->16->32, DDIM-50 scaled", "cifar10-cascade", "ddim", 50, 2.0, 3, 1 / 2),
    ("distilled, DDIM-4 (one pass per step)", "cifar10-distilled", "ddim", 4, 2.0, 1, 1),
    *[(f"distilled, DDIM-4, w={w}", "cifar10-distilled", "ddim", 4, float(w), 1, 1) for w in (0, 1, 3, 4)],
    ("distilled 2-step, DDIM-2 (one pass per step)", "cifar10-distilled-2", "ddim", 2, 2.0, 1, 1),
    *[(f"distilled 2-step, DDIM-2, w={w}", "cifar10-distilled-2", "ddim", 2, float(w), 1, 1) for w in (0, 1, 3, 4)],
    ("distilled 1-step, DDIM-1 (one pass)", "cifar10-distilled-1", "ddim", 1, 2.0, 1, 1),
    *[(f"distilled 1-step, DDIM-1, w={w}", "cifar10-distilled-1", "ddim", 1, float(w), 1, 1) for w in (0, 1, 3, 4)],
]
RECORDED = {
    "cifar10-base": ("ddim", 50, 2.0, 1),
    "cifar10-attn": ("ddim", 100, 2.0, 1),
    "cifar10-cascade": ("ddim", 50, 2.0, 3),
    "cifar10-distilled": ("ddim", 4, 2.0, 1),
    "cifar10-distilled-2": ("ddim", 2, 2.0, 1),
    "cifar10-distilled-1": ("ddim", 1, 2.0, 1),
}  # the configuration each checkpoint's eval.json holds


def sweep(
    checkpoints: Path, classifier_dir: Path, data: str, n: int, assets: Path, device: torch.device = torch.device("cpu")
) -> str:
    """The quality tables (assets/quality.md). Rows other than the headline DDIM-50, w=2 use a share of n
    samples (DDPM-500 a twentieth) to keep the sweep short on a small CPU."""
    classifier, _ = load_classifier(classifier_dir, device)
    ref = reference(classifier, data, n, resolve_precision("auto", device))
    rows = []
    for label, name, sampler, steps, guidance, stages, share in SWEEP:
        if not (checkpoints / name / "model.safetensors").exists():
            rows.append([label + f" ({name}: no checkpoint)"] + [""] * (len(ROW_HEADERS) - 1))
            continue
        count = max(2, round(n * share))
        result = evaluate(
            checkpoints / name, classifier_dir, data, sampler, steps, guidance, count, stages, device=device, ref=ref
        )
        rows.append(row(f"{label} (n={count})", result))
        print(rows[-1], flush=True)
        if RECORDED.get(name) == (sampler, steps, guidance, stages):
            (checkpoints / name / EVAL_NAME).write_text(json.dumps(result, indent=2))
    table = (
        f"Measured with `python -m fastdiff eval sweep --n {n} --data {data}` on {dataset_label(data)}, "
        f"guidance w=2 unless stated, on: {machine()}. Real vs real: the evaluator's accuracy on the test split, "
        f"and KID and FD of {n} training images against it. Noise textures: the share of samples whose mean "
        f"absolute vertical pixel difference exceeds the test split's {100 * TEXTURE_QUANTILE:.0f}th percentile "
        f"(so {100 - 100 * TEXTURE_QUANTILE:.0f}% of real images).\n\n" + markdown_table(ROW_HEADERS, rows) + "\n"
    )
    (assets / "quality.md").write_text("# Sample quality\n\n" + table)
    return table
