"""Checkpoints without pickle: a folder with `model.safetensors` (weights) and `config.json` (model and
diffusion config, class names, training metadata), the diffusers layout. Resume state for training
is one separate safetensors file. Every file is written to a temporary name and renamed into place,
so a kill at any moment leaves the previous version intact."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..config import CascadeConfig, DiffusionConfig, ModelConfig, from_dict, to_dict
from .cascade import build_model
from .unet import UNet

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
# The checkpoints shipped in checkpoints/: folder name -> what it is.
BASE, ATTENTION, CASCADE, DISTILLED = "cifar10-base", "cifar10-attn", "cifar10-cascade", "cifar10-distilled"
DISTILLED_2 = "cifar10-distilled-2"  # the 4-step student distilled on to 2 steps
DISTILLED_1 = "cifar10-distilled-1"  # and on to 1 step
SHIPPED = {
    BASE: "base model",
    ATTENTION: "attention variant",
    CASCADE: "cascade (2-3 stages)",
    DISTILLED: "distilled (4 DDIM steps, guidance in one pass)",
    DISTILLED_2: "distilled (2 DDIM steps, guidance in one pass)",
    DISTILLED_1: "distilled (1 DDIM step, guidance in one pass)",
}


class CheckpointError(Exception):
    """A checkpoint file is missing, unreadable or does not fit the model; the message names the file."""


def atomic_write(path: Path, write) -> None:
    """Call write(tmp_path), then rename tmp_path to path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.chmod(tmp, 0o644)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict | None = None) -> None:
    """Atomically write tensors and a JSON-serialisable metadata dict to one safetensors file."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {"json": json.dumps(metadata)} if metadata is not None else None
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def load_tensors(path: Path, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = json.loads((f.metadata() or {}).get("json", "null"))
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, json.JSONDecodeError, OSError, RuntimeError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors file (truncated or corrupt?): {e}") from e
    return tensors, metadata


def save_model(
    folder: Path,
    state_dict: dict[str, torch.Tensor],
    model_config: ModelConfig,
    diffusion_config: DiffusionConfig,
    training: dict | None = None,
    dtype: torch.dtype = torch.float16,
    cascade_config: CascadeConfig | None = None,
) -> None:
    """Write the shippable checkpoint: weights (fp16 by default) + config.json, which has a "cascade"
    entry only for a LowDiff cascade."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_tensors(folder / WEIGHTS_NAME, {k: v.to(dtype) if v.is_floating_point() else v for k, v in state_dict.items()})
    config = {"model": to_dict(model_config), "diffusion": to_dict(diffusion_config), "training": training or {}}
    if cascade_config is not None:
        config["cascade"] = to_dict(cascade_config)
    atomic_write(folder / CONFIG_NAME, lambda tmp: tmp.write_text(json.dumps(config, indent=2)))


def is_generator(folder: Path) -> bool:
    """Whether a folder holds a diffusion checkpoint: weights and a config.json with a "model" entry,
    unlike the evaluator's classifier. A config.json that cannot be read counts, so that loading the
    folder says what is wrong with it."""
    config = Path(folder) / CONFIG_NAME
    if not (Path(folder) / WEIGHTS_NAME).is_file() or not config.is_file():
        return False
    try:
        return "model" in json.loads(config.read_text())
    except (OSError, json.JSONDecodeError, TypeError):
        return True


def read_config(folder: Path) -> tuple[ModelConfig, DiffusionConfig, dict]:
    model_config, diffusion_config, training, _ = read_full_config(folder)
    return model_config, diffusion_config, training


def read_full_config(folder: Path) -> tuple[ModelConfig, DiffusionConfig, dict, CascadeConfig | None]:
    """read_config plus the cascade config (None for a plain model)."""
    path = Path(folder) / CONFIG_NAME
    if not Path(folder).is_dir():
        raise CheckpointError(f"{folder}: checkpoint folder not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    try:
        config = json.loads(path.read_text())
        cascade = from_dict(CascadeConfig, config["cascade"]) if "cascade" in config else None
        return (
            from_dict(ModelConfig, config["model"]),
            from_dict(DiffusionConfig, config["diffusion"]),
            config.get("training", {}),
            cascade,
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: not a valid FastDiff config: {e}") from e


def load_state_into(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], path: Path) -> None:
    """load_state_dict with a message that names the file and the mismatching keys or shapes."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = [
        f"{k} {tuple(v.shape)} != {tuple(expected[k].shape)}"
        for k, v in state_dict.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if missing or unexpected or wrong_shape:
        problems = [
            f"missing {missing[:3]}" if missing else "",
            f"unexpected {unexpected[:3]}" if unexpected else "",
            f"wrong shape {wrong_shape[:3]}" if wrong_shape else "",
        ]
        raise CheckpointError(f"{path}: weights do not match the config: " + "; ".join(p for p in problems if p))
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state_dict.items()})


def images_seen_total(training: dict) -> int | None:
    """Training images a checkpoint has seen, counting the checkpoint it was warm-started from (which
    may itself not know its count: then only this run's)."""
    if "images_seen" not in training:
        return None
    return training["images_seen"] + ((training.get("warm_start") or {}).get("images_seen") or 0)


def load_model(folder: Path, device: str | torch.device = "cpu") -> tuple[UNet, DiffusionConfig, dict]:
    """Load a checkpoint folder into an fp32 UNet (a CascadeUNet when config.json has a "cascade"
    entry) in eval mode, in channels_last layout (faster convolutions on CPU and GPU); returns
    (model, diffusion config, training metadata)."""
    model_config, diffusion_config, training, cascade_config = read_full_config(folder)
    try:
        model = build_model(model_config, cascade_config)
    except ValueError as e:
        raise CheckpointError(f"{Path(folder) / CONFIG_NAME}: not a valid FastDiff config: {e}") from e
    path = Path(folder) / WEIGHTS_NAME
    state_dict, _ = load_tensors(path)
    load_state_into(model, state_dict, path)
    return model.to(device, memory_format=torch.channels_last).eval(), diffusion_config, training
