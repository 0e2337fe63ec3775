"""The FastDiff network: a lightweight class-conditional U-Net, (x_t, t, class_label) -> eps.

FastDiff paper, section 3 and Figure 1: a residual block at full resolution, two downsampling stages
(32 -> 16 -> 8), 2 * n_feat channels at the 8x8 bottleneck, a mirrored decoder with concatenated
skips, an output convolution. Sinusoidal time embedding through an MLP, added in every residual
block together with a learned class embedding. Optional 4-head self-attention at the bottleneck,
on the full 2 * n_feat channels (no 1x1 compression). Knows nothing of noise schedules.

The forward pass avoids allocating maps that change nothing in the result: each GroupNorm runs
together with the SiLU after it (in place when no autograd graph records it, as in sampling), and the
time embedding and the residual are added in place into the convolution outputs (a convolution's
backward needs its input and weight, not its output, so that is exact under autograd too).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig


class GroupNorm32(nn.GroupNorm):
    """GroupNorm that normalises CPU feature maps smaller than 32x32 in the contiguous (NCHW) layout,
    in the input's dtype: PyTorch's CPU kernel is several times slower on channels-last maps with few
    channels per group, in bf16 and in float32 (docs/performance.md), and the convolution after it takes
    either layout. forward(x, act=True) also applies the SiLU that follows every GroupNorm in this
    network."""

    def forward(self, x: torch.Tensor, act: bool = False) -> torch.Tensor:
        if x.device.type == "cpu" and x.shape[-1] * x.shape[-2] < 32 * 32:
            x = x.contiguous()
        h = super().forward(x)
        if act:
            h = F.silu(h, inplace=_no_autograd(h))
        return h


class NormActConv(nn.Sequential):
    """nn.Sequential(GroupNorm32, SiLU, Conv2d), the same state_dict keys (0.*, 2.*), whose forward runs
    the norm and the SiLU as one step (GroupNorm32.forward(x, act=True))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm, _, conv = self
        return conv(norm(x, act=True))


def _no_autograd(*tensors: torch.Tensor) -> bool:
    """True when no autograd graph records these tensors (inference_mode, no_grad, or nothing that
    requires grad), so they may be overwritten."""
    return not torch.is_grad_enabled() or not any(t.requires_grad for t in tensors)


def _add_(out: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """out + other, written into out (a convolution's fresh output) where the dtypes allow it."""
    if out.dtype == torch.promote_types(out.dtype, other.dtype):
        return out.add_(other)
    return out + other


class PointwiseConv(nn.Conv2d):
    """A 1x1 convolution that runs contiguous (NCHW) bf16 CPU maps, as the CPU trains, as one batched
    matmul, weight @ (C, H*W) per image: faster there than oneDNN's 1x1 convolution, forward and backward
    (docs/performance.md). Other maps (channels-last, float32, CUDA) take nn.Conv2d's path."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dtype != torch.bfloat16 or not x.is_contiguous():
            return super().forward(x)
        B, C, H, W = x.shape
        weight = self.weight.view(1, -1, C).expand(B, -1, -1)
        return torch.baddbmm(self.bias.view(1, -1, 1), weight, x.view(B, C, H * W)).view(B, -1, H, W)


def upsample(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x upsampling, F.interpolate(x, scale_factor=2.0); contiguous (NCHW) CPU maps
    are repeated by stacking, several times faster than PyTorch's CPU kernel for that layout."""
    if x.device.type != "cpu" or not x.is_contiguous():
        return F.interpolate(x, scale_factor=2.0)
    B, C, H, W = x.shape
    x = torch.stack([x, x], dim=-1).view(B, C, H, 2 * W)
    return torch.stack([x, x], dim=-2).view(B, C, 2 * H, 2 * W)


def group_norm(channels: int) -> nn.GroupNorm:
    return GroupNorm32(math.gcd(32, channels), channels)


GUIDANCE_SCALE = 100.0  # w is embedded as the timestep 100 w, so that 0 <= w <= 5 spans the range of t


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Transformer position encoding of the timestep (Vaswani et al. 2017): (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv twice, with the time+class embedding added in between."""

    def __init__(self, in_channels: int, out_channels: int, emb_dim: int):
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, out_channels)
        self.norm2 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        self.skip = nn.Identity() if in_channels == out_channels else PointwiseConv(in_channels, out_channels)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W); emb: (B, emb_dim), or k embeddings per map, (k * B, emb_dim): the first
        norm and convolution and the skip then run once per map, broadcast against the k embeddings,
        and the k outputs are stacked."""
        h = self.conv1(self.norm1(x, act=True))
        emb = self.emb_proj(emb)[:, :, None, None]
        batch = x.shape[0]  # not len(x): torch.export keeps a shape symbolic, a len() it makes a constant
        if emb.shape[0] == batch:
            h = _add_(h, emb)
            return _add_(self.conv2(self.norm2(h, act=True)), self.skip(x))
        copies = emb.shape[0] // batch
        h = (h + emb.view(copies, batch, -1, 1, 1)).flatten(0, 1)
        out = self.conv2(self.norm2(h, act=True))
        return _add_(out.view(copies, batch, *out.shape[1:]), self.skip(x)).flatten(0, 1)


class SelfAttention(nn.Module):
    """Multi-head self-attention over all positions of a feature map, with a residual connection."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)  # starts as the identity
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        qkv = self.qkv(self.norm(x)).reshape(B, 3, self.heads, C // self.heads, H * W)
        q, k, v = qkv.transpose(-1, -2).unbind(1)  # each (B, heads, H*W, C/heads)
        h = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(h.transpose(-1, -2).reshape(B, C, H, W))


class UNet(nn.Module):
    takes_label_sets = True  # forward accepts k labels per image (guidance.guided_output asks for two)

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        n, C = config.n_feat, config.image_channels
        emb_dim = 4 * n
        self.time_mlp = nn.Sequential(nn.Linear(n, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        # Index num_classes is the null class of classifier-free guidance.
        self.class_embedding = nn.Embedding(config.num_classes + 1, emb_dim) if config.num_classes else None
        self.guidance_mlp = None
        if config.guidance_embedding:  # sinusoidal of w, like the timestep's; zero at init (no effect)
            self.guidance_mlp = nn.Sequential(nn.Linear(n, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
            nn.init.zeros_(self.guidance_mlp[-1].weight)
            nn.init.zeros_(self.guidance_mlp[-1].bias)
        self.conv_in = nn.Conv2d(C, n, 3, padding=1)
        self.enc1 = ResBlock(n, n, emb_dim)  # 32x32
        self.down1 = nn.Conv2d(n, n, 3, stride=2, padding=1)  # 32 -> 16
        self.enc2 = ResBlock(n, n, emb_dim)  # 16x16
        self.down2 = nn.Conv2d(n, n, 3, stride=2, padding=1)  # 16 -> 8
        self.enc3 = ResBlock(n, 2 * n, emb_dim)  # 8x8 bottleneck
        self.mid = ResBlock(2 * n, 2 * n, emb_dim)
        self.attention = SelfAttention(2 * n, config.attention_heads) if config.attention else None
        self.dec2 = ResBlock(2 * n + n, n, emb_dim)  # 16x16, after concatenating enc2
        self.dec1 = ResBlock(n + n, n, emb_dim)  # 32x32, after concatenating enc1
        self.conv_out = NormActConv(group_norm(n), nn.SiLU(), nn.Conv2d(n, C, 3, padding=1))
        nn.init.zeros_(self.conv_out[-1].weight)

    @property
    def null_class(self) -> int:
        return self.config.num_classes

    def embed(
        self, t: torch.Tensor, class_labels: torch.Tensor | None, guidance: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, emb_dim); with k labels per timestep, class_labels (k * B,), (k * B, emb_dim)."""
        if class_labels is not None and class_labels.shape[0] != t.shape[0]:  # shapes, as in ResBlock.forward
            repeats = class_labels.shape[0] // t.shape[0]
            t = torch.cat([t] * repeats)
            guidance = None if guidance is None else torch.cat([guidance] * repeats)
        emb = self.time_mlp(sinusoidal_embedding(t, self.config.n_feat))
        if self.class_embedding is not None:
            if class_labels is None:
                class_labels = torch.full_like(t, self.null_class, dtype=torch.long)
            emb = emb + self.class_embedding(class_labels)
        if self.guidance_mlp is not None:
            w = torch.zeros_like(t, dtype=torch.float) if guidance is None else guidance
            emb = emb + self.guidance_mlp(sinusoidal_embedding(w * GUIDANCE_SCALE, self.config.n_feat))
        return emb

    def forward(
        self,
        x_t: torch.Tensor,
        t: torch.Tensor,
        class_labels: torch.Tensor | None = None,
        guidance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x_t: (B, C, H, W) noisy images; t: (B,) timesteps; class_labels: (B,) or None; guidance: (B,)
        weights w for a guidance_embedding model (None: w = 0) -> eps (or v or x0: config.prediction).
        class_labels may also hold k labels per image, (k * B,), as a guided pass asks each image under
        its class and the null class: the output is then (k * B, C, H, W), the same as for x_t and t
        repeated k times, and the layers before the first embedding run once per image."""
        emb = self.embed(t, class_labels, guidance)
        return self.conv_out(self.body(self.conv_in(x_t), emb))

    def body(self, h: torch.Tensor, emb: torch.Tensor, depth: int = 0) -> torch.Tensor:
        """Everything between the input and output convolutions. depth 0 is the whole U-Net,
        (B, n, H, W) -> (B, n, H, W); depth 1 enters at the 16x16 level, (B, n, H/2, W/2) -> same;
        depth 2 is the 8x8 bottleneck alone, (B, n, H/4, W/4) -> (B, 2n, H/4, W/4). The inner
        sub-networks are what a LowDiff cascade reuses for its lower resolutions (cascade.py)."""
        if depth == 0:
            skip1 = self.enc1(h, emb)
            h = self.down1(skip1)
        if depth <= 1:
            skip2 = self.enc2(h, emb)
            h = self.down2(skip2)
        h = self.mid(self.enc3(h, emb), emb)
        if self.attention is not None:
            h = self.attention(h)
        if depth <= 1:
            h = self.dec2(torch.cat([upsample(h), skip2], dim=1), emb)
        if depth == 0:
            h = self.dec1(torch.cat([upsample(h), skip1], dim=1), emb)
        return h
