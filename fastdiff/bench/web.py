"""The browser edition's speed, `python -m fastdiff bench web`: the site (fastdiff/web/site.py) exported into
a temporary folder (or an existing export, --site), served with the isolation headers (fastdiff/web/serve.py)
and driven in headless Chromium through Playwright, beside PyTorch sampling the same configurations on the
same CPU in the same run. Written to assets/bench-web.md; no number here is asserted by the tests."""

from __future__ import annotations

import importlib.util
import json
import statistics
import tempfile
from pathlib import Path

import torch

from ..device import device_name, resolve_device, resolve_precision
from ..diffusion.sampling import make_plan, sample_steps
from ..diffusion.schedule import NoiseSchedule
from ..export.onnx import ExportError, require_packages
from ..nn.checkpoint import BASE, load_model
from ..nn.shipped import checkpoints_folder, find_checkpoint
from ..report import machine, markdown_table
from ..web.serve import serve_in_background
from ..web.site import DEFAULT_MODELS, export_web
from .timing import GRID_SIZE, GUIDANCE, time_run

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
STUDENT_SAMPLER, DPM_SAMPLER, DPM_STEPS = "Distilled (one pass per step)", "DPM-Solver++", 20
CLASS_NAME, SEED = "frog", 0  # the grids' class (grid_class) and first seed
LIVE_COUNTS, LIVE_UPDATES = (1, 4), 10  # Live pictures timed, slider moves per picture
TIMEOUT_MS = 600_000  # for loading the page and for one grid
OVERHEAD_TARGET = 0.15  # of seconds / modelSeconds - 1
# Records when body.dataset.state first becomes "ready": milliseconds since navigation (performance.now()).
READY_CLOCK = """new MutationObserver((_, observer) => {
  if (document.body?.dataset.state !== "ready") return;
  window.readyAt = performance.now();
  observer.disconnect();
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-state"] });"""
# Moves a Live control to value; resolves once the new picture is drawn (or the pass failed).
LIVE_MOVE = """async ([id, value]) => {
  const passes = window.fastdiff.livePasses, control = document.getElementById(id), start = performance.now();
  control.value = value;
  control.dispatchEvent(new Event("input"));
  await new Promise((resolve) => {
    const settled = () => document.body.dataset.live !== "running";
    if (settled()) return resolve(); // the move failed before a pass started
    const observer = new MutationObserver(() => settled() && (observer.disconnect(), resolve()));
    observer.observe(document.body, { attributes: true, attributeFilter: ["data-live"] });
  });
  const ms = performance.now() - start, text = (id) => document.getElementById(id).textContent;
  const sent = window.fastdiff.livePasses - passes, state = document.body.dataset.live;
  return { ms, sent, state, passMs: parseFloat(text("live-time")), message: text("live-message") };
}"""


def missing(chromium: str = CHROMIUM, export: bool = True) -> str | None:
    """Why bench web cannot run here, in one line; None when it can."""
    if not Path(chromium).is_file():
        return f"bench web needs Chromium at {chromium} (apt-get install chromium, or give --chromium PATH)"
    if importlib.util.find_spec("playwright") is None:
        return "bench web needs Playwright for Python (pip install playwright)"
    if export:
        try:
            require_packages()
        except ExportError as error:
            return f"bench web exports the site first: {error}"
    return None


def spread(values: list[float], unit: str = "s", scale: float = 1.0, digits: int = 2) -> str:
    """'1.23 s (1.20-1.30)': the median, and the range when there are several."""
    numbers = [scale * value for value in values]
    median = f"{statistics.median(numbers):.{digits}f}{'' if unit == '%' else ' '}{unit}"
    return median if len(numbers) == 1 else f"{median} ({min(numbers):.{digits}f}-{max(numbers):.{digits}f})"


def grid_class(site: dict) -> int:
    """CLASS_NAME's label, or 0 where the site has no such class."""
    return site["class_names"].index(CLASS_NAME) if CLASS_NAME in site["class_names"] else 0


def generate(page, sampler: str, class_index: int, model: str | None = None, steps: int | None = None) -> dict:
    """One 16-image Generate on the page: window.fastdiff.lastRun's timings."""
    page.select_option("#class", str(class_index))
    page.select_option("#sampler", sampler)  # the Distilled sampler fills in the student's steps
    if model is not None:
        page.select_option("#model", model)
    if steps is not None:
        page.fill("#steps", str(steps))
    for field, value in (("#guidance", GUIDANCE), ("#seed", SEED), ("#images", GRID_SIZE)):
        page.fill(field, str(value))
    page.evaluate("window.previousRun = window.fastdiff.lastRun")
    page.click("#generate")
    finished = "document.body.dataset.state === 'error' || window.fastdiff.lastRun !== window.previousRun"
    page.wait_for_function(finished, timeout=TIMEOUT_MS)
    if page.evaluate("document.body.dataset.state") == "error":
        raise ExportError(f"the page's {sampler} grid failed: {page.inner_text('#message')}")
    run = page.evaluate("window.fastdiff.lastRun")
    return {key: run[key] for key in ("seconds", "imagesPerSecond", "modelSeconds")}


def live_moves(page, count: int, updates: int) -> list[dict]:
    """The Live picture set to `count` images (untimed, its first pass at that size), then the guidance
    slider moved `updates` times, each once the previous picture is drawn."""
    page.wait_for_function("document.body.dataset.live !== 'running'", timeout=TIMEOUT_MS)
    moves = [page.evaluate(LIVE_MOVE, ["live-images", str(count)])]
    moves += [page.evaluate(LIVE_MOVE, ["live-guidance", f"{1 + 0.1 * (i % 10 + 1):.1f}"]) for i in range(updates)]
    for move in moves:
        if move["state"] != "done" or move["sent"] != 1:
            raise ExportError(f"a Live update did not draw ({move['state']}): {move['message']}")
    return moves[1:]


def measure_page(url: str, site: dict, repeats: int, chromium: str = CHROMIUM, updates: int = LIVE_UPDATES) -> dict:
    """Drive the served page in headless Chromium: `repeats` cold loads (each a fresh browser context),
    then on the last page one untimed warm-up grid each and `repeats` timed grids each, and the Live moves."""
    from playwright.sync_api import sync_playwright

    class_index = grid_class(site)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=LAUNCH_ARGS)
        loads, page = [], None
        for _ in range(repeats):
            if page is not None:
                page.context.close()
            page = browser.new_context().new_page()
            page.add_init_script(READY_CLOCK)
            page.goto(url)
            page.wait_for_function("['ready', 'error'].includes(document.body.dataset.state)", timeout=TIMEOUT_MS)
            if page.evaluate("document.body.dataset.state") == "error":
                raise ExportError(f"the page did not load: {page.inner_text('#status')}")
            shown = "document.getElementById('backend').textContent"
            loads.append(page.evaluate(f"({{ms: window.readyAt, ready: window.fastdiff.ready, shown: {shown}}})"))
        run_student = lambda: generate(page, STUDENT_SAMPLER, class_index)
        run_dpm = lambda: generate(page, DPM_SAMPLER, class_index, BASE, DPM_STEPS)
        run_student()
        generate(page, "DDIM", class_index, BASE, 2)  # the guided batch's first passes
        grids = [(run_student(), run_dpm()) for _ in range(repeats)]
        live = {count: live_moves(page, count, updates) for count in LIVE_COUNTS}
        version = browser.version
        browser.close()
    ready = loads[-1]["ready"]
    return {
        "chromium": version,
        "backend": ready["backend"],
        "threads": ready["threads"],
        "isolated": ready["crossOriginIsolated"],
        "backend_line": loads[-1]["shown"],  # what #backend says
        "ready_s": [load["ms"] / 1000 for load in loads],
        "loading_s": [load["ready"]["seconds"] for load in loads],
        "student": [student for student, _ in grids],
        "dpm": [dpm for _, dpm in grids],
        "live_ms": {count: [move["ms"] for move in moves] for count, moves in live.items()},
        "live_pass_ms": {count: [move["passMs"] for move in moves] for count, moves in live.items()},
    }


def time_python(base: Path, student: Path, steps: int, class_index: int, precision: str, repeats: int) -> dict:
    """Seconds of the page's configurations in PyTorch on the CPU, `repeats` runs each after a warm-up:
    {"student": [...], "dpm": [...], 1: [...], 4: [...]} (the Live pictures by image count)."""

    def runner(checkpoint: Path, count: int):
        model, diffusion_config, _ = load_model(checkpoint)
        model, schedule = model.to("cpu", memory_format=torch.channels_last), NoiseSchedule(diffusion_config)
        labels, seeds = torch.full((count,), class_index), list(range(SEED, SEED + count))

        def run(sampler: str, num_steps: int | None):
            plan = make_plan(model, schedule, sampler, num_steps, GUIDANCE)
            return sample_steps(model, schedule, labels, seeds, plan, precision)

        return run

    timed = {"dpm": time_run(runner(base, GRID_SIZE), "dpm++", DPM_STEPS, repeats=repeats)}
    for key, count in (("student", GRID_SIZE), *((count, count) for count in LIVE_COUNTS)):
        timed[key] = time_run(runner(student, count), "ddim", steps, repeats=repeats, warmup=("ddim", steps))
    return {key: result["rounds_s"] for key, result in timed.items()}


def web_table(page: dict, python: dict[str, dict], site: dict, student: dict) -> str:
    """The markdown table: a row per measurement; the browser's column, one per PyTorch precision
    (python: precision -> time_python's seconds), and the browser's time over PyTorch fp32's."""
    grid = f"{GRID_SIZE}-image grid, {site['class_names'][grid_class(site)]}, w = {GUIDANCE:g}, seed {SEED}"
    per_s = lambda seconds: f"{spread(seconds)}, {GRID_SIZE / statistics.median(seconds):.3g} images/s"

    def row(label: str, browser: str, key=None, cell=per_s, seconds: list[float] | None = None) -> list[str]:
        """label, the browser's cell, then with key PyTorch's cells and the ratio to fp32's (of seconds)."""
        if key is None:
            return [label, browser, *[""] * (len(python) + 1)]
        ratio = statistics.median(seconds) / statistics.median(python["fp32"][key])
        return [label, browser, *[cell(timed[key]) for timed in python.values()], f"{ratio:.2g}x"]

    loading = f"of which the worker's loading {spread(page['loading_s'])}"
    backend = f"`#backend`: {page['backend_line']}; crossOriginIsolated {str(page['isolated']).lower()}"
    models = f"{len(site['models'])} models loaded and checked (fresh browser context)"
    rows = [row(f"page ready: navigation to state ready, {models}", f"{spread(page['ready_s'])}, {loading}; {backend}")]
    for key, label in (
        ("student", f"{student['name']} ({student['distilled_steps']} step{'s' * (student['distilled_steps'] > 1)})"),
        ("dpm", f"{BASE} {DPM_SAMPLER} {DPM_STEPS}, guided"),
    ):
        seconds = [run["seconds"] for run in page[key]]
        rows.append(row(f"{label}: {grid}", per_s(seconds), key, seconds=seconds))
    overheads = [run["seconds"] / run["modelSeconds"] - 1 for run in page["dpm"]]
    verdict = "within" if statistics.median(overheads) <= OVERHEAD_TARGET else "ABOVE"
    in_model = spread([run["modelSeconds"] for run in page["dpm"]])
    target = f"seconds / seconds in session.run - 1 (target <= {100 * OVERHEAD_TARGET:.0f}%)"
    rows.append(
        row(
            f"the page's overhead on that grid: {target}",
            f"{spread(overheads, '%', 100, 1)}, {verdict} the target; {in_model} in session.run",
        )
    )
    for count in LIVE_COUNTS:
        moves, passes = page["live_ms"][count], page["live_pass_ms"][count]
        label = f"Live, {count} image{'s' if count > 1 else ''}: guidance slider moved to new picture drawn"
        browser = f"{spread(moves, 'ms', digits=0)}; the worker's pass {spread(passes, 'ms', digits=0)}"
        milliseconds = lambda seconds: spread(seconds, "ms", 1000, 0)
        rows.append(row(f"{label} ({len(moves)} moves)", browser, count, milliseconds, [ms / 1000 for ms in moves]))
    auto = resolve_precision("auto", torch.device("cpu"))
    columns = [f"PyTorch {name}" + (" (--precision auto)" if name == auto else "") for name in python]
    browser = f"browser: {page['backend']}, {page['threads']} threads"
    return markdown_table(["measured", browser, *columns, "browser / PyTorch fp32"], rows)


def served_site(site: Path, repeats: int, chromium: str) -> tuple[dict, dict, dict]:
    """(site.json, its fastest student, measure_page's numbers) of the export in site, served meanwhile."""
    if not (site / "site.json").is_file():
        raise ExportError(f"--site {site}: no site.json; export the site with `fastdiff export web --out {site}`")
    description = json.loads((site / "site.json").read_text())
    students = sorted((m for m in description["models"] if m["distilled_steps"]), key=lambda m: m["distilled_steps"])
    if not students or BASE not in [entry["name"] for entry in description["models"]]:
        raise ExportError(f"{site}: bench web needs {BASE} and a distilled student in the site")
    server, url = serve_in_background(site)
    try:
        return description, students[0], measure_page(url, description, repeats, chromium)  # the page's Distilled
    finally:
        server.shutdown()
        server.server_close()


def bench_web(assets: Path, site=None, checkpoints=None, repeats: int = 3, chromium: str = CHROMIUM) -> str:
    """Measure, write assets/bench-web.md and return its text; site: an existing export to measure, else
    the shipped models (in --checkpoints) are exported into a temporary folder."""
    reason = missing(chromium, export=site is None)
    if reason:
        raise ExportError(reason)
    with tempfile.TemporaryDirectory(prefix="fastdiff-bench-web-") as scratch:
        if site is None:
            folder = checkpoints_folder(checkpoints)[0]
            models = [folder / name for name in DEFAULT_MODELS if (folder / name / "config.json").is_file()]
            print(f"exporting {', '.join(path.name for path in models)} into {scratch}", flush=True)
            site = export_web(Path(scratch) / "site", models).folder
        description, student, page = served_site(Path(site), repeats, chromium)
    base, student_folder = (find_checkpoint(name, checkpoints) for name in (BASE, student["name"]))
    cpu, class_index = torch.device("cpu"), grid_class(description)
    precisions = dict.fromkeys(["fp32", resolve_precision("auto", cpu)])  # one column where auto is fp32
    python = {
        precision: time_python(base, student_folder, student["distilled_steps"], class_index, precision, repeats)
        for precision in precisions
    }
    cpu_name = "" if resolve_device().type == "cpu" else f"; the page and PyTorch on the CPU, {device_name(cpu)}"
    runtime = description["runtime"]
    text = (
        f"# Benchmark: web\n\nMeasured with `python -m fastdiff bench web` on: {machine()}{cpu_name}; Chromium "
        f"{page['chromium']} (headless); {runtime['package']} {runtime['version']}, {page['backend']} on "
        f"{page['threads']} threads.\n\n"
        "The browser edition (`fastdiff export web`) in headless Chromium through Playwright, served locally with "
        "the cross-origin isolation headers, beside PyTorch (`fastdiff.diffusion.sampling`) sampling the same "
        "configurations on the same CPU right after it. Reproduce with `python -m fastdiff bench web` (it exports "
        "the shipped models into a temporary folder; `--site site/` measures an existing export instead). Each "
        f"cell is the median of {repeats} runs after a warm-up (of {LIVE_UPDATES} slider moves in the browser's "
        "Live cells), the range in brackets; the browser's grid times are what the page reports "
        "(`window.fastdiff.lastRun`), its Live times run from setting the slider to the picture drawn.\n\n"
        + web_table(page, python, description, student)
        + "\n"
    )
    assets.mkdir(parents=True, exist_ok=True)
    (assets / "bench-web.md").write_text(text)
    return text
