"""Portable sampling noise: the same seed gives the same numbers here and in the browser edition's rng.js,
so a seed's image is the same in `fastdiff sample`, the app and the web page.

Philox4x32-10 (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3") is a counter-based
generator: block n of a stream is a pure function of (counter n, key), ten rounds of 32-bit multiplies and
xors that JavaScript computes exactly as well. Each image has its own stream, keyed by its seed; each block
gives four 32-bit words, turned into uniforms u = (word + 0.5) / 2^32 in (0, 1) and, two by two, into
standard normals by Box-Muller: z0 = sqrt(-2 ln u1) cos(2 pi u2), z1 = sqrt(-2 ln u1) sin(2 pi u2), in
float64, then rounded to float32.
"""

from __future__ import annotations

import numpy as np
import torch

PHILOX_MULTIPLIERS = (0xD2511F53, 0xCD9E8D57)
PHILOX_KEY_BUMPS = (0x9E3779B9, 0xBB67AE85)  # the golden ratio and sqrt(3) - 1, as 32-bit fractions
PHILOX_ROUNDS = 10
WORD = np.uint64(0xFFFFFFFF)


def philox4x32(counter: np.ndarray, key: np.ndarray) -> np.ndarray:
    """Philox4x32-10 of counters (N, 4) under keys (N, 2), both uint32: (N, 4) uint32 words."""
    c0, c1, c2, c3 = (counter[:, i].astype(np.uint64) for i in range(4))
    k0, k1 = (key[:, i].astype(np.uint64) for i in range(2))
    m0, m1 = (np.uint64(m) for m in PHILOX_MULTIPLIERS)
    for round_index in range(PHILOX_ROUNDS):
        if round_index:
            k0 = (k0 + np.uint64(PHILOX_KEY_BUMPS[0])) & WORD
            k1 = (k1 + np.uint64(PHILOX_KEY_BUMPS[1])) & WORD
        product0, product1 = m0 * c0, m1 * c2  # 32 x 32 -> 64 bits, exact in uint64
        c0, c1, c2, c3 = (
            (product1 >> np.uint64(32)) ^ c1 ^ k0,
            product1 & WORD,
            (product0 >> np.uint64(32)) ^ c3 ^ k1,
            product0 & WORD,
        )
    return np.stack([c0, c1, c2, c3], axis=1).astype(np.uint32)


def box_muller(words: np.ndarray) -> np.ndarray:
    """(..., 4) uint32 words -> (..., 4) float32 standard normals from word pairs (0, 1) and (2, 3)."""
    uniform = (words.astype(np.float64) + 0.5) / 2.0**32
    radius = np.sqrt(-2.0 * np.log(uniform[..., 0::2]))
    angle = 2.0 * np.pi * uniform[..., 1::2]
    normals = np.empty(words.shape, np.float64)
    normals[..., 0::2] = radius * np.cos(angle)
    normals[..., 1::2] = radius * np.sin(angle)
    return normals.astype(np.float32)


class ImageRNG:
    """One Philox stream per image, keyed (seed, 0) (EDM's StackedRandomGenerator, made portable): image i
    of a grid made with seed s is image 0 of a grid made with seed s + i, so any image can be regenerated
    alone, and the noise is the same on every device and in the browser (it is drawn on the CPU, then
    moved). Block n of a stream has the counter (n mod 2^32, n div 2^32, 0, 0); each draw of k normals
    per image takes its next ceil(k / 4) blocks and skips a last block's leftover normals, so that every
    draw starts on a block."""

    def __init__(self, seeds: list[int], device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.seeds = np.array([int(s) & 0xFFFFFFFF for s in seeds], np.uint64)
        self.block = 0  # blocks each stream has drawn so far

    def randn(self, *shape: int) -> torch.Tensor:
        """(num_images, *shape) standard normal float32 noise on the device."""
        count = int(np.prod(shape))
        blocks = -(-count // 4)
        index = np.arange(self.block, self.block + blocks, dtype=np.uint64)
        self.block += blocks
        counter = np.zeros((len(self.seeds), blocks, 4), np.uint32)
        counter[..., 0] = index & WORD
        counter[..., 1] = index >> np.uint64(32)
        key = np.zeros((len(self.seeds), blocks, 2), np.uint32)
        key[..., 0] = self.seeds[:, None]
        words = philox4x32(counter.reshape(-1, 4), key.reshape(-1, 2))
        noise = box_muller(words).reshape(len(self.seeds), -1)[:, :count].reshape(len(self.seeds), *shape)
        return torch.from_numpy(noise).to(self.device)
