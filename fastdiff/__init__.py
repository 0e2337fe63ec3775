"""FastDiff: a lightweight class-conditional diffusion model for CIFAR-10 (FastDiff and LowDiff papers)."""
