"""Metrics against cases with known answers."""

import pytest
import torch

from fastdiff.eval.metrics import class_accuracy, frechet_distance, kid


def test_frechet_distance_of_gaussians_matches_the_closed_form():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 4, generator=generator, dtype=torch.float64)
    b = 2 * torch.randn(20000, 4, generator=generator, dtype=torch.float64) + 1
    # N(0, I) vs N(1, 4I) in 4 dims: |mu|^2 = 4, Tr(I + 4I - 2 * 2I) = 4
    assert frechet_distance(a, b) == pytest.approx(8.0, rel=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_kid_is_unbiased_near_zero_for_one_distribution_and_grows_with_the_gap():
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(2000, 16, generator=generator) for _ in range(2))
    same, _ = kid(a, b, num_subsets=20, subset_size=500)
    shifted, _ = kid(a, b + 0.5, num_subsets=20, subset_size=500)
    assert abs(same) < 0.01 and shifted > 10 * max(abs(same), 1e-3)


def test_class_accuracy():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert class_accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
