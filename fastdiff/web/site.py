"""The browser edition as one static folder: the page (this folder's HTML, CSS and JS), the onnxruntime-web
files it runs on, each model as ONNX with fp16 weights, and site.json, what the page needs to know.

    site/
      index.html, style.css, *.js    the page and its modules, copied from fastdiff/web
      site.json                      class names, limits, and per model its config, schedule and check
      models/<checkpoint>.onnx       fastdiff/export/onnx.py's graph, checked against PyTorch
      runtime/                       onnxruntime-web's WASM build (or its WebGPU build), from the npm
                                     package pinned in fastdiff/web/package-lock.json

The runtime comes from the npm registry's tarball, checked against the lock file's sha512 integrity and
kept in a cache folder, so a teacher needs Python only, and network once; `runtime_tarball` takes a copy
of the tarball instead (for a machine without network). Each model's `check` entry is one seeded forward
pass computed by PyTorch: the page runs it when it loads the model and refuses a model that differs. The
folder is built beside `out` and moved in place at the end: a failed export leaves the old site as it was.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from ..diffusion.guidance import MAX_GUIDANCE
from ..diffusion.rng import ImageRNG
from ..diffusion.samplers import DEFAULT_STEPS
from ..diffusion.sampling import MAX_IMAGES, MAX_SEED
from ..eval.records import read_eval
from ..export.onnx import ExportError, export_onnx, exportable_model, rounded_to_fp16
from ..nn.checkpoint import ATTENTION, BASE, DISTILLED, DISTILLED_1, DISTILLED_2, SHIPPED, read_full_config

SOURCE = Path(__file__).resolve().parent  # the page's files and the runtime's pin
PAGE_SUFFIXES = {".html", ".css", ".js"}
RUNTIME_PACKAGE = "onnxruntime-web"
# The runtime builds a site can ship, each its module first: WASM only (15 MB), or the build with the WebGPU
# execution provider, whose WASM binary also serves browsers without WebGPU (29 MB).
RUNTIMES = {
    "wasm": ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"),
    "webgpu": ("ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm"),
}
DEFAULT_MODELS = (BASE, DISTILLED, DISTILLED_2, DISTILLED_1, ATTENTION)  # the cascade's stages are not exportable yet
CACHE_VARIABLE = "FASTDIFF_CACHE"
SITE_FORMAT = 1
CHECK = {"seed": 0, "t": 250, "class_label": 3, "guidance": 2.0}  # the page's load check: one image
CHECK_HEAD = 8  # output values compared, beside the mean |output|
CHECK_TOLERANCE = 1e-3  # WASM's sums differ from PyTorch's by about 1e-5


@dataclass
class WebExport:
    folder: Path
    files: dict[str, int]  # path in the folder -> bytes

    @property
    def size(self) -> int:
        return sum(self.files.values())


def runtime_pin() -> tuple[str, str, str]:
    """(version, tarball URL, sha512 integrity) of onnxruntime-web in fastdiff/web/package-lock.json."""
    lock = json.loads((SOURCE / "package-lock.json").read_text())
    entry = lock["packages"][f"node_modules/{RUNTIME_PACKAGE}"]
    version = entry["version"]
    url = entry.get("resolved") or f"https://registry.npmjs.org/{RUNTIME_PACKAGE}/-/{RUNTIME_PACKAGE}-{version}.tgz"
    return version, url, entry["integrity"]


def cache_folder() -> Path:
    return Path(os.environ.get(CACHE_VARIABLE) or Path.home() / ".cache" / "fastdiff")


def verified(data: bytes, integrity: str, source: str) -> bytes:
    algorithm, expected = integrity.split("-", 1)
    if base64.b64encode(hashlib.new(algorithm, data).digest()).decode() != expected:
        raise ExportError(f"{source}: its {algorithm} does not match the pin in fastdiff/web/package-lock.json")
    return data


def runtime_tarball_bytes(tarball: Path | None = None) -> bytes:
    """The pinned onnxruntime-web tarball: the given file, else the cached download, else a download
    (cached for the next export); always checked against the lock file's integrity."""
    version, url, integrity = runtime_pin()
    if tarball is not None:
        if not Path(tarball).is_file():
            raise ExportError(f"--runtime {tarball}: no such file (give the {RUNTIME_PACKAGE}-{version}.tgz from npm)")
        return verified(Path(tarball).read_bytes(), integrity, str(tarball))
    cached = cache_folder() / f"{RUNTIME_PACKAGE}-{version}.tgz"
    if cached.is_file():
        return verified(cached.read_bytes(), integrity, str(cached))
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            data = verified(response.read(), integrity, url)
    except OSError as error:
        raise ExportError(
            f"{RUNTIME_PACKAGE} {version} could not be downloaded from {url} ({error}); "
            f"download it elsewhere and pass it with --runtime"
        ) from None
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(cached)
    return data


def runtime_files(build: str, tarball: Path | None = None) -> dict[str, bytes]:
    """The files of RUNTIMES[build] from the tarball's dist folder."""
    with tarfile.open(fileobj=io.BytesIO(runtime_tarball_bytes(tarball)), mode="r:gz") as archive:
        return {name: archive.extractfile(f"package/dist/{name}").read() for name in RUNTIMES[build]}


def load_check(checkpoint: Path) -> dict:
    """CHECK's forward pass in PyTorch (fp32, the fp16-rounded weights the ONNX file holds)."""
    model, _ = exportable_model(checkpoint)
    model = rounded_to_fp16(model)
    config = model.config
    x_t = ImageRNG([CHECK["seed"]]).randn(config.image_channels, config.image_size, config.image_size)
    inputs = [x_t, torch.tensor([CHECK["t"]]), torch.tensor([CHECK["class_label"]])]
    check = {name: CHECK[name] for name in ("seed", "t", "class_label")}
    if config.guidance_embedding:
        inputs.append(torch.tensor([CHECK["guidance"]]))
        check["guidance"] = CHECK["guidance"]
    with torch.inference_mode():
        output = model(*inputs).flatten()
    return check | {
        "output_head": output[:CHECK_HEAD].tolist(),
        "output_mean_abs": output.abs().mean().item(),
        "tolerance": CHECK_TOLERANCE,
    }


def model_entry(checkpoint: Path, file: str, size: int, model_config, diffusion_config) -> dict:
    if model_config.image_channels != 3 or not model_config.num_classes:
        raise ExportError(f"{checkpoint}: the page draws class-conditional RGB images; this checkpoint is not one")
    record = read_eval(checkpoint)
    return {
        "name": checkpoint.name,
        "file": file,
        "bytes": size,
        "title": SHIPPED.get(checkpoint.name, checkpoint.name),
        "prediction": model_config.prediction,
        "image_size": model_config.image_size,
        "image_channels": model_config.image_channels,
        "num_classes": model_config.num_classes,
        "guidance_embedding": model_config.guidance_embedding,
        "guidance_range": list(model_config.guidance_range) if model_config.guidance_embedding else None,
        "distilled_steps": model_config.distilled_steps,
        "attention": model_config.attention,
        "diffusion": vars(diffusion_config),
        "quality": record,
        "check": load_check(checkpoint),
    }


def site_json(models: list[dict], class_names: list[str], build: str) -> dict:
    version, _, _ = runtime_pin()
    return {
        "format": SITE_FORMAT,
        "runtime": {
            "package": RUNTIME_PACKAGE,
            "version": version,
            "module": f"runtime/{RUNTIMES[build][0]}",
            "webgpu": build == "webgpu",
        },
        "class_names": class_names,
        "limits": {"max_images": MAX_IMAGES, "max_guidance": MAX_GUIDANCE, "max_seed": MAX_SEED},
        "default_steps": {name: steps for name, steps in DEFAULT_STEPS.items() if steps},
        "models": models,
    }


def check_out_folder(out: Path) -> None:
    """Refuse to replace anything but an earlier export (a folder with site.json) or an empty folder."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: is a file; give a folder for the site")
    if out.is_dir() and any(out.iterdir()) and not (out / "site.json").is_file():
        raise ExportError(f"--out {out}: the folder holds other files; give a new or empty folder")
    if not out.parent.is_dir():
        raise ExportError(f"--out {out}: the folder {out.parent} does not exist")


def build_site(folder: Path, checkpoints: list[Path], runtime_tarball: Path | None, build: str) -> None:
    page = [path for path in sorted(SOURCE.iterdir()) if path.suffix in PAGE_SUFFIXES]
    if not page:
        raise ExportError(f"{SOURCE}: the page's files are missing from this installation")
    for path in page:
        shutil.copy2(path, folder / path.name)
    (folder / "runtime").mkdir()
    for name, data in runtime_files(build, runtime_tarball).items():
        (folder / "runtime" / name).write_bytes(data)
    (folder / "models").mkdir()
    entries, class_names = [], None
    for checkpoint in checkpoints:
        file = f"models/{checkpoint.name}.onnx"
        model_config, diffusion_config, *_ = read_full_config(checkpoint)
        exported = export_onnx(checkpoint, folder / file, fp16=True)
        entries.append(model_entry(checkpoint, file, exported.size, model_config, diffusion_config))
        names = list(model_config.class_names)
        if class_names is not None and names != class_names:
            raise ExportError(f"{checkpoint}: its classes differ from the other models'; export them separately")
        class_names = names
    (folder / "site.json").write_text(json.dumps(site_json(entries, class_names, build), indent=1) + "\n")


def export_web(
    out: Path, checkpoints: list[Path], runtime_tarball: Path | None = None, build: str = "wasm"
) -> WebExport:
    """Write the site for checkpoints into out (replacing an earlier export there), with the runtime build
    RUNTIMES[build]."""
    out = Path(out)
    check_out_folder(out)
    if not checkpoints:
        raise ExportError("no models to export")
    if len({path.name for path in checkpoints}) < len(checkpoints):
        raise ExportError("two checkpoints share a folder name; each model's file is named after its folder")
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        build_site(staging, [Path(path) for path in checkpoints], runtime_tarball, build)
        os.chmod(staging, 0o755)
        if out.exists():
            previous = staging.with_name(staging.name + ".old")
            out.rename(previous)
            staging.rename(out)
            shutil.rmtree(previous)
        else:
            staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = {str(path.relative_to(out)): path.stat().st_size for path in sorted(out.rglob("*")) if path.is_file()}
    return WebExport(out, files)
