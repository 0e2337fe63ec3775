"""FastDiff app: the page layout and its event wiring; the work is done by fastdiff.app.backend.

python app.py [--host 127.0.0.1] [--port 7860] [--checkpoints checkpoints] [--runs runs]
"""

from __future__ import annotations

import argparse
import inspect
import signal
from pathlib import Path

import gradio as gr

from ..config import DiffusionConfig, TrainConfig
from ..data import default_dataset
from ..device import device_line, keep_freed_memory
from ..diffusion.guidance import MAX_GUIDANCE
from ..diffusion.sampling import MAX_IMAGES
from ..diffusion.schedule import NoiseSchedule
from ..nn.shipped import checkpoints_folder
from .backend import NO_WARM_START, SESSIONS_KEPT, STATE_TTL, TRAIN_PRECISIONS, Backend
from .classroom import Classroom
from .classroom_ui import forward_panel, lab_tab, live_tab, quality_cost_panel, scrub_panel, sweep_tab
from .compare import COLUMNS, RESULT_COLUMNS, VARIANTS, default_configs
from .controls import free_dropdown
from .forward_strip import recognisable_t
from .generate import DEFAULT_SAMPLER, PAGE_STEPS, SAMPLER_LABELS
from .learn import EXPLANATION
from .live import Live
from .web import DEFAULT_SITE, web_routes
from .web import PATH as WEB_PATH

CSS = """.pixels img, #learn-input img { image-rendering: pixelated; }
#learn-input img { width: 100%; height: 100%; object-fit: contain; }"""
SAMPLING_LIMIT = 2  # Compare and Sweep runs at once (one per CPU core); more requests wait in Gradio's queue
IN_LINE_LIMIT = 32  # Generate and Live requests in the app's own line (batching.py); more wait in Gradio's


def in_order_of(handler, controls: dict) -> list:
    """The controls in the order of the handler's parameters, which are named after them: the order is
    written once, in the handler's signature. A `session` parameter is Gradio's to fill (gr.Request)."""
    return [controls[name] for name in inspect.signature(handler).parameters if name != "session"]


def generate_tab(backend: Backend, checkpoint_names: list[str], default: str | None) -> dict:
    with gr.Row():
        with gr.Column(scale=1):
            checkpoint = free_dropdown(checkpoint_names, value=default, label="checkpoint")
            class_name = free_dropdown(["random"], value="random", label="class")
            sampler = gr.Radio(list(SAMPLER_LABELS), value=DEFAULT_SAMPLER, label="sampler")
            steps = gr.Number(
                PAGE_STEPS, label="steps (model evaluations; a cascade's stages are scaled to them)", elem_id="steps"
            )
            guidance = gr.Number(2.0, label=f"guidance weight w (0 = none, at most {MAX_GUIDANCE:g})")
            eta = gr.Number(0, label="eta (DDIM only: 0 deterministic, 1 noisy)")
            with gr.Row():
                attention = gr.Checkbox(False, label="attention variant")
                stages = gr.Radio(["1", "2", "3"], value="1", label="cascade stages")
            with gr.Row():
                seed = gr.Number(0, label="seed (image i uses seed + i)")
                num_images = gr.Number(16, label=f"images (1 to {MAX_IMAGES})")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="generate")
                cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
            availability = gr.Markdown(backend.store.availability())
        with gr.Column(scale=2):
            status = gr.Markdown("Press Generate.", label="status", elem_id="status")
            # BMP: frames of noise do not compress, so PNG would spend its encoding time for nothing
            live = gr.Image(
                label="x_t (left) and predicted clean image (right)",
                format="bmp",
                height=200,
                elem_id="live",
                elem_classes="pixels",
                interactive=False,
            )
            final = gr.Image(
                label="final grid", format="png", height=420, elem_id="final", elem_classes="pixels", interactive=False
            )
            downloads = gr.File(label="PNG of the grid", file_count="multiple", interactive=False)
            with gr.Row():
                make_animations = gr.Button("Make the GIF and MP4 of the denoising", elem_id="make-animations")
                animation_note = gr.Markdown(label="animation note")
            animations = gr.File(label="GIF and MP4", file_count="multiple", interactive=False, elem_id="animations")
    last_image, trajectory = gr.State(None, time_to_live=STATE_TTL), gr.State(None, time_to_live=STATE_TTL)
    checkpoint.change(backend.class_choices, checkpoint, class_name, api_visibility="private")
    sampler.change(backend.sampler_steps, [sampler, checkpoint, steps], steps, api_visibility="private")
    controls = {
        "checkpoint": checkpoint,
        "class_name": class_name,
        "sampler": sampler,
        "steps": steps,
        "guidance": guidance,
        "attention": attention,
        "stages": stages,
        "seed": seed,
        "num_images": num_images,
        "eta": eta,
    }
    event = run.click(
        backend.generate,
        in_order_of(backend.generate, controls),
        [live, status, final, downloads, last_image, trajectory],
        api_name="generate",
        concurrency_limit=IN_LINE_LIMIT,
        concurrency_id="in line",
        show_progress_on=[final],  # the status line says where the run is; no tracker over it (nor "Error" on cancel)
    )
    # The page runs a click's listeners one after another, each to its end: the cancel goes first, so that
    # backend.cancelled, which waits for the run to close, writes the last status
    cancel.click(None, cancels=[event])
    cancel.click(backend.cancelled, None, status, api_visibility="private")
    make_animations.click(
        backend.animations, trajectory, [animations, animation_note], api_name="animations", concurrency_limit=1
    )
    return {
        "checkpoint": checkpoint,
        "class_name": class_name,
        "last_image": last_image,
        "availability": availability,
        "trajectory": trajectory,
        "event": event,
    }


def compare_tab(backend: Backend, checkpoint_names: list[str], default: str | None) -> dict:
    with gr.Row():
        checkpoint = free_dropdown(checkpoint_names, value=default, label="checkpoint")
        class_name = free_dropdown(["random"], value="random", label="class")
        seed = gr.Number(0, label="seed")
        num_images = gr.Number(4, label=f"images (1 to {MAX_IMAGES})")
    table = gr.Dataframe(
        default_configs(checkpoint_names),
        headers=COLUMNS,
        datatype=["str", "number", "number", "str", "number"],
        type="array",
        row_count=4,
        label=f"2-4 configurations: sampler ({', '.join(SAMPLER_LABELS)}),"
        f" steps, guidance, variant ({', '.join(VARIANTS)}), cascade stages (1-3); empty rows "
        f"are skipped",
        interactive=True,
    )
    run = gr.Button("Compare", variant="primary", elem_id="compare")
    gallery = gr.Gallery(
        label="same seed and class",
        columns=4,
        height=300,
        format="png",
        elem_classes="pixels",
        elem_id="compare-gallery",
    )
    results = gr.Dataframe(
        headers=RESULT_COLUMNS,
        label="measured here (wall time includes guidance; effective NFE "
        "counts low-resolution evaluations by their measured cost relative to 32x32)",
        interactive=False,
        wrap=True,  # long cells wrap, so that every column (quality last) fits a 1280 px window
        column_widths=["4%", "12%", "9%", "6%", "7%", "6%", "8%", "12%", "8%", "7%", "21%"],
        elem_id="compare-results",
    )
    plot = gr.Plot(label="speed", elem_id="compare-plot")
    checkpoint.change(backend.class_choices, checkpoint, class_name, api_visibility="private")
    run.click(
        backend.compare,
        [checkpoint, class_name, seed, num_images, table],
        [gallery, results, plot],
        api_name="compare",
        concurrency_limit=SAMPLING_LIMIT,
        concurrency_id="sampling",
    )
    return {"checkpoint": checkpoint, "class_name": class_name, "table": table}


def train_tab(backend: Backend, checkpoint_names: list[str]) -> dict:
    defaults = TrainConfig()
    with gr.Row():
        with gr.Column():
            dataset = gr.Textbox(backend.dataset, label="dataset: the CIFAR-10 zip ...")
            upload = gr.File(
                label="... or upload a .zip with one folder of images per class",
                file_types=[".zip"],
                elem_id="dataset-upload",
            )
            with gr.Row():
                epochs = gr.Number(defaults.epochs, label="epochs")
                batch_size = gr.Number(defaults.batch_size, label="batch size")
            with gr.Row():
                precision = gr.Radio(list(TRAIN_PRECISIONS), value="auto", label="precision")
                attention = gr.Checkbox(False, label="attention at 8x8")
                cascade = gr.Checkbox(False, label="cascade (LowDiff: 8x8, 16x16 and 32x32)")
            warm_start = free_dropdown(
                [NO_WARM_START] + checkpoint_names,
                value=NO_WARM_START,
                label="warm start from",
            )
            freeze_base = gr.Checkbox(
                False,
                label="keep the warm start's U-Net fixed: train only the cascade's "
                "added layers (fast, keeps its 32x32 quality)",
            )
            with gr.Row():
                start = gr.Button("Start training", variant="primary", elem_id="train")
                stop = gr.Button("Stop", variant="stop")
        with gr.Column():
            status = gr.Markdown(label="training status")
            loss = gr.Plot(label="loss and learning rate", elem_id="train-loss")
            preview = gr.Image(
                label="latest preview (noise to image, one row per class)",
                format="png",
                elem_classes="pixels",
                interactive=False,
                elem_id="train-preview",
            )
    timer = gr.Timer(1.0, active=False)
    controls = {
        "dataset_text": dataset,
        "upload": upload,
        "epochs": epochs,
        "batch_size": batch_size,
        "precision": precision,
        "attention": attention,
        "cascade": cascade,
        "warm_start": warm_start,
        "freeze_base": freeze_base,
    }
    start.click(
        backend.start_training,
        in_order_of(backend.start_training, controls),
        status,
        api_name="train",
        concurrency_limit=1,
    ).success(lambda: gr.Timer(active=True), None, timer, api_visibility="private")
    stop.click(backend.stop_training, None, status, api_name="stop_training")
    return {"timer": timer, "status": status, "loss": loss, "preview": preview, "warm_start": warm_start}


def learn_tab(backend: Backend, default: str | None, last_image: gr.State, checkpoint: gr.Dropdown) -> gr.Image:
    schedule = backend.store.schedule(default) if default else NoiseSchedule(DiffusionConfig())
    num_timesteps = schedule.num_timesteps
    with gr.Row():
        with gr.Column():
            picture = gr.Image(
                label="x_0: upload a picture", type="numpy", sources=["upload"], height=200, elem_id="learn-input"
            )
            use_last = gr.Button("use the last generated image")
            t = gr.Slider(0, num_timesteps - 1, value=recognisable_t(schedule), step=1, label="t")
        with gr.Column():
            noised = gr.Image(
                label="x_0 and x_t ~ q(x_t | x_0)",
                format="png",
                elem_classes="pixels",
                interactive=False,
                elem_id="learn-noised",
            )
            caption = gr.Markdown(label="caption")
    schedule = gr.Plot(label="noise schedule of the chosen checkpoint")
    gr.Markdown(EXPLANATION)
    use_last.click(backend.use_last_image, last_image, [picture, caption], api_visibility="private")
    picture.change(
        backend.learn, [picture, t, checkpoint], [noised, caption, schedule], show_progress="hidden", api_name="learn"
    )
    t.release(
        backend.learn,
        [picture, t, checkpoint],
        [noised, caption, schedule],
        show_progress="hidden",
        api_visibility="private",
    )
    return picture


def build_app(backend: Backend) -> gr.Blocks:
    names, default = backend.store.names(), backend.store.default_name()
    classroom = Classroom(backend)
    with gr.Blocks(title="FastDiff", delete_cache=(3600, 3600)) as demo:  # hourly, files older than an hour
        gr.Markdown(
            "# FastDiff\nClass-conditional diffusion on CIFAR-10 (32x32), on your CPU. "
            f"[In your browser]({WEB_PATH}/): the same models on your own device, no Python."
        )
        with gr.Tab("Generate"):
            generate = generate_tab(backend, names, default)
            scrub_panel(classroom, generate["trajectory"], generate["event"])
        with gr.Tab("Live") as live:
            live_tab(Live(backend), live, concurrency_limit=IN_LINE_LIMIT, concurrency_id="in line")
        with gr.Tab("Compare"):
            compare = compare_tab(backend, names, default)
            quality_cost_panel(classroom, compare["checkpoint"], compare["table"], demo)
        with gr.Tab("Sweep"):
            sweep = sweep_tab(classroom, names, default, concurrency_limit=SAMPLING_LIMIT, concurrency_id="sampling")
        with gr.Tab("Train"):
            train = train_tab(backend, names)
        with gr.Tab("Learn"):
            learn_picture = learn_tab(backend, default, generate["last_image"], generate["checkpoint"])
            forward_panel(classroom, learn_picture, generate["checkpoint"])
        with gr.Tab("2D lab"):
            lab_tab(classroom)
        status_outputs = [
            train["status"],
            train["loss"],
            train["preview"],
            train["timer"],
            generate["checkpoint"],
            compare["checkpoint"],
            train["warm_start"],
            generate["availability"],
        ]
        train["timer"].tick(
            backend.training_status, None, status_outputs, show_progress="hidden", api_visibility="private"
        )
        demo.load(backend.training_status, None, status_outputs, api_visibility="private")
        demo.unload(backend.forget)
        for tab in (generate, compare, sweep):
            demo.load(backend.class_choices, tab["checkpoint"], tab["class_name"], api_visibility="private")
    return demo


def launch(
    demo: gr.Blocks,
    host: str = "127.0.0.1",
    port: int = 7860,
    web: Path = DEFAULT_SITE,
    sessions_kept: int = SESSIONS_KEPT,
    **kwargs,
):
    """Serve the app, and at /web the browser edition exported into the folder web; Gradio keeps the
    state of the sessions_kept most recently used sessions."""
    demo.queue(default_concurrency_limit=SAMPLING_LIMIT)
    routes = {"routes": web_routes(web)}  # before Gradio's own routes, which would otherwise take /web
    return demo.launch(
        server_name=host,
        server_port=port,
        css=CSS,
        footer_links=["api"],
        app_kwargs=routes,
        state_session_capacity=sessions_kept,
        **kwargs,
    )


def stop_like_ctrl_c(signum, frame) -> None:
    """SIGTERM (kill, systemd, a benchmark) stops the app as Ctrl-C does: cleanly, its temp folder removed."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fastdiff app", description="The FastDiff app (Gradio).")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument(
        "--checkpoints",
        type=Path,
        default=None,
        help="the shipped checkpoints' folder (default: $FASTDIFF_CHECKPOINTS, else ./checkpoints when it "
        "exists, else the installed copy)",
    )
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="training runs (also loadable)")
    parser.add_argument(
        "--data",
        default=default_dataset(),
        help="the one dataset the Train tab may name besides uploads (default: $FASTDIFF_DATA, "
        "else cifar10, downloaded into data/)",
    )
    parser.add_argument(
        "--web",
        type=Path,
        default=DEFAULT_SITE,
        help="the browser edition's folder, served at /web (`fastdiff export web --out site`; default %(default)s)",
    )
    args = parser.parse_args(argv)
    keep_freed_memory()
    backend = Backend(checkpoints_folder(args.checkpoints)[0], args.runs, args.data, Path.cwd())
    print(device_line(backend.device, "auto"), flush=True)
    signal.signal(signal.SIGTERM, stop_like_ctrl_c)
    launch(build_app(backend), args.host, args.port, args.web)
