"""FastDiff app: the page layout and its event wiring; the work is done by fastdiff.app_backend.

    python app.py [--host 127.0.0.1] [--port 7860] [--checkpoints checkpoints] [--runs runs]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import gradio as gr

from fastdiff.app_backend import Backend
from fastdiff.app_generate import MAX_IMAGES, SAMPLER_LABELS

ROOT = Path(__file__).resolve().parent
CSS = ".pixels img { image-rendering: pixelated; }"
SAMPLING_LIMIT = 2  # sampling runs at once (one per CPU core); more requests wait in the queue


def generate_tab(backend: Backend, checkpoint_names: list[str], default: str | None) -> dict:
    with gr.Row():
        with gr.Column(scale=1):
            checkpoint = gr.Dropdown(checkpoint_names, value=default, label="checkpoint", allow_custom_value=True)
            class_name = gr.Dropdown(["random"], value="random", label="class", allow_custom_value=True)
            sampler = gr.Radio(list(SAMPLER_LABELS), value="DPM-Solver++", label="sampler")
            steps = gr.Slider(1, 1000, value=20, step=1, label="steps (model evaluations)")
            guidance = gr.Number(2.0, label="guidance weight w (0 = none)")
            eta = gr.Slider(0, 1, value=0, step=0.05, label="eta (DDIM only: 0 deterministic, 1 noisy)")
            with gr.Row():
                attention = gr.Checkbox(False, label="attention variant")
                stages = gr.Radio([1, 2, 3], value=1, label="cascade stages")
            with gr.Row():
                seed = gr.Number(0, precision=0, label="seed (image i uses seed + i)")
                num_images = gr.Slider(1, MAX_IMAGES, value=16, step=1, label="images")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="generate")
                cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
            gr.Markdown(backend.availability())
        with gr.Column(scale=2):
            status = gr.Markdown("Press Generate.", elem_id="status")
            live = gr.Image(label="x_t (left) and predicted clean image (right)", format="png", height=200,
                            elem_id="live", elem_classes="pixels", interactive=False)
            final = gr.Image(label="final grid", format="png", height=420, elem_id="final",
                             elem_classes="pixels", interactive=False)
            downloads = gr.File(label="PNG, GIF and MP4", file_count="multiple", interactive=False)
    last_image = gr.State(None)
    checkpoint.change(backend.class_choices, checkpoint, class_name)
    event = run.click(backend.generate, [checkpoint, class_name, sampler, steps, guidance, attention, stages,
                                         seed, num_images, eta], [live, status, final, downloads, last_image],
                      api_name="generate", concurrency_limit=SAMPLING_LIMIT, concurrency_id="sampling")
    cancel.click(None, cancels=[event])
    return {"checkpoint": checkpoint, "class_name": class_name, "last_image": last_image}


def build_app(backend: Backend) -> gr.Blocks:
    names, default = backend.store.names(), backend.store.default_name()
    with gr.Blocks(title="FastDiff") as demo:
        gr.Markdown("# FastDiff\nClass-conditional diffusion on CIFAR-10 (32x32), on your CPU.")
        with gr.Tab("Generate"):
            generate = generate_tab(backend, names, default)
        demo.load(backend.class_choices, generate["checkpoint"], generate["class_name"])
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, **kwargs):
    demo.queue(default_concurrency_limit=SAMPLING_LIMIT)
    return demo.launch(server_name=host, server_port=port, css=CSS, footer_links=["api"], **kwargs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The FastDiff app (Gradio).")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints", help="shipped checkpoints")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs", help="training runs (also loadable)")
    args = parser.parse_args(argv)
    launch(build_app(Backend(args.checkpoints, args.runs)), args.host, args.port)


if __name__ == "__main__":
    main()
