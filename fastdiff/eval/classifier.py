"""The project's own CIFAR-10 classifier, the evaluator behind class accuracy, KID and FD (Inception
weights cannot be downloaded everywhere). A ResNet-9 (the DAWNBench design by Myrtle.ai) of
configurable width, trained by `python -m fastdiff eval train-classifier`, saved like every other
checkpoint: model.safetensors + config.json."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..config import from_dict, to_dict
from ..data import ImageDataset, to_model_range
from ..device import autocast
from ..nn.checkpoint import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    atomic_write,
    load_state_into,
    load_tensors,
    save_tensors,
)
from .metrics import class_accuracy


@dataclass
class ClassifierConfig:
    width: int = 32  # channels of the first layer; later layers have 2x, 4x, 8x
    num_classes: int = 10
    image_channels: int = 3
    class_names: tuple[str, ...] = ()

    def __post_init__(self):
        self.class_names = tuple(self.class_names)


def conv_bn(in_channels: int, out_channels: int, pool: bool = False) -> nn.Sequential:
    layers = [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]
    return nn.Sequential(*layers, nn.MaxPool2d(2)) if pool else nn.Sequential(*layers)


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, channels), conv_bn(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Classifier(nn.Module):
    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.trunk = nn.Sequential(
            conv_bn(config.image_channels, w),
            conv_bn(w, 2 * w, pool=True),
            Residual(2 * w),  # 16x16
            conv_bn(2 * w, 4 * w, pool=True),  # 8x8
            conv_bn(4 * w, 8 * w, pool=True),
            Residual(8 * w),  # 4x4
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(8 * w, config.num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features (B, 8 * width) of images in [-1, 1]."""
        return self.trunk(images)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features) * 0.125  # a scaled head trains faster (Myrtle.ai)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits(self.features(images))


@torch.no_grad()
def classify(
    model: Classifier, images: torch.Tensor, precision: str = "fp32", batch_size: int = 500
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, features) in float32, averaged over the image and its mirror image."""
    device = next(model.parameters()).device
    logits, features = [], []
    for batch in images.split(batch_size):
        batch = batch.to(device).contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            both = model.features(torch.cat([batch, batch.flip(3)]))
            f = both.float().view(2, len(batch), -1).mean(0)
        features.append(f.cpu())
        logits.append(model.logits(f).cpu())
    return torch.cat(logits), torch.cat(features)


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crops of the image padded by 4 (reflection); flips come from ImageDataset.batches."""
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    dx, dy = torch.randint(0, 9, (2,), generator=generator).tolist()
    return padded[:, :, dy : dy + x.shape[2], dx : dx + x.shape[3]]


def train_classifier(
    train: ImageDataset,
    test: ImageDataset,
    out: Path,
    width: int = 32,
    epochs: int = 16,
    batch_size: int = 256,
    lr: float = 0.2,
    device: torch.device = torch.device("cpu"),
    precision: str = "fp32",
    init: Path | None = None,
    log=print,
) -> float:
    """SGD with Nesterov momentum, a one-cycle learning rate and label smoothing; returns test accuracy.
    init: continue from a saved classifier (its width) instead of a fresh one."""
    torch.manual_seed(0)
    if init is not None:
        model, metadata = load_classifier(init, device)
        epochs_before = metadata.get("epochs", 0)
    else:
        config = ClassifierConfig(width, len(train.class_names), train.images.shape[1], train.class_names)
        model, epochs_before = Classifier(config).to(device, memory_format=torch.channels_last), 0
    if model.config.class_names != tuple(train.class_names):
        raise ValueError(f"{init}: classifies {model.config.class_names}, not this data's {train.class_names}")
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    total = epochs * (len(train) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, lr, total_steps=total, pct_start=0.25, anneal_strategy="linear"
    )
    generator = torch.Generator().manual_seed(0)
    for epoch in range(epochs):
        model.train()
        start, seen = time.perf_counter(), 0
        for x, labels in train.batches(batch_size, generator):
            x = augment(x, generator).to(device).contiguous(memory_format=torch.channels_last)
            with autocast(device, precision):
                loss = F.cross_entropy(model(x).float(), labels.to(device), label_smoothing=0.2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            seen += len(x)
        accuracy = evaluate_accuracy(model, test, precision)
        log(
            f"epoch {epoch + 1}/{epochs}: loss {loss.item():.3f}, test accuracy {100 * accuracy:.2f}%, "
            f"{seen / (time.perf_counter() - start):.0f} images/s"
        )
    save_classifier(out, model, {"test_accuracy": accuracy, "epochs": epochs_before + epochs})
    return accuracy


def evaluate_accuracy(model: Classifier, data: ImageDataset, precision: str = "fp32") -> float:
    model.eval()
    logits, _ = classify(model, to_model_range(data.images), precision)
    return class_accuracy(logits, data.labels)


def save_classifier(folder: Path, model: Classifier, metadata: dict) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors(
        folder / WEIGHTS_NAME, {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    )
    config = {"classifier": to_dict(model.config), "metadata": metadata}
    atomic_write(folder / CONFIG_NAME, lambda tmp: tmp.write_text(json.dumps(config, indent=2)))


def load_classifier(folder: Path, device: str | torch.device = "cpu") -> tuple[Classifier, dict]:
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(
            f"{path}: file not found (train the evaluator with `python -m fastdiff eval train-classifier`)"
        )
    try:
        config = json.loads(path.read_text())
        model = Classifier(from_dict(ClassifierConfig, config["classifier"]))
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: not a valid classifier config: {e}") from e
    weights = Path(folder) / WEIGHTS_NAME
    state_dict, _ = load_tensors(weights)
    load_state_into(model, state_dict, weights)
    return model.to(device, memory_format=torch.channels_last).eval(), config["metadata"]
