"""Classifier-free guidance (Ho & Salimans 2022) as a thin wrapper that turns a network into the
`denoiser(x_t, t) -> eps` the samplers expect:

    eps = (1 + w) * eps(x_t, t, c) - w * eps(x_t, t, null)

Both branches run in one batched forward pass; w = 0 skips the unconditional branch. A
guidance-distilled network (config.guidance_embedding, Meng et al. 2023) takes w as an input and gives
the guided prediction in one pass of the plain batch. The combination is affine with weights summing
to 1, so it holds for a v- or x0-predicting network's output as it does for eps. On CUDA the
guided forward is replayed from a CUDA graph (`guided_denoiser`): a small U-Net at grid batch sizes
spends more time launching its kernels than running them, and a replay launches them all at once.
"""

from __future__ import annotations

import math

import torch

from ..device import autocast
from ..nn.unet import UNet

MAX_GUIDANCE = 10.0  # far above the paper's w = 2; larger weights push eps out of range and samples saturate


def check_guidance(guidance: float, model: UNet | None = None) -> None:
    """Raise ValueError with a one-line message unless 0 <= w <= MAX_GUIDANCE, and for a
    guidance-distilled model, unless w is in the range it was trained for."""
    if not math.isfinite(guidance) or not 0 <= guidance <= MAX_GUIDANCE:
        raise ValueError(f"guidance weight must be between 0 and {MAX_GUIDANCE:g}, got {guidance:g}")
    if model is not None and model.config.guidance_embedding:
        low, high = model.config.guidance_range
        if not low <= guidance <= high:
            raise ValueError(f"this checkpoint was distilled for guidance {low:g} to {high:g}, got {guidance:g}")


def combine(eps_cond: torch.Tensor, eps_uncond: torch.Tensor, w: float | torch.Tensor) -> torch.Tensor:
    return (1 + w) * eps_cond - w * eps_uncond


def guided_output(
    model: UNet, x_t: torch.Tensor, t: torch.Tensor, class_labels: torch.Tensor, w: float | torch.Tensor
) -> torch.Tensor:
    """The guided prediction for labels (B,) and weight w (a float, or per image (B,)): one pass with w
    as input for a guidance-distilled model, else the conditional and unconditional branches batched."""
    if model.config.guidance_embedding:
        weights = w if torch.is_tensor(w) else torch.full(t.shape, float(w), device=t.device)
        return model(x_t, t, class_labels, guidance=weights)
    null_labels = torch.full_like(class_labels, model.null_class)
    if getattr(model, "takes_label_sets", False):  # each image under both labels, its first layers run once
        output = model(x_t, t, torch.cat([class_labels, null_labels]))
    else:
        output = model(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([class_labels, null_labels]))
    output_cond, output_uncond = output.chunk(2)
    return combine(output_cond, output_uncond, w.view(-1, 1, 1, 1) if torch.is_tensor(w) else w)


class GuidedDenoiser:
    def __init__(self, model: UNet, class_labels: torch.Tensor | None, guidance: float, precision: str = "fp32"):
        """class_labels: (B,) long, or None for unconditional samples; guidance: w >= 0."""
        self.model = model
        self.device = next(model.parameters()).device
        self.precision = precision
        self.guidance = guidance
        self.channels_last = next(model.parameters()).is_contiguous(memory_format=torch.channels_last)
        if class_labels is None or not model.config.num_classes:
            self.class_labels, self.guidance = None, 0.0
        else:
            self.class_labels = class_labels.to(self.device)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x_t = x_t.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(self.device, self.precision):
            if self.guidance == 0:
                return self.model(x_t, t, self.class_labels).float()
            return guided_output(self.model, x_t, t, self.class_labels, self.guidance).float()


class CUDAGraphDenoiser:
    """A denoiser replayed from a CUDA graph captured at the first call's shapes: inputs are copied into
    fixed buffers, the graph replayed, its output copied out. Calls with other shapes run the denoiser
    itself."""

    WARMUP_CALLS = 3  # on a side stream before capture: cuDNN's choice of kernels, lazy allocations

    def __init__(self, denoiser: GuidedDenoiser):
        self.denoiser = denoiser
        self.graph: torch.cuda.CUDAGraph | None = None

    def _capture(self, x_t: torch.Tensor, t: torch.Tensor) -> None:
        self.x_t, self.t = x_t.clone(), t.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.WARMUP_CALLS):
                self.denoiser(self.x_t, self.t)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):  # other threads may sample too
            self.eps = self.denoiser(self.x_t, self.t)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.graph is None:
            self._capture(x_t, t)
        elif x_t.shape != self.x_t.shape or t.shape != self.t.shape:
            return self.denoiser(x_t, t)
        self.x_t.copy_(x_t)
        self.t.copy_(t)
        self.graph.replay()
        return self.eps.clone()


def guided_denoiser(
    model: UNet, class_labels: torch.Tensor | None, guidance: float, precision: str = "fp32", cuda_graph: bool = True
):
    """The denoiser of a sampling run: a GuidedDenoiser, replayed from a CUDA graph on CUDA unless
    cuda_graph is False (elsewhere there is no graph to replay)."""
    denoiser = GuidedDenoiser(model, class_labels, guidance, precision)
    return CUDAGraphDenoiser(denoiser) if cuda_graph and denoiser.device.type == "cuda" else denoiser
