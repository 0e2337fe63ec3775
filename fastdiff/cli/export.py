"""`fastdiff export onnx`: a checkpoint's network as an ONNX file, written only once ONNX Runtime's output
matches PyTorch's (fastdiff/export/onnx.py)."""

from __future__ import annotations

from pathlib import Path

from .common import check_output, checkpoints_options


def add_parser(commands) -> None:
    export = commands.add_parser(
        "export",
        parents=[checkpoints_options()],
        help="write a checkpoint's network as an ONNX file, checked against PyTorch first",
    )
    export.add_argument(
        "format",
        choices=("onnx",),
        help="onnx: the forward pass (x_t, t, class_label[, guidance]) -> output, any batch size",
    )
    export.add_argument(
        "--checkpoint",
        type=Path,
        default=Path("checkpoints/cifar10-distilled"),
        help="checkpoint folder or shipped name: plain, attention or distilled (default %(default)s)",
    )
    export.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    export.add_argument(
        "--fp16", action="store_true", help="store the weights in fp16: half the file, still computed in fp32"
    )
    export.set_defaults(run=run)


def run(args) -> None:
    from ..export.onnx import export_onnx
    from ..nn.shipped import find_checkpoint

    check_output(args.out, "--out", {".onnx"})
    exported = export_onnx(find_checkpoint(args.checkpoint, args.checkpoints), args.out, args.fp16)
    print(
        f"{exported.path}: {exported.size / 1e6:.2f} MB; ONNX Runtime matches PyTorch within "
        f"{exported.max_difference:.2g} (tolerance {exported.tolerance:g})"
    )
