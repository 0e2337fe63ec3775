"""The portable noise (fastdiff/diffusion/rng.py): Philox4x32-10's published answers, one stream per seed,
the same numbers on every device, and a standard normal's statistics. tests/js/rng.test.mjs pins the
browser's rng.js to the same values."""

import numpy as np
import torch

from fastdiff.diffusion.rng import ImageRNG, philox4x32

# Random123's known-answer vectors for philox4x32 with 10 rounds: (counter, key, output)
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]
SEED_7_FIRST_NORMALS = [0.0002915676450356841, -0.30484697222709656, 1.78875732421875, 1.0678725242614746]


def test_philox_gives_random123s_known_answers():
    counters = np.array([counter for counter, _, _ in KNOWN_ANSWERS], np.uint32)
    keys = np.array([key for _, key, _ in KNOWN_ANSWERS], np.uint32)
    assert philox4x32(counters, keys).tolist() == [list(output) for _, _, output in KNOWN_ANSWERS]


def test_a_seeds_first_normals_are_pinned():
    assert ImageRNG([7]).randn(4)[0].tolist() == SEED_7_FIRST_NORMALS


def test_image_i_of_a_grid_is_image_0_of_the_grid_from_its_seed():
    grid, alone = ImageRNG([5, 6]), ImageRNG([6])
    for _ in range(2):  # the first draw (x_T) and a later one (a step's noise)
        assert torch.equal(grid.randn(3, 4, 5)[1], alone.randn(3, 4, 5)[0])


def test_each_draw_takes_fresh_blocks():
    rng = ImageRNG([0])
    first, second = rng.randn(6), rng.randn(6)
    assert not torch.equal(first, second)
    assert rng.block == 4  # 6 normals take 2 blocks of 4; the leftover 2 are skipped
    assert torch.equal(ImageRNG([0]).randn(8)[0, :6], first[0])


def test_noise_for_another_device_is_drawn_on_the_cpu_and_moved():
    noise = ImageRNG([0, 7], "meta").randn(3, 4, 4)  # meta stands for cuda, whose own generator would differ
    assert noise.device.type == "meta" and noise.dtype == torch.float32


def test_the_noise_is_standard_normal():
    noise = ImageRNG(list(range(64))).randn(3, 32, 32).double()
    assert abs(noise.mean().item()) < 0.01 and abs(noise.std().item() - 1) < 0.01
    assert abs((noise**4).mean().item() - 3) < 0.05  # Gaussian kurtosis
    correlation = torch.corrcoef(noise.flatten(1))[0, 1:]
    assert correlation.abs().max() < 0.05  # different seeds, unrelated streams
