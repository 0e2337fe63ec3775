"""The LowDiff unified multi-resolution U-Net: one set of weights that generates 8x8, 16x16 and 32x32.

LowDiff section 3.3 and Figure 4: the U-Net's inner sub-network is reused. For 8x8 generation the
8x8 bottleneck is the whole network; for 16x16 it processes the downsampled features inside the
16x16 level; 32x32 uses the whole U-Net. Each resolution has its own input and output convolutions,
and a resolution embedding (one-hot -> learned linear layer) is added to the time and class
embeddings. Every resolution above the lowest also takes the upsampled lower-resolution image as
extra input channels (improved-diffusion's SuperResModel, LowDiff section 3.4).

The full-size path keeps the plain UNet's layers under their names; the added layers start at zero,
so a plain checkpoint loads into a cascade (`--init`) and then computes exactly the plain model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import CascadeConfig, ModelConfig
from .unet import NormActConv, UNet, group_norm


def downsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """Area (box-filter) downsampling of (B, C, H, W) images to (B, C, size, size)."""
    return images if images.shape[-1] == size else F.interpolate(images, size=(size, size), mode="area")


def upsample_condition(images: torch.Tensor, size: int) -> torch.Tensor:
    """The low-resolution condition brought to the size it is concatenated at (bilinear, as in
    improved-diffusion's SuperResModel). Training and sampling both go through here."""
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


class CascadeUNet(UNet):
    def __init__(self, config: ModelConfig, cascade: CascadeConfig):
        if config.guidance_embedding:
            raise ValueError("a cascade takes no guidance input (no distilled cascades)")
        super().__init__(config)
        sizes = [config.image_size // 2**depth for depth in range(3)]  # the U-Net's three levels
        if cascade.resolutions[-1] != config.image_size or not set(cascade.resolutions) <= set(sizes):
            raise ValueError(
                f"cascade resolutions {cascade.resolutions} must end at {config.image_size} "
                f"and be taken from {sorted(sizes)}"
            )
        self.cascade = cascade
        n, C = config.n_feat, config.image_channels
        self.depths = {size: sizes.index(size) for size in cascade.resolutions}
        self.resolution_embedding = nn.Linear(len(cascade.resolutions), 4 * n, bias=False)
        # The full size reuses conv_in / conv_out; lower sizes get their own. Output widths: n at the
        # 32x32 and 16x16 levels, 2 * n out of the bottleneck (see UNet.body).
        lower = cascade.resolutions[:-1]
        self.inputs = nn.ModuleDict({str(r): nn.Conv2d(C, n, 3, padding=1) for r in lower})
        self.outputs = nn.ModuleDict({str(r): self._output_conv(n if self.depths[r] < 2 else 2 * n) for r in lower})
        # The convolution over [x_t, condition] is split in two: conv_in (or inputs[r]) on x_t, and a
        # bias-free one on the condition, so a dropped (zero) condition is the same as no condition.
        self.conditions = nn.ModuleDict(
            {str(r): nn.Conv2d(C, n, 3, padding=1, bias=False) for r in cascade.resolutions[1:]}
        )
        for layer in [self.resolution_embedding, *self.conditions.values()]:
            nn.init.zeros_(layer.weight)

    def keep_full_size_embedding(self) -> None:
        """Let training leave the full size's column of the resolution embedding as it is (zero after a
        warm start from a plain checkpoint): with the plain U-Net's weights frozen, the full size
        without a condition then stays exactly that U-Net, and only the conditioned stages change."""
        column = self.cascade.resolutions.index(self.config.image_size)
        self.resolution_embedding.weight.register_hook(
            lambda grad: grad.index_fill(1, torch.tensor([column], device=grad.device), 0)
        )

    def _output_conv(self, channels: int) -> nn.Sequential:
        conv = nn.Conv2d(channels, self.config.image_channels, 3, padding=1)
        nn.init.zeros_(conv.weight)
        return NormActConv(group_norm(channels), nn.SiLU(), conv)

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        condition: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x_t: (B, C, r, r) at one of the cascade's resolutions r; condition: (B, C, r, r), the
        upsampled partially noised lower-resolution image, or None (the lowest resolution, or a
        dropped condition); class_labels as in UNet.forward. Only the blocks of resolution r run.
        Returns eps, (B, C, r, r)."""
        size = x_t.shape[-1]
        if size not in self.depths:
            raise ValueError(f"this cascade generates {self.cascade.resolutions}, not {size}x{size}")
        index = self.cascade.resolutions.index(size)
        one_hot = F.one_hot(torch.tensor([index], device=t.device), len(self.cascade.resolutions))
        weight = self.resolution_embedding.weight
        emb = self.embed(t, class_labels) + self.resolution_embedding(one_hot.to(weight.dtype))
        full = size == self.config.image_size
        h = (self.conv_in if full else self.inputs[str(size)])(x_t)
        if condition is not None:
            h = h + self.conditions[str(size)](condition)
        h = self.body(h, emb, self.depths[size])
        return (self.conv_out if full else self.outputs[str(size)])(h)


def build_model(config: ModelConfig, cascade: CascadeConfig | None = None) -> UNet:
    """The network a config describes: a plain UNet, or a CascadeUNet when there is a cascade config."""
    return UNet(config) if cascade is None else CascadeUNet(config, cascade)


def parameter_overhead(config: ModelConfig, cascade: CascadeConfig) -> tuple[int, float]:
    """Parameters a cascade adds over the plain UNet of the same config: (count, fraction of the UNet)."""
    plain = sum(p.numel() for p in UNet(config).parameters())
    extra = sum(p.numel() for p in CascadeUNet(config, cascade).parameters()) - plain
    return extra, extra / plain
