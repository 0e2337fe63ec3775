import os
import shutil
import tempfile

import pytest
import torch

from fastdiff.config import CascadeConfig, DiffusionConfig, ModelConfig
from fastdiff.nn.cascade import build_model
from fastdiff.nn.checkpoint import save_model


@pytest.fixture(scope="session", autouse=True)
def session_temp_dir(tmp_path_factory):
    """The system temp folder of this session, removed at its end: Gradio's cache goes there, and so do
    the empty folders gradio_client leaves behind after each download (pytest's tmp_path stays where
    it is)."""
    tmp_path_factory.getbasetemp()
    folder = tempfile.mkdtemp(prefix="fastdiff-tests-")
    previous = os.environ.get("GRADIO_TEMP_DIR"), tempfile.tempdir
    for name in ("gradio", "tmp"):  # apart: Gradio serves files inside its cache as already cached
        os.mkdir(os.path.join(folder, name))
    os.environ["GRADIO_TEMP_DIR"] = os.path.join(folder, "gradio")
    tempfile.tempdir = os.path.join(folder, "tmp")
    yield
    tempfile.tempdir = previous[1]
    if previous[0] is None:
        os.environ.pop("GRADIO_TEMP_DIR")
    else:
        os.environ["GRADIO_TEMP_DIR"] = previous[0]
    shutil.rmtree(folder, ignore_errors=True)


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
