"""The app's view of checkpoints: which folders under checkpoints/ and runs/ can be loaded, which
shipped variant (base, attention, cascade) a request needs, a thread-safe cache of loaded models with
their per-resolution step latency, and the quality their eval.json records.

Only folders found by listing those two directories are ever opened, so a name typed into the page
cannot point the app at another file.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..diffusion.schedule import NoiseSchedule
from ..eval.cost import measure_step_latency
from ..eval.records import read_eval
from ..nn.checkpoint import (
    ATTENTION,
    BASE,
    CASCADE,
    DISTILLED,
    SHIPPED,
    WEIGHTS_NAME,
    is_generator,
    load_model,
    read_config,
    read_full_config,
)
from ..nn.unet import UNet


@dataclass
class LoadedModel:
    model: UNet
    schedule: NoiseSchedule
    name: str
    latency: dict[int, float] | None = None  # seconds per evaluation at each resolution, once measured
    latency_lock: threading.Lock = field(default_factory=threading.Lock)

    def step_latency(self) -> dict[int, float]:
        """measure_step_latency on first use, then the cached numbers."""
        with self.latency_lock:
            if self.latency is None:
                self.latency = measure_step_latency(self.model)
            return self.latency


class ModelStore:
    def __init__(self, checkpoints_dir: Path, runs_dir: Path, device: torch.device):
        self.checkpoints_dir, self.runs_dir = Path(checkpoints_dir), Path(runs_dir)
        self.device = device
        self._cache: dict[tuple[Path, float], LoadedModel] = {}
        self._lock = threading.Lock()

    def folders(self) -> dict[str, Path]:
        """Display name -> folder of every diffusion checkpoint: shipped ones by name, runs as runs/NAME."""
        found = {}
        for prefix, root in (("", self.checkpoints_dir), ("runs/", self.runs_dir)):
            if root.is_dir():
                for folder in sorted(p for p in root.iterdir() if p.is_dir()):
                    if is_generator(folder):
                        found[prefix + folder.name] = folder
        return found

    def names(self) -> list[str]:
        return list(self.folders())

    def default_name(self) -> str | None:
        names = self.names()
        return BASE if BASE in names else (names[0] if names else None)

    def students(self) -> dict[int, str]:
        """Step count -> name of each step-distilled student among the shipped checkpoints (not runs/),
        fewest steps first."""
        found = {}
        for name, folder in self.folders().items():
            steps = read_config(folder)[0].distilled_steps
            if steps and not name.startswith("runs/"):
                found.setdefault(steps, name)
        return dict(sorted(found.items()))

    def fastest_student(self) -> str:
        """The shipped student with the fewest steps; ValueError when there is none."""
        students = self.students()
        if not students:
            raise ValueError(f"no distilled student found in {self.checkpoints_dir}: distill one (docs/training.md)")
        return next(iter(students.values()))

    def missing(self, name: str) -> str:
        """What a request for a shipped checkpoint that is not in the folder is told."""
        return f"{SHIPPED[name]}: {name} not found in {self.checkpoints_dir}"

    def availability(self) -> str:
        """One line per shipped checkpoint: available, or not found in the checkpoints folder."""
        names = self.names()
        lines = [
            f"- {label}: `{name}`" if name in names else f"- {self.missing(name)}" for name, label in SHIPPED.items()
        ]
        runs = [n for n in names if n.startswith("runs/")]
        lines.append(f"- trained here: {', '.join(runs) if runs else 'none yet (see the Train tab)'}")
        return "\n".join(lines)

    def folder(self, name: str) -> Path:
        folders = self.folders()
        if name not in folders:
            available = ", ".join(folders) or f"none in {self.checkpoints_dir} or {self.runs_dir}"
            raise ValueError(f"checkpoint {name!r} not found; available: {available}")
        return folders[name]

    def is_cascade(self, name: str) -> bool:
        return read_full_config(self.folder(name))[3] is not None

    def resolve(
        self, name: str, attention: bool, stages: int, distilled: bool = False, steps: int | None = None
    ) -> str:
        """The checkpoint that serves a request: `name` when its architecture matches the attention
        switch and, for 2 or 3 stages, it is a cascade, and for the distilled sampler a step-distilled
        student; else the shipped checkpoint of the asked-for variant (for the distilled sampler, the
        shipped student of `steps` steps, the 4-step one when None). Raises ValueError with the reason."""
        if stages not in (1, 2, 3):
            raise ValueError(f"cascade stages must be 1, 2 or 3, got {stages}")
        is_student = read_config(self.folder(name))[0].distilled_steps > 0
        if distilled or is_student:
            return self._resolve_distilled(name, is_student, attention, stages, distilled, steps)
        if stages > 1 and not self.is_cascade(name):
            if name not in SHIPPED:
                raise ValueError(
                    f"{name} is a plain model: cascade with {stages} stages needs a checkpoint "
                    f"trained with 'cascade'; use 1 stage"
                )
            if CASCADE not in self.names():
                raise ValueError(f"{self.missing(CASCADE)}; use 1 stage")
            name = CASCADE
        has_attention = read_config(self.folder(name))[0].attention
        if has_attention == attention:
            return name
        variant = ATTENTION if attention else BASE
        if name in SHIPPED and stages == 1:
            if variant in self.names():
                return variant
            raise ValueError(self.missing(variant))
        raise ValueError(
            f"{name} was trained {'with' if has_attention else 'without'} attention: "
            f"{'tick' if has_attention else 'untick'} 'attention variant' to use it"
        )

    def _resolve_distilled(
        self, name: str, is_student: bool, attention: bool, stages: int, distilled: bool, steps: int | None
    ) -> str:
        if not distilled:
            raise ValueError(f"{name} is a distilled student: choose the distilled sampler for it")
        if stages > 1 or attention:
            raise ValueError("the distilled student has one stage and no attention: use 1 stage, attention off")
        if is_student:
            return name
        if name not in SHIPPED:
            raise ValueError(
                f"{name} is not a distilled student: the distilled sampler needs a checkpoint made by distill"
            )
        students = self.students()
        if not students:
            raise ValueError(self.missing(DISTILLED))
        if steps is None:
            return DISTILLED if DISTILLED in students.values() else next(iter(students.values()))
        if steps not in students:
            counts = " or ".join(str(count) for count in students)
            raise ValueError(f"the distilled students shipped here run {counts} steps, got {steps}")
        return students[steps]

    def load(self, name: str) -> LoadedModel:
        """Load on first use; a folder rewritten since (a run that trained on) is loaded again."""
        folder = self.folder(name)
        key = (folder.resolve(), (folder / WEIGHTS_NAME).stat().st_mtime)
        with self._lock:
            if key not in self._cache:
                self._cache = {k: v for k, v in self._cache.items() if k[0] != key[0]}
                model, diffusion_config, _ = load_model(folder, self.device)
                self._cache[key] = LoadedModel(model, NoiseSchedule(diffusion_config), name)
            return self._cache[key]

    def schedule(self, name: str) -> NoiseSchedule:
        """The noise schedule of a checkpoint, from its config alone (no weights read)."""
        return NoiseSchedule(read_config(self.folder(name))[1])

    def evaluation(self, name: str) -> dict | None:
        """The checkpoint's eval.json record, or None."""
        return read_eval(self.folder(name))
