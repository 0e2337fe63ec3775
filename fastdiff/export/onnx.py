"""One checkpoint's network as an ONNX file: the forward pass (x_t, t, class_label[, guidance]) -> output
(eps, v or x0, as config.prediction says) of a plain, attention or guidance-distilled U-Net, one label per
image, with a dynamic batch axis named "batch". The browser edition and the CPU inference backends share it.

torch.onnx's dynamo exporter (torch.export, then onnxscript) writes opset 21, where each GroupNorm is one
GroupNormalization node. Before anything is written, ONNX Runtime (CPU) runs the graph on seeded batches of
two sizes other than the traced one, and its output is compared with PyTorch's eager fp32 forward; a
difference above the tolerance stops the export with a one-line error and no file. With fp16=True the
weights are stored in fp16 and cast to fp32 inside the graph: half the file, fp32 arithmetic; the check then
compares with PyTorch running the same fp16-rounded weights (the shipped checkpoints store fp16 weights, so
for them nothing is rounded). The packages are an optional extra (pip install 'fastdiff[export]').
"""

from __future__ import annotations

import importlib.util
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..nn.checkpoint import atomic_write, load_model, read_full_config
from ..nn.unet import UNet

PACKAGES = ("onnx", "onnxscript", "onnxruntime")
OPSET = 21
TRACE_BATCH = 2  # torch.export makes an example dimension of size 1 a constant
CHECK_BATCHES = (1, 5)  # both differ from TRACE_BATCH, so the check also covers the dynamic batch
# ONNX Runtime and PyTorch differ only in the order of their sums (about 1e-6 on the shipped models).
TOLERANCE = 1e-4


class ExportError(Exception):
    """The export cannot be made or failed its check; the message is one line."""


@dataclass
class Exported:
    path: Path
    size: int  # bytes
    max_difference: float  # the largest |ONNX Runtime - PyTorch| of the check
    tolerance: float


def require_packages() -> None:
    missing = [name for name in PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(f"ONNX export needs {', '.join(missing)}: pip install 'fastdiff[export]'")


def exportable_model(checkpoint: Path) -> tuple[UNet, int]:
    """The checkpoint's fp32 network in the contiguous layout, and its number of timesteps T."""
    if read_full_config(checkpoint)[3] is not None:
        raise ExportError(
            f"{checkpoint}: exporting a cascade is not supported yet (each stage's resolution and low-res "
            "input is a graph of its own); export a plain, attention or distilled checkpoint"
        )
    model, diffusion_config, _ = load_model(checkpoint)
    return model.to(memory_format=torch.contiguous_format), diffusion_config.num_timesteps


def example_inputs(model: UNet, batch: int, num_timesteps: int, seed: int) -> dict[str, torch.Tensor]:
    """A seeded batch: Gaussian x_t, t in [0, T), labels that include the null class, and for a
    distilled student w across its guidance range."""
    config, generator = model.config, torch.Generator().manual_seed(seed)
    inputs = {
        "x_t": torch.randn(batch, config.image_channels, config.image_size, config.image_size, generator=generator),
        "t": torch.randint(0, num_timesteps, (batch,), generator=generator),
        "class_label": torch.randint(0, config.num_classes + 1, (batch,), generator=generator),
    }
    if config.guidance_embedding:
        low, high = config.guidance_range
        inputs["guidance"] = low + (high - low) * torch.rand(batch, generator=generator)
    return inputs


def to_onnx(model: UNet, num_timesteps: int, fp16: bool = False):
    """The network's forward as an onnx.ModelProto with a dynamic batch axis."""
    inputs = example_inputs(model, TRACE_BATCH, num_timesteps, seed=0)
    batch = torch.export.Dim("batch", min=1)
    # The exporter's notes (torchvision's operators absent, its own deprecations) are hidden: the check
    # after the export is what tells whether the graph is right.
    log = logging.getLogger("torch.onnx")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                tuple(inputs.values()),
                dynamo=True,
                opset_version=OPSET,
                input_names=list(inputs),
                output_names=["output"],
                dynamic_shapes=tuple({0: batch} for _ in inputs),
                verbose=False,
            )
    finally:
        log.setLevel(level)
    proto = program.model_proto
    return weights_to_fp16(proto, set(model.state_dict())) if fp16 else proto


def weights_to_fp16(proto, weight_names: set[str]):
    """Store the float32 initializers named in weight_names as float16, each cast back to float32 by a
    Cast node at the start of the graph. Only the network's weights: constants the exporter folded (the
    time embedding's frequencies) stay float32, as fp16 would shift the angles t * frequency."""
    from onnx import TensorProto, helper, numpy_helper

    graph, casts = proto.graph, []
    for tensor in graph.initializer:
        if tensor.name in weight_names and tensor.data_type == TensorProto.FLOAT:
            name = tensor.name
            tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), f"{name}.fp16"))
            casts.append(helper.make_node("Cast", [tensor.name], [name], to=TensorProto.FLOAT))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    return proto


def max_difference(onnx_bytes: bytes, model: UNet, num_timesteps: int) -> float:
    """The largest |ONNX Runtime - PyTorch eager| over seeded batches of the CHECK_BATCHES sizes (NaN
    when either output has one)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    differences = []
    for seed, batch in enumerate(CHECK_BATCHES, start=1):
        inputs = example_inputs(model, batch, num_timesteps, seed)
        with torch.inference_mode():
            expected = model(*inputs.values()).numpy()
        (output,) = session.run(None, {name: value.numpy() for name, value in inputs.items()})
        differences.append(np.abs(output - expected).max())
    return float(np.max(differences))


def rounded_to_fp16(model: UNet) -> UNet:
    """The fp32 network with every weight rounded to fp16, as an fp16 export stores it."""
    return model.half().float()


def export_onnx(checkpoint: Path, out: Path, fp16: bool = False) -> Exported:
    """Export a checkpoint folder's network to out (written only once it passed the check)."""
    require_packages()
    model, num_timesteps = exportable_model(Path(checkpoint))
    if fp16:
        model = rounded_to_fp16(model)
    onnx_bytes = to_onnx(model, num_timesteps, fp16).SerializeToString()
    difference = max_difference(onnx_bytes, model, num_timesteps)
    if not difference <= TOLERANCE:
        raise ExportError(
            f"{out}: not written: ONNX Runtime's output differs from PyTorch's by {difference:.3g} "
            f"(tolerance {TOLERANCE:g})"
        )
    atomic_write(Path(out), lambda tmp: tmp.write_bytes(onnx_bytes))
    return Exported(Path(out), len(onnx_bytes), difference, TOLERANCE)
