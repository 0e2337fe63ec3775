"""Write tests/js/known_values.json: what the Python side computes for inputs the browser edition's tests
(tests/js/*.test.mjs) feed to fastdiff/web/*.js: Philox noise, timestep grids, alpha_bar, and every
sampler run on an analytic toy denoiser from ImageRNG noise. Run from the repository root:
    python tests/js/make_known_values.py
A Python test can call known_values() and compare it with the file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, when run as a script

import torch  # noqa: E402

from fastdiff.app.generate import DISTILLED_SAMPLER, make_request  # noqa: E402
from fastdiff.app.models import LoadedModel  # noqa: E402
from fastdiff.config import DiffusionConfig, ModelConfig  # noqa: E402
from fastdiff.diffusion.guidance import combine  # noqa: E402
from fastdiff.diffusion.rng import ImageRNG  # noqa: E402
from fastdiff.diffusion.samplers import SAMPLERS, timestep_grid  # noqa: E402
from fastdiff.diffusion.sampling import final_images, noise_between  # noqa: E402
from fastdiff.diffusion.schedule import NoiseSchedule  # noqa: E402
from fastdiff.images import to_uint8  # noqa: E402
from fastdiff.nn.unet import UNet  # noqa: E402

PATH = Path(__file__).with_name("known_values.json")
SEEDS = [3, 4]  # two images
SHAPE = (3, 4, 4)  # of 48 values each
NUM_STEPS = 5
NULL_CLASS = 10
# (name, sampler, prediction, eta, guidance, class labels): guidance None runs the toy without labels
RUNS = [
    ("ddim-eps", "ddim", "eps", 0.0, None, None),
    ("ddim-eta-v", "ddim", "v", 0.5, None, None),
    ("dpm++-v", "dpm++", "v", 0.0, None, None),
    ("dpm++sde-eps", "dpm++sde", "eps", 0.0, None, None),
    ("ddpm-x0", "ddpm", "x0", 0.0, None, None),
    ("ddim-guided-v", "ddim", "v", 0.0, 2.0, [3, 7]),
]
SCHEDULES = {
    "linear": DiffusionConfig(num_timesteps=500),
    "cosine-zero-terminal-snr": DiffusionConfig(num_timesteps=1000, schedule="cosine", zero_terminal_snr=True),
}
# to_uint8 of one (3, 2, 2) image: the ends, beyond them, and values whose (x + 1) * 127.5 is a half
PIXELS = [-1.0, 1.0, -2.0, 3.0, 0.0, 1 / 255 - 1, 3 / 255 - 1, 0.5, -0.5, 2.5 / 127.5 - 1, 0.9, -0.999]
ALPHA_BAR_AT = [0, 1, 249, 498, 499]
GRIDS = [
    (500, 10, None),
    (500, 8, None),
    (500, 20, None),
    (500, 7, 300),
    (1000, 3, None),
    (50, 50, None),
]  # T, steps, t_start


# The page's form as typed: (model, class, sampler, steps, guidance, seed, images) -> the app's message
MODELS = {
    "base": ModelConfig(n_feat=8, prediction="v"),
    "student": ModelConfig(n_feat=8, prediction="v", guidance_embedding=True, distilled_steps=2),
}
FORMS = [
    ("base", "cat", "DDIM", "10", "2", "0", "4"),
    ("base", "cat", "DDIM", "0", "2", "0", "1"),
    ("base", "cat", "DPM-Solver++", "100000", "2", "0", "1"),
    ("base", "cat", "DDIM", "2.5", "2", "0", "1"),
    ("base", "cat", "DDIM", "", "2", "0", "1"),
    ("base", "cat", "DDIM", "10", "nan", "0", "1"),
    ("base", "cat", "DDIM", "10", "11", "0", "1"),
    ("base", "cat", "DDIM", "10", "1e30", "0", "1"),
    ("base", "cat", "DDIM", "10", None, "0", "1"),  # an empty field: Gradio sends None
    ("base", "cat", "DDIM", "10", "2", "-1", "1"),
    ("base", "cat", "DDIM", "10", "2", "2147483646", "2"),
    ("base", "cat", "DDIM", "10", "2", "1.5", "2"),
    ("base", "cat", "DDIM", "10", "2", "0", "17"),
    ("base", "cat", "DDIM", "10", "2", "0", "0"),
    ("base", "cat", "DPM-Solver++ SDE", "20", "0", "5", "16"),
    ("student", "dog", DISTILLED_SAMPLER, "2", "2", "0", "16"),
    ("student", "dog", DISTILLED_SAMPLER, "3", "2", "0", "1"),
    ("student", "dog", DISTILLED_SAMPLER, "2", "5", "0", "1"),
    ("student", "dog", "DPM-Solver++", "2", "2", "0", "1"),
]


def form_messages() -> list[dict]:
    """make_request's message for each form of FORMS (None where it is accepted)."""
    loaded = {
        name: LoadedModel(UNet(config), NoiseSchedule(DiffusionConfig()), name) for name, config in MODELS.items()
    }
    cases = []
    for model, class_name, sampler, steps, guidance, seed, images in FORMS:
        try:
            make_request(loaded[model], class_name, sampler, steps, guidance, 0, seed, images)
            message = None
        except ValueError as e:
            message = str(e)
        form = dict(class_name=class_name, sampler=sampler, steps=steps, guidance=guidance, seed=seed, images=images)
        cases.append({"model": model, "form": form, "message": message})
    return cases


def toy_output(x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None, num_timesteps: int) -> torch.Tensor:
    """The analytic toy network: 0.1 x_t + 0.01 t / T (+ 0.02 label), float32, per image."""
    shift = 0.01 * t.float() / num_timesteps
    if labels is not None:
        shift = shift + 0.02 * labels.float()
    return 0.1 * x_t + shift.view(-1, 1, 1, 1)


def toy_denoiser(guidance: float | None, labels: list[int] | None, num_timesteps: int):
    if guidance is None:
        return lambda x_t, t: toy_output(x_t, t, None, num_timesteps)
    cond, null = torch.tensor(labels), torch.full((len(labels),), NULL_CLASS)
    return lambda x_t, t: combine(
        toy_output(x_t, t, cond, num_timesteps), toy_output(x_t, t, null, num_timesteps), guidance
    )


def two_draws(seed: int, count: int) -> list[list[float]]:
    """Two consecutive draws of count normals from one image's stream (the second starts on a new block)."""
    rng = ImageRNG([seed])
    return [rng.randn(count).flatten().tolist(), rng.randn(count).flatten().tolist()]


def known_values() -> dict:
    schedule = NoiseSchedule(SCHEDULES["linear"])
    runs = {}
    for name, sampler, prediction, eta, guidance, labels in RUNS:
        rng = ImageRNG(SEEDS)
        x_T = rng.randn(*SHAPE)
        denoiser = toy_denoiser(guidance, labels, schedule.num_timesteps)
        steps = SAMPLERS[sampler](denoiser, schedule, x_T, NUM_STEPS, eta=eta, rng=rng, prediction=prediction)
        runs[name] = {
            "sampler": sampler,
            "prediction": prediction,
            "eta": eta,
            "guidance": guidance,
            "class_labels": labels,
            "final_x_t": final_images(steps).flatten().tolist(),
        }
    return {
        "seeds": SEEDS,
        "shape": list(SHAPE),
        "num_steps": NUM_STEPS,
        "null_class": NULL_CLASS,
        "noise": ImageRNG(SEEDS).randn(*SHAPE).flatten().tolist(),
        "two_draws": two_draws(seed=5, count=5),
        "timestep_grids": [
            {"num_timesteps": T, "num_steps": n, "t_start": s, "grid": timestep_grid(T, n, s)} for T, n, s in GRIDS
        ],
        "alpha_bar": {
            name: {
                "config": vars(config),
                "at": ALPHA_BAR_AT,
                "values": NoiseSchedule(config).alpha_bar[ALPHA_BAR_AT].tolist(),
            }
            for name, config in SCHEDULES.items()
        },
        "runs": runs,
        "forms": form_messages(),
        "between": {
            "seeds": SEEDS,
            "other_seeds": [10, 11],
            "fraction": 0.3,
            "noise": noise_between(SEEDS, [10, 11], 0.3, *SHAPE).flatten().tolist(),
        },
        "pixels": {"x": PIXELS, "uint8_hwc": to_uint8(torch.tensor(PIXELS).view(1, 3, 2, 2)).flatten().tolist()},
    }


if __name__ == "__main__":
    PATH.write_text(json.dumps(known_values(), indent=1) + "\n")
    print(f"wrote {PATH}")
