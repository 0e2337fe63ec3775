"""Sample-quality metrics on feature vectors: class accuracy, KID (Binkowski et al. 2018, unbiased
MMD^2 with a cubic polynomial kernel, averaged over subsets) and the Frechet distance (the formula of
FID, here in the features of the project's own classifier). float64 throughout."""

from __future__ import annotations

import torch

TEXTURE_QUANTILE = 0.99  # a sample is a noise texture above this quantile of real images' high-frequency energy


def high_frequency_energy(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between vertically adjacent pixels of (B, C, H, W) images in [-1, 1]:
    (B,). The failure mode it catches is a saturated, high-frequency noise texture instead of a picture."""
    images = images.float()
    return (images[:, :, 1:] - images[:, :, :-1]).abs().mean(dim=(1, 2, 3))


def texture_threshold(real_images: torch.Tensor) -> float:
    """The TEXTURE_QUANTILE of real images' high-frequency energy: by construction, 1% of real images
    lie above it."""
    return torch.quantile(high_frequency_energy(real_images).double(), TEXTURE_QUANTILE).item()


def texture_share(images: torch.Tensor, threshold: float) -> float:
    """Share of images whose high-frequency energy exceeds the real images' threshold."""
    return (high_frequency_energy(images) > threshold).float().mean().item()


def class_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(dim=1) == labels).float().mean().item()


def kid(
    a: torch.Tensor, b: torch.Tensor, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance between feature sets (N, D) and (M, D): mean and std over subsets."""
    a, b = a.double(), b.double()
    size = min(subset_size, len(a), len(b))
    generator = torch.Generator().manual_seed(seed)
    dim = a.shape[1]
    estimates = []
    for _ in range(num_subsets):
        x = a[torch.randperm(len(a), generator=generator)[:size]]
        y = b[torch.randperm(len(b), generator=generator)[:size]]
        k_xx, k_yy, k_xy = [(u @ v.T / dim + 1) ** 3 for u, v in ((x, x), (y, y), (x, y))]
        off_diagonal = size * (size - 1)
        mmd = (
            (k_xx.sum() - k_xx.diagonal().sum()) / off_diagonal
            + (k_yy.sum() - k_yy.diagonal().sum()) / off_diagonal
            - 2 * k_xy.mean()
        )
        estimates.append(mmd.item())
    values = torch.tensor(estimates)
    return values.mean().item(), values.std().item() if len(values) > 1 else 0.0


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^(1/2)) between two feature sets (Heusel et al. 2017)."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    # Tr((C_a C_b)^(1/2)) = sum of sqrt of the eigenvalues of C_a^(1/2) C_b C_a^(1/2), a symmetric PSD matrix.
    eigenvalues, eigenvectors = torch.linalg.eigh(cov_a)
    sqrt_a = eigenvectors @ torch.diag(eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T
    trace_sqrt = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp(min=0).sqrt().sum()
    return ((mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt).item()
