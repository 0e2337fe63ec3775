"""The noise-texture measure: high-frequency energy per image and the share above real images' 99th
percentile."""

import torch

from fastdiff.eval.metrics import TEXTURE_QUANTILE, high_frequency_energy, texture_share, texture_threshold


def test_flat_images_have_no_energy_and_stripes_the_most():
    flat = torch.zeros(1, 3, 8, 8)
    stripes = torch.ones(1, 3, 8, 8)
    stripes[:, :, ::2] = -1  # rows alternate between the extremes: |difference| 2 everywhere
    assert high_frequency_energy(flat).tolist() == [0.0] and high_frequency_energy(stripes).tolist() == [2.0]


def test_one_percent_of_the_real_images_lie_above_the_threshold():
    generator = torch.Generator().manual_seed(0)
    smooth = torch.linspace(-1, 1, 32).view(1, 1, 32, 1).expand(1000, 3, 32, 32)
    real = (smooth + 0.1 * torch.randn(1000, 3, 32, 32, generator=generator)).clamp(-1, 1)
    threshold = texture_threshold(real)
    assert abs(texture_share(real, threshold) - (1 - TEXTURE_QUANTILE)) <= 0.002
    textures = torch.rand(10, 3, 32, 32, generator=generator) * 2 - 1  # uniform noise: far above smooth images
    assert texture_share(textures, threshold) == 1.0
    assert texture_share(torch.cat([real[:90], textures]), threshold) >= 0.1
