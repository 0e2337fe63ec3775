import pytest
import torch

from fastdiff.config import CascadeConfig, DiffusionConfig, ModelConfig
from fastdiff.nn.cascade import build_model
from fastdiff.nn.checkpoint import save_model

TINY = dict(n_feat=8, class_names=tuple("abcdefghij"))


def make_tiny_checkpoint(folder, num_timesteps: int = 50, cascade: bool = False, **model_options):
    """A tiny model (a LowDiff cascade of 8, 16 and 32 with cascade=True) with random weights saved as
    a checkpoint folder."""
    torch.manual_seed(0)
    cascade_config = CascadeConfig() if cascade else None
    model = build_model(ModelConfig(**{**TINY, **model_options}), cascade_config)
    for p in model.parameters():  # also the layers that start at zero, so that the output varies
        torch.nn.init.normal_(p, std=0.05)
    save_model(
        folder,
        model.state_dict(),
        model.config,
        DiffusionConfig(num_timesteps=num_timesteps),
        cascade_config=cascade_config,
    )
    return folder


@pytest.fixture
def tiny_config() -> ModelConfig:
    return ModelConfig(**TINY)


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """A tiny random model as a checkpoint folder (T = 50 to keep sampling short)."""
    return make_tiny_checkpoint(tmp_path / "tiny")
