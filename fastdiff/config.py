"""Configuration dataclasses: one for the network, one for the noise process, one for training.

A checkpoint stores the first two in its `config.json`, so a folder of weights is self-describing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

PREDICTIONS = ("eps", "v", "x0")  # network parameterizations (see diffusion/schedule.py)
# what a new training run's network predicts, with Min-SNR-5 weighting (TrainConfig.min_snr_gamma): the recipe
# comparison's winner (assets/recipes.md); the paper's recipe is eps with uniform weighting
TRAINING_PREDICTION = "v"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass
class ModelConfig:
    n_feat: int = 64  # channels at 32x32 and 16x16; the 8x8 bottleneck has 2 * n_feat
    image_channels: int = 3  # 3 for RGB, 1 for grayscale
    image_size: int = 32  # side of the square input; must be divisible by 4
    num_classes: int = 10  # 0 = unconditional; otherwise one extra "null" class for guidance
    attention: bool = False  # one 4-head self-attention layer at the 8x8 bottleneck
    attention_heads: int = 4  # heads of that layer
    class_names: tuple[str, ...] = CIFAR10_CLASSES  # label index -> human name (len == num_classes)
    prediction: str = "eps"  # what the network outputs: "eps" (the noise), "v" (Salimans & Ho 2022) or "x0"
    guidance_embedding: bool = False  # the guidance weight w is an input (a guidance-distilled student:
    # one forward pass per step instead of conditional + unconditional)
    guidance_range: tuple[float, float] = (0.0, 4.0)  # with guidance_embedding: the w it was trained for
    distilled_steps: int = 0  # a step-distilled model's DDIM step count (its default); 0 = not step-distilled

    def __post_init__(self):
        self.class_names = tuple(self.class_names)
        self.guidance_range = tuple(float(w) for w in self.guidance_range)
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {self.prediction!r}: use one of {', '.join(PREDICTIONS)}")
        low, high = self.guidance_range
        if not 0 <= low < high:
            raise ValueError(f"guidance_range must be two increasing weights >= 0, got {self.guidance_range}")
        if self.distilled_steps < 0:
            raise ValueError(f"distilled_steps must be 0 or a step count, got {self.distilled_steps}")
        if self.image_size % 4:
            raise ValueError(f"image_size must be divisible by 4, got {self.image_size}")
        if self.num_classes and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")
        if self.attention and (2 * self.n_feat) % self.attention_heads:
            raise ValueError(
                f"2 * n_feat = {2 * self.n_feat} is not divisible by {self.attention_heads} attention heads"
            )


@dataclass
class CascadeConfig:
    """A LowDiff cascade: one network for several resolutions. Stored as config.json's "cascade" entry;
    a checkpoint without one is a plain UNet."""

    resolutions: tuple[int, ...] = (8, 16, 32)  # lowest first; each is image_size, image_size / 2 or / 4
    # share of training images whose low-res condition is dropped, so that any resolution can also start a
    # cascade (1, 2 or 3 stages)
    condition_dropout: float = 0.1
    # stage settings `bench cascade --sweep` chose for these weights, used instead of the paper's fractions:
    # sampler -> stage count ("2", "3") -> [first stage's truncation, final stage's steps] as fractions of
    # the sampler's plain step count
    swept_stages: dict[str, dict[str, list[float]]] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.resolutions = tuple(int(r) for r in self.resolutions)
        if len(self.resolutions) < 2 or list(self.resolutions) != sorted(set(self.resolutions)):
            raise ValueError(f"cascade resolutions must be at least two increasing sizes, got {self.resolutions}")
        if not 0 <= self.condition_dropout <= 1:
            raise ValueError(f"condition_dropout must be between 0 and 1, got {self.condition_dropout}")


@dataclass
class DiffusionConfig:
    num_timesteps: int = 500  # T
    schedule: str = "linear"  # "linear" (DDPM) or "cosine" (Nichol & Dhariwal 2021)
    beta_start: float = 1e-4  # beta_1 of the linear schedule
    beta_end: float = 0.02  # beta_T of the linear schedule
    # rescale the schedule so that the last timestep is pure noise (Lin et al. 2024, "Common diffusion noise
    # schedules and sample steps are flawed", Algorithm 1); needs a v- or x0-predicting network
    zero_terminal_snr: bool = False

    def __post_init__(self):
        if self.schedule not in ("linear", "cosine"):
            raise ValueError(f"unknown schedule {self.schedule!r}: use 'linear' or 'cosine'")
        if self.num_timesteps < 2:
            raise ValueError(f"num_timesteps must be at least 2, got {self.num_timesteps}")


def option(default, help: str):
    """A TrainConfig field with its help text, from which `fastdiff train` builds its --flag."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    epochs: int = option(100, "passes over the training set")
    batch_size: int = option(128, "images per optimizer step (summed over all processes)")
    lr: float = option(1e-4, "Adam learning rate at the start")
    lr_min: float = option(1e-6, "cosine annealing ends here")
    warmup_steps: int = option(0, "linear learning-rate warm-up before the cosine decay")
    label_dropout: float = option(0.1, "share of labels replaced by the null class (classifier-free guidance)")
    ema_decay: float = option(0.999, "EMA of the weights, ramped up over the first steps")
    precision: str = option("auto", "auto | fp32 | bf16 | fp16")
    grad_clip: float = option(1.0, "max global gradient norm (0 = off)")
    min_snr_gamma: float = option(
        5.0, "weight each timestep's loss as Min-SNR-gamma (Hang et al. 2023) with this gamma (0 = off, the paper's)"
    )
    freeze_base: bool = option(
        False,
        "with --init: keep the plain U-Net's weights fixed and train only the layers --cascade or --attention adds",
    )
    seed: int = option(0, "seeds initialisation, data order, noise and dropout")
    preview_every: int = option(5, "epochs between denoising previews (0 = never)")
    eval_every: int = option(0, "epochs between quality probes (class accuracy, KID) in the log (0 = never)")
    max_bad_steps: int = option(10, "consecutive non-finite losses before the run stops")

    def __post_init__(self):
        minimums = dict(epochs=1, batch_size=1, max_bad_steps=1, warmup_steps=0, preview_every=0, eval_every=0)
        for name, low in {**minimums, "lr_min": 0, "grad_clip": 0, "min_snr_gamma": 0}.items():
            if not getattr(self, name) >= low:  # also refuses NaN
                raise ValueError(f"{name} must be at least {low}, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        for name in ("label_dropout", "ema_decay"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")


@dataclass
class DistillConfig:
    """A distillation run (train/distill.py): guidance distillation, then halving rounds."""

    steps: int = 4  # DDIM steps of the final student
    from_steps: int = 64  # DDIM steps of the guidance-distilled student that the first halving starts from
    prediction: str = "v"  # the students' parameterization (eps, v or x0; v or x0 work at few steps)
    guidance_max: float = 4.0  # students learn w uniform in [0, guidance_max]
    guidance_epochs: int = 20  # epochs of the guidance round
    round_epochs: int = 6  # epochs of each halving round


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


def from_dict(cls, data: dict):
    """Build `cls` from a dict, ignoring unknown keys so that older configs still load."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
