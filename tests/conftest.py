"""Fixtures shared by the test modules, and the `slow` marker: `python -m pytest` runs the fast tests,
`python -m pytest --run-slow` every test (what .ci/run does)."""

import os
import shutil
import tempfile

# The session's temp folder, removed at its end (pytest_unconfigure). Gradio and gradio_client take some of
# their folders from GRADIO_TEMP_DIR when they are imported (gradio's route_utils, the default of
# gradio_client's Client), so it is named here, before anything imports them.
SESSION_FOLDER = tempfile.mkdtemp(prefix="fastdiff-tests-")
PREVIOUS_GRADIO_TEMP_DIR = os.environ.get("GRADIO_TEMP_DIR")
os.mkdir(os.path.join(SESSION_FOLDER, "gradio"))  # apart from tmp: Gradio serves files inside its cache as cached
os.environ["GRADIO_TEMP_DIR"] = os.path.join(SESSION_FOLDER, "gradio")

import pytest  # noqa: E402
import torch  # noqa: E402
from helpers import CLASSES, TINY, color_dataset, flat_png, make_tiny_checkpoint, served_client, write_zip  # noqa: E402

from fastdiff.app.backend import Backend  # noqa: E402
from fastdiff.app.models import ModelStore  # noqa: E402
from fastdiff.config import ModelConfig, TrainConfig  # noqa: E402
from fastdiff.data import load_dataset  # noqa: E402
from fastdiff.eval.classifier import train_classifier  # noqa: E402
from fastdiff.nn.unet import UNet  # noqa: E402
from fastdiff.train.trainer import Trainer  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def session_temp_dir(tmp_path_factory):
    """The system temp folder of this session (removed by pytest_unconfigure): Gradio's cache goes there, and so do
    the empty folders gradio_client leaves behind after each download (pytest's tmp_path stays where
    it is)."""
    tmp_path_factory.getbasetemp()
    previous_tempdir = tempfile.tempdir
    os.mkdir(os.path.join(SESSION_FOLDER, "tmp"))
    tempfile.tempdir = os.path.join(SESSION_FOLDER, "tmp")
    yield
    tempfile.tempdir = previous_tempdir


def pytest_unconfigure(config):
    """The session's temp folder goes at the very end, also when no test ran (--collect-only)."""
    if PREVIOUS_GRADIO_TEMP_DIR is None:
        os.environ.pop("GRADIO_TEMP_DIR", None)
    else:
        os.environ["GRADIO_TEMP_DIR"] = PREVIOUS_GRADIO_TEMP_DIR
    shutil.rmtree(SESSION_FOLDER, ignore_errors=True)


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run the tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def tiny_config() -> ModelConfig:
    return ModelConfig(**TINY)


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """A tiny random model as a checkpoint folder (T = 50 to keep sampling short)."""
    return make_tiny_checkpoint(tmp_path / "tiny")


@pytest.fixture(scope="session")
def class_zip(tmp_path_factory):
    """Ten classes of flat colours, with train and test splits. Read only."""
    generator = torch.Generator().manual_seed(0)
    files = {}
    for name in CLASSES:
        color = tuple(torch.randint(0, 256, (3,), generator=generator).tolist())
        for split, count in (("train", 4), ("test", 2)):
            files |= {f"set/{split}/{name}/{i}.png": flat_png(color) for i in range(count)}
    return write_zip(tmp_path_factory.mktemp("classes") / "data.zip", files)


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory, class_zip):
    """An evaluator classifier trained for two epochs on class_zip, once per session. Read only."""
    folder = tmp_path_factory.mktemp("evaluator") / "evaluator"
    accuracy = train_classifier(
        load_dataset(str(class_zip)),
        load_dataset(str(class_zip), "test"),
        folder,
        width=4,
        epochs=2,
        batch_size=8,
        log=lambda line: None,
    )
    assert 0 <= accuracy <= 1
    return folder


@pytest.fixture(scope="session")
def plain_run(tmp_path_factory) -> Trainer:
    """A tiny plain U-Net trained for one epoch (4 steps) on color_dataset(), once per session: the
    finished Trainer, whose out_dir holds the checkpoint to warm-start from. Read only."""
    config = TrainConfig(epochs=1, batch_size=16, lr=1e-3, precision="fp32", preview_every=0)
    trainer = Trainer(color_dataset(), tmp_path_factory.mktemp("plain") / "run", config, ModelConfig(n_feat=8))
    trainer.run()
    return trainer


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(backend, client) for an app whose checkpoints/ holds a tiny base model and a tiny cascade, and
    runs/ a plain model."""
    root = tmp_path_factory.mktemp("app")
    make_tiny_checkpoint(root / "checkpoints" / "cifar10-base")
    make_tiny_checkpoint(root / "checkpoints" / "cifar10-cascade", cascade=True)
    make_tiny_checkpoint(root / "runs" / "plain")
    backend = Backend(root / "checkpoints", root / "runs", root / "shared.zip", root)
    for client in served_client(backend, root):
        yield backend, client


@pytest.fixture
def store(tmp_path):
    make_tiny_checkpoint(tmp_path / "checkpoints" / "cifar10-base")
    make_tiny_checkpoint(tmp_path / "runs" / "with-attention", attention=True)
    make_tiny_checkpoint(tmp_path / "runs" / "cascade", cascade=True)
    (tmp_path / "checkpoints" / "empty").mkdir()  # not a checkpoint: not listed
    return ModelStore(tmp_path / "checkpoints", tmp_path / "runs", torch.device("cpu"))


@pytest.fixture
def tiny_model(tiny_config):
    torch.manual_seed(0)
    model = UNet(tiny_config)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return model.eval()
