"""`fastdiff export web` (fastdiff/web/site.py) on tiny checkpoints and a small stand-in for the
onnxruntime-web tarball that the tests make: the folder's files, site.json, the page's load check equal to
ONNX Runtime's output, the pinned integrity, the download cache, a re-export, refusals that leave the old
site as it was; and /web in the app (fastdiff/app/web.py) with the isolation headers."""

import base64
import contextlib
import hashlib
import importlib.util
import io
import json
import tarfile
import urllib.request

import numpy as np
import pytest
from helpers import make_tiny_checkpoint
from starlette.applications import Starlette
from starlette.testclient import TestClient

from fastdiff.app.web import web_routes
from fastdiff.cli import main
from fastdiff.diffusion.rng import ImageRNG
from fastdiff.export.onnx import PACKAGES
from fastdiff.web import site
from fastdiff.web.serve import ISOLATION_HEADERS

pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(name) for name in PACKAGES),
    reason="needs onnx, onnxscript and onnxruntime (pip install -r requirements-test.txt)",
)


def fake_tarball() -> bytes:
    """An npm-style tarball holding the runtime files the export copies (a few bytes each)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name in {name for files in site.RUNTIMES.values() for name in files}:
            data = f"// stand-in for {name}\n".encode()
            info = tarfile.TarInfo(f"package/dist/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    """The stand-in tarball, pinned in place of the lock file's entry; downloads counted, none real."""
    data = fake_tarball()
    monkeypatch.setattr(site, "runtime_pin", lambda: ("0.0.1", "https://registry.invalid/ort.tgz", integrity(data)))
    monkeypatch.setenv(site.CACHE_VARIABLE, str(tmp_path / "cache"))
    downloads = []

    def urlopen(url, timeout):
        downloads.append(url)
        return contextlib.nullcontext(io.BytesIO(data))

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return data, downloads


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("web-checkpoints")
    base = make_tiny_checkpoint(root / "tiny-base")
    student = make_tiny_checkpoint(root / "tiny-student", guidance_embedding=True, distilled_steps=2)
    return [base, student]


def export(out, checkpoints, *extra):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["export", "web", "--out", str(out), "--models", *map(str, checkpoints), *extra])
    return code, printed.getvalue()


def test_the_site_holds_the_page_runtime_models_and_site_json(tmp_path, runtime, checkpoints):
    import onnxruntime

    code, printed = export(tmp_path / "site", checkpoints)
    assert code == 0 and "models/tiny-student.onnx" in printed and printed.count("\n") == 2
    folder = tmp_path / "site"
    assert (folder / "index.html").is_file() and (folder / "worker.js").is_file()
    assert sorted(p.name for p in (folder / "runtime").iterdir()) == sorted(site.RUNTIMES["wasm"])
    config = json.loads((folder / "site.json").read_text())
    assert config["runtime"]["module"] == "runtime/ort.wasm.min.mjs" and config["limits"]["max_images"] == 16
    base, student = config["models"]
    assert (base["name"], base["distilled_steps"], base["guidance_embedding"]) == ("tiny-base", 0, False)
    assert (student["distilled_steps"], student["guidance_range"]) == (2, [0.0, 4.0])
    assert base["diffusion"]["num_timesteps"] == 50
    for entry in (base, student):  # the page's load check is ONNX Runtime's output for its input
        check = entry["check"]
        session = onnxruntime.InferenceSession(str(folder / entry["file"]), providers=["CPUExecutionProvider"])
        inputs = {
            "x_t": ImageRNG([check["seed"]]).randn(3, 32, 32).numpy(),
            "t": np.array([check["t"]]),
            "class_label": np.array([check["class_label"]]),
        }
        if entry["guidance_embedding"]:
            inputs["guidance"] = np.array([check["guidance"]], np.float32)
        (output,) = session.run(None, inputs)
        assert np.abs(output.flatten()[: site.CHECK_HEAD] - check["output_head"]).max() < 1e-4
        assert abs(np.abs(output).mean() - check["output_mean_abs"]) < 1e-5


def test_webgpu_ships_the_runtime_build_with_the_webgpu_provider(tmp_path, runtime, checkpoints):
    folder = tmp_path / "site"
    assert export(folder, checkpoints[:1], "--webgpu")[0] == 0
    assert sorted(p.name for p in (folder / "runtime").iterdir()) == sorted(site.RUNTIMES["webgpu"])
    described = json.loads((folder / "site.json").read_text())["runtime"]
    assert described["webgpu"] and described["module"] == "runtime/ort.webgpu.min.mjs"


def test_the_runtime_is_downloaded_once_then_taken_from_the_cache(tmp_path, runtime, checkpoints):
    _, downloads = runtime
    assert export(tmp_path / "one", checkpoints[:1])[0] == 0
    assert export(tmp_path / "two", checkpoints[:1])[0] == 0
    assert len(downloads) == 1


def test_a_re_export_replaces_the_earlier_site(tmp_path, runtime, checkpoints):
    folder = tmp_path / "site"
    assert export(folder, checkpoints[1:])[0] == 0
    assert export(folder, checkpoints[:1])[0] == 0
    assert [m["name"] for m in json.loads((folder / "site.json").read_text())["models"]] == ["tiny-base"]
    assert not (folder / "models" / "tiny-student.onnx").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "site"]  # no staging folder left beside it


def test_a_runtime_tarball_that_is_not_the_pinned_one_is_refused_and_the_old_site_kept(
    tmp_path, runtime, checkpoints, capsys
):
    folder = tmp_path / "site"
    assert export(folder, checkpoints[:1])[0] == 0
    before = (folder / "site.json").read_text()
    other = tmp_path / "other.tgz"
    other.write_bytes(fake_tarball() + b"changed")
    assert export(folder, checkpoints[:1], "--runtime", str(other))[0] == 2
    err = capsys.readouterr().err
    assert "does not match the pin in fastdiff/web/package-lock.json" in err and err.count("\n") == 1
    assert (folder / "site.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "other.tgz", "site"]


@pytest.mark.parametrize(
    "case, message",
    [
        ("folder with other files", "the folder holds other files; give a new or empty folder"),
        ("no network", "could not be downloaded from https://registry.invalid/ort.tgz"),
        ("missing tarball", "no such file"),
        ("cascade", "exporting a cascade is not supported yet"),
    ],
)
def test_bad_input_gets_one_line_and_writes_nothing(tmp_path, runtime, checkpoints, monkeypatch, capsys, case, message):
    out, models, extra = tmp_path / "site", list(checkpoints), []
    if case == "folder with other files":
        out.mkdir()
        (out / "notes.txt").write_text("a teacher's notes")
    elif case == "no network":

        def offline(url, timeout):
            raise OSError("Network is unreachable")

        monkeypatch.setattr(urllib.request, "urlopen", offline)
    elif case == "missing tarball":
        extra = ["--runtime", str(tmp_path / "nowhere.tgz")]
    elif case == "cascade":
        models = [make_tiny_checkpoint(tmp_path / "tiny-cascade", cascade=True)]
    assert export(out, models, *extra)[0] == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    if case == "folder with other files":
        assert [p.name for p in out.iterdir()] == ["notes.txt"]
    else:
        assert not out.exists()


def test_the_app_serves_the_site_at_web_with_the_isolation_headers(tmp_path, runtime, checkpoints):
    folder = tmp_path / "site"
    assert export(folder, checkpoints[:1])[0] == 0
    client = TestClient(Starlette(routes=web_routes(folder)))
    page = client.get("/web/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert all(page.headers[name] == value for name, value in ISOLATION_HEADERS.items())
    module = client.get("/web/runtime/ort.wasm.min.mjs")
    assert module.headers["content-type"].startswith("text/javascript")
    assert client.get("/web/runtime/ort-wasm-simd-threaded.wasm").headers["content-type"] == "application/wasm"


def test_before_an_export_web_says_how_to_make_one(tmp_path):
    client = TestClient(Starlette(routes=web_routes(tmp_path / "site")))
    for path in ("/web", "/web/", "/web/index.html"):
        reply = client.get(path)
        assert reply.status_code == 404 and "fastdiff export web --out" in reply.text
