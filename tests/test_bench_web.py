"""bench web's table and its command (no timings asserted): the browser and PyTorch replaced by fixed
numbers on a hand-written site.json, and once for real on a tiny exported site in headless Chromium (slow)."""

import json
from pathlib import Path

import pytest
from helpers import make_tiny_checkpoint

from fastdiff.bench import web
from fastdiff.cli import main
from fastdiff.nn.checkpoint import BASE, DISTILLED_2
from fastdiff.web.site import RUNTIME_PACKAGE, cache_folder, runtime_pin

ROW_STARTS = [
    "page ready: navigation to state ready, 2 models",
    f"{DISTILLED_2} (2 steps): 16-image grid",
    f"{BASE} DPM-Solver++ 20, guided: 16-image grid",
    "the page's overhead on that grid",
    "Live, 1 image:",
    "Live, 4 images:",
]


def checkpoints(root):
    """A tiny base and a tiny 2-step student under their shipped names."""
    make_tiny_checkpoint(root / BASE)
    make_tiny_checkpoint(root / DISTILLED_2, guidance_embedding=True, distilled_steps=2)
    return root


def fixed_page(url, site, repeats, chromium=web.CHROMIUM, updates=web.LIVE_UPDATES):
    runs = [{"seconds": 2.0 + i, "imagesPerSecond": 8.0, "modelSeconds": 1.9 + i} for i in range(repeats)]
    return {
        "chromium": "999.0.1",
        "backend": "WASM",
        "threads": 2,
        "isolated": True,
        "backend_line": "WASM · 2 threads · cross-origin isolated",
        "ready_s": [3.0] * repeats,
        "loading_s": [2.5] * repeats,
        "student": [{"seconds": 0.5, "imagesPerSecond": 32.0, "modelSeconds": 0.45}] * repeats,
        "dpm": runs,
        "live_ms": {count: [40.0 * count] * updates for count in web.LIVE_COUNTS},
        "live_pass_ms": {count: [30.0 * count] * updates for count in web.LIVE_COUNTS},
    }


def fixed_python(base, student, steps, class_index, precision, repeats):
    return {"dpm": [0.5] * repeats, "student": [0.05] * repeats, 1: [0.01] * repeats, 4: [0.02] * repeats}


def table(text):
    """The markdown table's header and rows, as lists of cells."""
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


@pytest.mark.parametrize("auto", ["bf16", "fp32"])
def test_the_table_has_a_row_per_measurement_and_a_column_per_precision(tmp_path, monkeypatch, auto):
    monkeypatch.setenv("FASTDIFF_AUTO_PRECISION", auto)
    monkeypatch.setattr(web, "missing", lambda chromium, export: None)
    monkeypatch.setattr(web, "measure_page", fixed_page)
    monkeypatch.setattr(web, "time_python", fixed_python)
    site = tmp_path / "site"
    site.mkdir()
    entry = {"name": BASE, "distilled_steps": 0}
    student = {"name": DISTILLED_2, "distilled_steps": 2}
    runtime = {"package": RUNTIME_PACKAGE, "version": runtime_pin()[0]}
    description = {"class_names": list("abcdefghij"), "runtime": runtime, "models": [entry, student]}
    (site / "site.json").write_text(json.dumps(description))
    text = web.bench_web(tmp_path / "assets", site, checkpoints(tmp_path / "checkpoints"), repeats=2)

    assert (tmp_path / "assets" / "bench-web.md").read_text() == text
    assert "python -m fastdiff bench web" in text and "Chromium 999.0.1" in text
    assert f"{RUNTIME_PACKAGE} {runtime_pin()[0]}, WASM on 2 threads" in text
    header, *rows = table(text)
    python = (
        ["PyTorch fp32 (--precision auto)"] if auto == "fp32" else ["PyTorch fp32", "PyTorch bf16 (--precision auto)"]
    )
    assert header == ["measured", "browser: WASM, 2 threads", *python, "browser / PyTorch fp32"]
    assert all(len(row) == len(header) for row in rows)
    assert [row[0][: len(start)] for row, start in zip(rows, ROW_STARTS)] == ROW_STARTS and len(rows) == 6
    ready, student_grid, dpm, overhead, live_1, live_4 = rows
    assert ready[1].startswith("3.00 s (3.00-3.00), of which the worker's loading 2.50 s") and ready[1].endswith(
        "; `#backend`: WASM · 2 threads · cross-origin isolated; crossOriginIsolated true"
    )
    assert student_grid[1] == "0.50 s (0.50-0.50), 32 images/s"
    assert dpm[1] == "2.50 s (2.00-3.00), 6.4 images/s" and dpm[2] == "0.50 s (0.50-0.50), 32 images/s"
    assert dpm[-1] == "5x" and student_grid[-1] == "10x" and live_4[-1] == "8x" and live_1[-1] == "4x"
    assert overhead[1].startswith("4.4% (3.4-5.3), within the target; 2.40 s")  # median of 2.0 / 1.9 - 1, 3.0 / 2.9 - 1
    assert live_1[1] == "40 ms (40-40); the worker's pass 30 ms (30-30)" and live_4[1].startswith("160 ms")
    assert live_1[2:-1] == ["10 ms (10-10)"] * len(python)


def test_a_missing_browser_is_one_line_and_exit_status_2(tmp_path, capsys):
    assert main(["bench", "web", "--chromium", str(tmp_path / "no-chromium"), "--assets", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "bench web needs Chromium at" in error and "no-chromium" in error
    assert main(["bench", "web", "--repeats", "0"]) == 2 and "--repeats" in capsys.readouterr().err
    assert not (tmp_path / "bench-web.md").exists()


def test_a_site_without_site_json_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(web, "missing", lambda chromium, export: None)
    assert main(["bench", "web", "--site", str(tmp_path), "--assets", str(tmp_path / "assets")]) == 2
    assert "no site.json" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_web_measures_a_tiny_exported_site_in_chromium(tmp_path, monkeypatch):
    reason = web.missing()
    if reason:
        pytest.skip(reason)
    tarball = f"{RUNTIME_PACKAGE}-{runtime_pin()[0]}.tgz"
    if not (cache_folder() / tarball).is_file() and Path("/tmp/fdcache", tarball).is_file():
        monkeypatch.setenv("FASTDIFF_CACHE", "/tmp/fdcache")  # else the export downloads it once
    measured = []
    real = web.measure_page
    monkeypatch.setattr(web, "measure_page", lambda *args: measured.append(real(*args)) or measured[-1])
    text = web.bench_web(tmp_path / "assets", checkpoints=checkpoints(tmp_path / "checkpoints"), repeats=1)

    assert (tmp_path / "assets" / "bench-web.md").read_text() == text
    [page] = measured
    assert page["backend"] == "WASM" and page["threads"] >= 1 and page["isolated"] and page["chromium"]
    numbers = page["ready_s"] + page["loading_s"] + [run[key] for run in page["student"] + page["dpm"] for key in run]
    numbers += [ms for key in ("live_ms", "live_pass_ms") for times in page[key].values() for ms in times]
    assert all(number > 0 for number in numbers) and len(page["live_ms"][4]) == web.LIVE_UPDATES
    header, *rows = table(text)
    assert [row[0][: len(start)] for row, start in zip(rows, ROW_STARTS)] == ROW_STARTS and len(rows) == 6
    assert all(len(row) == len(header) for row in rows) and "crossOriginIsolated true" in rows[0][1]
    assert page["backend_line"].startswith("WASM · ") and "cross-origin isolated" in page["backend_line"]
