"""The same seed gives the same starting noise on every device: the samplers' noise is drawn on CPU
generators and moved to the device afterwards."""

import torch

from fastdiff.diffusion.samplers import ImageRNG


def test_image_noise_is_a_cpu_generators_draw_for_its_seed():
    noise = ImageRNG([0, 7]).randn(3, 4, 4)
    assert torch.equal(noise[0], torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(noise[1], torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(7)))


def test_an_rng_for_another_device_draws_on_the_cpu_and_moves_the_noise():
    rng = ImageRNG([0, 7], "meta")  # stands for cuda: a device whose own generator would differ
    assert all(g.device.type == "cpu" for g in rng.generators)
    assert rng.randn(3, 4, 4).device.type == "meta"
    cpu = ImageRNG([0, 7])
    cpu.randn(3, 4, 4)  # both generators have now drawn the same numbers
    assert all(torch.equal(a.get_state(), b.get_state()) for a, b in zip(rng.generators, cpu.generators))
