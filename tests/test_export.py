"""ONNX export (fastdiff/export/onnx.py, `fastdiff export onnx`) on tiny random checkpoints: ONNX Runtime's
output equals PyTorch's for a plain, an attention and a distilled model at two batch sizes other than the
traced one, and follows every input; the check refuses a broken graph and writes nothing; fp16 weights
halve the file; bad input and missing packages get one line."""

import contextlib
import importlib.util
import io

import numpy as np
import pytest
import torch
from helpers import make_tiny_checkpoint

from fastdiff.cli import main
from fastdiff.export import onnx as onnx_export
from fastdiff.export.onnx import PACKAGES, TOLERANCE, example_inputs, weights_to_fp16
from fastdiff.nn.checkpoint import load_model

HAS_PACKAGES = all(importlib.util.find_spec(name) for name in PACKAGES)
needs_packages = pytest.mark.skipif(
    not HAS_PACKAGES, reason="needs onnx, onnxscript and onnxruntime (pip install -r requirements-test.txt)"
)
KINDS = {"plain": {}, "attention": {"attention": True}, "distilled": {"guidance_embedding": True}}
T = 50  # make_tiny_checkpoint's timesteps


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """kind -> (checkpoint, ONNX file, the command's output): each tiny model exported once by `fastdiff
    export onnx`, the distilled one with --fp16, as the browser edition ships it."""
    root = tmp_path_factory.mktemp("export")
    files = {}
    for kind, options in KINDS.items():
        checkpoint, out = make_tiny_checkpoint(root / kind, **options), root / f"{kind}.onnx"
        fp16 = ["--fp16"] if kind == "distilled" else []
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            assert main(["export", "onnx", "--checkpoint", str(checkpoint), "--out", str(out), *fp16]) == 0
        files[kind] = checkpoint, out, printed.getvalue()
    return files


def run_both(session, model, inputs):
    with torch.inference_mode():
        expected = model(*inputs.values()).numpy()
    (output,) = session.run(None, {name: value.numpy() for name, value in inputs.items()})
    return output, expected


@needs_packages
@pytest.mark.parametrize("kind", KINDS)
def test_onnx_runtime_equals_pytorch_at_two_batch_sizes(exported, kind):
    import onnxruntime

    checkpoint, out, printed = exported[kind]
    assert "ONNX Runtime matches PyTorch within" in printed and printed.count("\n") == 1
    model = load_model(checkpoint)[0]
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    names = [spec.name for spec in session.get_inputs()]
    assert names == ["x_t", "t", "class_label"] + (["guidance"] if kind == "distilled" else [])
    assert session.get_inputs()[0].shape == ["batch", 3, 32, 32]
    for batch in (3, 8):
        inputs = example_inputs(model, batch, T, seed=10 + batch)
        output, expected = run_both(session, model, inputs)
        assert output.shape == expected.shape == (batch, 3, 32, 32)
        assert np.abs(output - expected).max() <= TOLERANCE
    changed = {"t": (inputs["t"] + 7) % T, "class_label": (inputs["class_label"] + 1) % 11}
    if kind == "distilled":
        changed["guidance"] = inputs["guidance"] / 2
    for name, value in changed.items():  # no input was folded into a constant (rounding moves ~1e-8)
        moved, expected = run_both(session, model, {**inputs, name: value})
        assert np.abs(moved - expected).max() <= TOLERANCE and np.abs(moved - output).max() > 1e-5, name


@needs_packages
def test_fp16_weights_halve_the_file_and_keep_the_output(exported):
    import onnx
    import onnxruntime

    checkpoint, out, _ = exported["plain"]
    model, proto = load_model(checkpoint)[0], onnx.load(out)
    size, parameters = proto.ByteSize(), sum(p.numel() for p in model.parameters())
    half = weights_to_fp16(proto, set(model.state_dict()))
    assert size - half.ByteSize() > 0.9 * 2 * parameters  # 2 of the 4 bytes of each weight saved
    kinds = {tensor.data_type for tensor in half.graph.initializer}
    assert onnx.TensorProto.FLOAT16 in kinds and onnx.TensorProto.FLOAT in kinds  # folded constants stay fp32
    session = onnxruntime.InferenceSession(half.SerializeToString(), providers=["CPUExecutionProvider"])
    output, expected = run_both(session, model, example_inputs(model, 4, T, seed=3))
    assert np.abs(output - expected).max() <= TOLERANCE  # the tiny checkpoint's weights are fp16 already


@needs_packages
@pytest.mark.parametrize("change", [1.0, float("nan")])
def test_the_check_refuses_a_broken_graph_and_writes_nothing(exported, tmp_path, monkeypatch, capsys, change):
    import onnx
    from onnx import numpy_helper

    checkpoint, out, _ = exported["plain"]

    def broken(model, num_timesteps, fp16=False):
        proto = onnx.load(out)
        bias = next(tensor for tensor in proto.graph.initializer if tensor.name == "conv_out.2.bias")
        bias.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(bias) + np.float32(change), bias.name))
        return proto

    monkeypatch.setattr(onnx_export, "to_onnx", broken)
    folder = tmp_path / "out"
    folder.mkdir()
    assert main(["export", "onnx", "--checkpoint", str(checkpoint), "--out", str(folder / "model.onnx")]) == 2
    err = capsys.readouterr().err
    assert "not written: ONNX Runtime's output differs from PyTorch's by" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    "case, message",
    [
        pytest.param("cascade", "exporting a cascade is not supported yet", marks=needs_packages),
        ("no checkpoint", "checkpoint not found"),
        ("folder as out", "is a folder"),
        ("other suffix", "unknown file type '.onx'"),
        ("no onnxruntime", "ONNX export needs onnxruntime: pip install 'fastdiff[export]'"),
        ("no format", "the following arguments are required: format"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, monkeypatch, capsys, case, message):
    checkpoint = make_tiny_checkpoint(tmp_path / "tiny", cascade=case == "cascade")
    out = tmp_path / "model.onnx"
    args = ["export", "onnx", "--checkpoint", str(checkpoint), "--out", str(out)]
    if case == "no checkpoint":
        args[3] = str(tmp_path / "none")
    elif case == "folder as out":
        args[5] = str(tmp_path)
    elif case == "other suffix":
        args[5] = str(tmp_path / "model.onx")
    elif case == "no onnxruntime":
        find_spec = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else find_spec(name)
        )
    elif case == "no format":
        args = ["export"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tiny"]
