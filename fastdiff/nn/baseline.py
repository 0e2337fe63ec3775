"""The baseline of the FastDiff paper's Table 1: the original DDPM CIFAR-10 U-Net (Ho et al. 2020,
appendix B: ch=128, multipliers 1,2,2,2, two residual blocks per level, self-attention at 16x16,
35.7M parameters), built from this project's blocks and made class-conditional the same way, so
that benchmarks compare architectures rather than implementations. Used only for speed."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .unet import ResBlock, SelfAttention, group_norm, sinusoidal_embedding


@dataclass
class BaselineConfig:
    ch: int = 128  # channels at 32x32
    ch_mult: tuple[int, ...] = (1, 2, 2, 2)  # per level: 32, 16, 8, 4
    num_res_blocks: int = 2  # residual blocks per encoder level
    attention_resolution: int = 16  # self-attention after the blocks at this size
    image_channels: int = 3
    image_size: int = 32
    num_classes: int = 10
    # As ModelConfig's, for the samplers: an eps network without a guidance input.
    prediction: str = "eps"
    guidance_embedding: bool = False
    distilled_steps: int = 0


class BaselineUNet(nn.Module):
    def __init__(self, config: BaselineConfig = BaselineConfig()):
        super().__init__()
        self.config = config
        ch, emb_dim = config.ch, 4 * config.ch
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_embedding = nn.Embedding(config.num_classes + 1, emb_dim)
        self.conv_in = nn.Conv2d(config.image_channels, ch, 3, padding=1)
        self.down, skip_channels, channels, size = nn.ModuleList(), [ch], ch, config.image_size
        for level, mult in enumerate(config.ch_mult):
            for _ in range(config.num_res_blocks):
                self.down.append(self._block(channels, ch * mult, emb_dim, size))
                channels = ch * mult
                skip_channels.append(channels)
            if level + 1 < len(config.ch_mult):
                self.down.append(nn.Conv2d(channels, channels, 3, stride=2, padding=1))
                skip_channels.append(channels)
                size //= 2
        self.mid = nn.ModuleList(
            [ResBlock(channels, channels, emb_dim), SelfAttention(channels, 1), ResBlock(channels, channels, emb_dim)]
        )
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(config.ch_mult))):
            for _ in range(config.num_res_blocks + 1):
                self.up.append(self._block(channels + skip_channels.pop(), ch * mult, emb_dim, size))
                channels = ch * mult
            if level:
                self.up.append(nn.Upsample(scale_factor=2.0))
                self.up.append(nn.Conv2d(channels, channels, 3, padding=1))
                size *= 2
        self.conv_out = nn.Sequential(
            group_norm(channels), nn.SiLU(), nn.Conv2d(channels, config.image_channels, 3, padding=1)
        )

    @property
    def null_class(self) -> int:
        return self.config.num_classes

    def _block(self, in_channels: int, out_channels: int, emb_dim: int, size: int) -> nn.ModuleList:
        block = [ResBlock(in_channels, out_channels, emb_dim)]
        if size == self.config.attention_resolution:
            block.append(SelfAttention(out_channels, 1))
        return nn.ModuleList(block)

    def _run(self, block: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for layer in block:
            h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
        return h

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, class_labels: torch.Tensor | None = None) -> torch.Tensor:
        if class_labels is None:
            class_labels = torch.full_like(t, self.config.num_classes, dtype=torch.long)
        emb = self.time_mlp(sinusoidal_embedding(t, self.config.ch)) + self.class_embedding(class_labels)
        h = self.conv_in(x_t)
        skips = [h]
        for layer in self.down:
            h = self._run(layer, h, emb) if isinstance(layer, nn.ModuleList) else layer(h)
            skips.append(h)
        h = self._run(self.mid, h, emb)
        for layer in self.up:
            if isinstance(layer, nn.ModuleList):
                h = self._run(layer, torch.cat([h, skips.pop()], dim=1), emb)
            else:
                h = layer(h)
        return self.conv_out(h)
