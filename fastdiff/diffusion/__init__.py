"""The diffusion process around a network: schedule, guidance, samplers, cascade stages, losses, and the
one sampling entry point (sampling.py)."""
