"""`fastdiff export onnx|web`: a checkpoint's network as an ONNX file, written only once ONNX Runtime's output
matches PyTorch's (fastdiff/export/onnx.py), or the browser edition as a static folder
(fastdiff/web/site.py)."""

from __future__ import annotations

from pathlib import Path

from .common import check_output, checkpoints_options


def add_parser(commands) -> None:
    export = commands.add_parser(
        "export", help="write a checkpoint's network as ONNX, or the browser edition as a static site"
    )
    formats = export.add_subparsers(
        dest="format", required=True, parser_class=type(export), help="onnx: one network; web: the browser edition"
    )
    onnx = formats.add_parser(
        "onnx",
        parents=[checkpoints_options()],
        help="the forward pass (x_t, t, class_label[, guidance]) -> output, any batch size, checked against PyTorch",
    )
    onnx.add_argument(
        "--checkpoint",
        type=Path,
        default=Path("checkpoints/cifar10-distilled"),
        help="checkpoint folder or shipped name: plain, attention or distilled (default %(default)s)",
    )
    onnx.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    onnx.add_argument(
        "--fp16", action="store_true", help="store the weights in fp16: half the file, still computed in fp32"
    )
    onnx.set_defaults(run=run_onnx)

    from ..web.site import DEFAULT_MODELS

    web = formats.add_parser(
        "web",
        parents=[checkpoints_options()],
        help="a static folder that generates in the browser: the page, onnxruntime-web and the models",
    )
    web.add_argument("--out", type=Path, required=True, help="the folder to write (new, empty, or an earlier export)")
    web.add_argument(
        "--models",
        nargs="+",
        type=Path,
        default=[Path(name) for name in DEFAULT_MODELS],
        metavar="CHECKPOINT",
        help="checkpoint folders or shipped names: plain, attention or distilled (default: "
        + " ".join(DEFAULT_MODELS)
        + ")",
    )
    web.add_argument(
        "--runtime",
        type=Path,
        default=None,
        metavar="TGZ",
        help="the onnxruntime-web tarball from npm, for a machine without network (default: downloaded once "
        "and cached in $FASTDIFF_CACHE, else ~/.cache/fastdiff; checked against fastdiff/web/package-lock.json)",
    )
    web.add_argument(
        "--webgpu",
        action="store_true",
        help="ship onnxruntime-web's WebGPU build: the GPU where the browser offers WebGPU, WASM elsewhere "
        "(+14 MB; the default WASM build runs on the CPU everywhere)",
    )
    web.set_defaults(run=run_web)


def run_onnx(args) -> None:
    from ..export.onnx import export_onnx
    from ..nn.shipped import find_checkpoint

    check_output(args.out, "--out", {".onnx"})
    exported = export_onnx(find_checkpoint(args.checkpoint, args.checkpoints), args.out, args.fp16)
    print(
        f"{exported.path}: {exported.size / 1e6:.2f} MB; ONNX Runtime matches PyTorch within "
        f"{exported.max_difference:.2g} (tolerance {exported.tolerance:g})"
    )


def run_web(args) -> None:
    from ..nn.shipped import find_checkpoint
    from ..web.site import export_web

    checkpoints = [find_checkpoint(model, args.checkpoints) for model in args.models]
    site = export_web(args.out, checkpoints, args.runtime, "webgpu" if args.webgpu else "wasm")
    models = ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in site.files.items() if name.startswith("models/"))
    print(f"{site.folder}: {len(site.files)} files, {site.size / 1e6:.1f} MB ({models})")
    print(f"serve it with `python -m fastdiff.web.serve {site.folder}` or `python app.py` (at /web)")
