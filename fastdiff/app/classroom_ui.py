"""Layout and wiring of the classroom views: replaying the latest run (under Generate), the forward
process as a strip (in Learn), quality against cost (in Compare), the Live, Sweep and 2D lab tabs; the
work is done by fastdiff.app.classroom and fastdiff.app.live."""

from __future__ import annotations

import gradio as gr

from ..diffusion.sampling import MAX_IMAGES
from ..lab.toy2d import DATASETS, TOY_DIFFUSION
from .backend import STATE_TTL
from .classroom import Classroom
from .controls import free_dropdown
from .generate import SAMPLER_LABELS
from .lab2d import CLASSES, MAX_TRAIN_SECONDS
from .live import LIVE_IMAGES, LIVE_SEEDS, Live
from .sweep import DEFAULT_VALUES, SETTINGS


def scrub_panel(classroom: Classroom, trajectory: gr.State, generated) -> None:
    """A step slider and an image slider over the latest run, kept in `trajectory` by the Generate
    event `generated`."""
    with gr.Accordion("Replay the latest run step by step (no model call)", open=True):
        with gr.Row():
            position = gr.Slider(0, 100, value=100, step=1, label="through the run (%)", elem_id="scrub-step")
            image = gr.Slider(1, MAX_IMAGES, value=1, step=1, label="image of the grid", elem_id="scrub-image")
        view = gr.Image(
            label="x_t after the step | predicted x0 | predicted eps",
            format="bmp",
            height=220,
            elem_id="scrub-view",
            elem_classes="pixels",
            interactive=False,
        )
        caption = gr.Markdown(label="the step", elem_id="scrub-caption")
        strip = gr.Image(
            label="the run of this image (rows x_t, x0, eps; download as PNG)",
            format="png",
            elem_id="scrub-strip",
            elem_classes="pixels",
            interactive=False,
        )
    generated.then(classroom.scrub_ready, trajectory, [position, image, view, caption, strip], api_visibility="private")
    for control, visibility in ((position, "public"), (image, "private")):  # no queue: no model call, ~1 ms
        control.change(
            classroom.scrub,
            [trajectory, position, image],
            [view, caption],
            show_progress="hidden",
            queue=False,
            api_name="scrub" if control is position else None,
            api_visibility=visibility,
        )
    image.release(classroom.scrub_strip, [trajectory, image], strip, show_progress="hidden", api_name="scrub_strip")


def forward_panel(classroom: Classroom, picture: gr.Image, checkpoint: gr.Dropdown) -> None:
    """x_t of the Learn tab's picture at timesteps evenly spaced in log-SNR."""
    strip = gr.Image(
        label="the forward process: x_0, then x_t at 8 timesteps evenly spaced in log-SNR",
        format="png",
        elem_id="forward-strip",
        elem_classes="pixels",
        interactive=False,
    )
    caption = gr.Markdown(label="forward process")
    for event in (picture.change, checkpoint.change):
        event(
            classroom.forward, [picture, checkpoint], [strip, caption], show_progress="hidden", api_visibility="private"
        )


def sweep_tab(classroom: Classroom, checkpoint_names: list[str], default: str | None, **queue) -> dict:
    """One image per value of one setting, on the same seed, with its time. queue: the Sweep button's
    concurrency_limit and concurrency_id."""
    with gr.Row():
        checkpoint = free_dropdown(checkpoint_names, value=default, label="checkpoint")
        class_name = free_dropdown(["random"], value="random", label="class")
        # deterministic by default: the image follows the starting noise and the swept setting alone
        sampler = gr.Radio(list(SAMPLER_LABELS), value="DPM-Solver++", label="sampler")
    with gr.Row():
        steps = gr.Number(20, label="steps")
        guidance = gr.Number(2.0, label="guidance weight w")
        seed = gr.Number(0, label="seed (the same noise for every image)")
    with gr.Row():
        setting = gr.Radio(list(SETTINGS), value="guidance w", label="setting to sweep")
        values = gr.Textbox(DEFAULT_VALUES["guidance w"], label="its values, comma-separated", elem_id="sweep-values")
    run = gr.Button("Sweep", variant="primary", elem_id="sweep")
    status = gr.Markdown(label="sweep status", elem_id="sweep-status")
    gallery = gr.Gallery(
        label="only the swept setting changes",
        columns=5,
        height=260,
        format="png",
        elem_classes="pixels",
        elem_id="sweep-gallery",
    )
    setting.change(classroom.sweep_values, setting, values, api_visibility="private")
    run.click(
        classroom.sweep,
        [checkpoint, class_name, sampler, steps, guidance, seed, setting, values],
        [gallery, status],
        api_name="sweep",
        **queue,
    )
    return {"checkpoint": checkpoint, "class_name": class_name}


def quality_cost_panel(classroom: Classroom, checkpoint: gr.Dropdown, table: gr.Dataframe, demo: gr.Blocks) -> None:
    """The recorded quality against cost, with the Compare table's configurations marked."""
    plot = gr.Plot(label="recorded quality against cost (from eval.json and the quality sweep)", elem_id="quality-cost")
    note = gr.Markdown(label="quality note")
    for event in (checkpoint.change, table.change, demo.load):
        event(
            classroom.quality_cost, [checkpoint, table], [plot, note], show_progress="hidden", api_visibility="private"
        )


def lab_tab(classroom: Classroom) -> None:
    """Train a small denoiser on points of the plane, then watch the samplers and the noise field."""
    lab = gr.State(None, time_to_live=STATE_TTL)
    with gr.Row():
        with gr.Column(scale=1):
            dataset = gr.Radio(list(DATASETS), value="two moons", label="dataset (two classes each)")
            seconds = gr.Slider(1, MAX_TRAIN_SECONDS, value=20, step=1, label="training time (s)")
            train = gr.Button("Train", variant="primary", elem_id="lab-train")
            status = gr.Markdown(label="lab status", elem_id="lab-status")
            choice = gr.Radio(list(CLASSES), value="both classes", label="sample which class")
            guidance = gr.Number(0.0, label="guidance weight w (with one class)")
            steps = gr.Slider(2, TOY_DIFFUSION.num_timesteps, value=20, step=1, label="sampler steps")
            sample = gr.Button("Sample with every sampler", elem_id="lab-sample")
            t = gr.Slider(0, TOY_DIFFUSION.num_timesteps - 1, value=60, step=1, label="t of the noise field")
        with gr.Column(scale=2):
            training = gr.Plot(label="data and training loss", elem_id="lab-training")
            paths = gr.Plot(label="the same noise moving to data under each sampler", elem_id="lab-paths")
            field = gr.Plot(label="predicted noise field", elem_id="lab-field")
    train.click(
        classroom.lab_train, [dataset, seconds], [training, status, lab], api_name="lab_train", concurrency_limit=2
    ).then(
        classroom.lab_field,
        [lab, t, choice, guidance],
        field,
        api_name="lab_field_after_training",
        api_visibility="private",
    )
    sample.click(classroom.lab_sample, [lab, steps, choice, guidance], paths, api_name="lab_sample")
    t.release(classroom.lab_field, [lab, t, choice, guidance], field, api_name="lab_field", show_progress="hidden")


def live_tab(live: Live, tab: gr.Tab, **queue) -> None:
    """Controls whose every move redraws the fastest distilled student's pictures. Each event runs with
    trigger_mode "always_last": while an update runs, only the newest value waits, so that the picture
    shown when a slider stops is the one for its last value. queue: concurrency_limit and concurrency_id."""
    classes, guidance_max = live.choices()
    with gr.Row():
        with gr.Column(scale=1):
            class_name = free_dropdown(classes, value=classes[0], label="class of the pictures", elem_id="live-class")
            guidance = gr.Slider(0, guidance_max, value=2.0, step=0.1, label="guidance weight w", elem_id="live-w")
            seed = gr.Slider(0, LIVE_SEEDS, value=0, step=1, label="seed (image i uses seed + i)", elem_id="live-seed")
            other_seed = gr.Number(1, label="second seed", elem_id="live-other-seed")
            between = gr.Slider(
                0, 1, value=0, step=0.01, label="between the two seeds (0: the seed's noise, 1: the second's)"
            )
            num_images = gr.Radio(list(LIVE_IMAGES), value="4", label="images")
        with gr.Column(scale=2):
            picture = gr.Image(
                label="the distilled student, redrawn as you move a control",
                format="png",
                height=300,
                elem_id="live-picture",
                elem_classes="pixels",
                interactive=False,
            )
            caption = gr.Markdown("Move a control.", label="update", elem_id="live-caption")
    shown = gr.State(None)
    inputs, outputs = [class_name, guidance, seed, other_seed, between, num_images, shown], [picture, caption, shown]
    for control in inputs[:-1]:
        control.input(
            live.update,
            inputs,
            outputs,
            trigger_mode="always_last",
            show_progress="hidden",
            api_name="live" if control is guidance else None,
            api_visibility="public" if control is guidance else "private",
            **queue,
        )
    tab.select(live.update, inputs, outputs, show_progress="hidden", api_visibility="private", **queue)
