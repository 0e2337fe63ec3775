"""The Train tab's work: at most one training run at a time, in a background thread, observed through
the Trainer's events (loss, learning rate, speed, previews) so that the page can poll it."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from matplotlib.figure import Figure

from ..config import CascadeConfig, DiffusionConfig, ModelConfig, TrainConfig
from ..data import DataError, load_dataset
from ..nn.checkpoint import CheckpointError
from ..train.trainer import LOG_NAME, Trainer, TrainEvent, loss_name, plot_run


@dataclass
class RunState:
    out_dir: Path
    phase: str = "loading the dataset"  # then "training", "finished", "stopped" or "failed"
    message: str = ""
    step: int = 0
    total_steps: int = 0
    batch_size: int = 0
    history: list[tuple[int, float, float, float]] = field(default_factory=list)  # (step, loss, lr, time)
    preview: Path | None = None


class TrainingSession:
    def __init__(self, device: torch.device):
        self.device = device
        self.state: RunState | None = None
        self.trainer: Trainer | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(
        self,
        dataset: Path,
        out_dir: Path,
        train_config: TrainConfig,
        model_config: ModelConfig,
        init: Path | None,
        cascade_config: CascadeConfig | None = None,
    ) -> None:
        """Start a run (a LowDiff cascade with a cascade_config) in the background; ValueError while
        another one is running."""
        with self._lock:
            if self.running:
                raise ValueError("a training run is already in progress: stop it or wait until it ends")
            self.state, self.trainer = RunState(out_dir, batch_size=train_config.batch_size), None
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run,
                daemon=True,
                name="fastdiff-training",
                args=(dataset, out_dir, train_config, model_config, init, cascade_config),
            )
            self._thread.start()

    def request_stop(self) -> bool:
        """Ask the run to stop at its next step (with a checkpoint written); False when none runs."""
        if not self.running:
            return False
        self._stop.set()
        if self.trainer is not None:
            self.trainer.request_stop()
        return True

    def _run(
        self,
        dataset: Path,
        out_dir: Path,
        train_config: TrainConfig,
        model_config: ModelConfig,
        init: Path | None,
        cascade_config: CascadeConfig | None,
    ) -> None:
        state = self.state
        try:
            data = load_dataset(str(dataset), "train", model_config.image_size, model_config.image_channels)
            state.message = data.preparation
            self.trainer = Trainer(
                data,
                out_dir,
                train_config,
                model_config,
                DiffusionConfig(),
                self.device,
                init=init,
                on_event=self._on_event,
                cascade_config=cascade_config,
            )
            state.total_steps, state.phase = self.trainer.total_steps, "training"
            if self._stop.is_set():
                self.trainer.request_stop()
            self.trainer.run()
            if (out_dir / LOG_NAME).is_file():  # at least one epoch, or part of one, was logged
                plot_run(out_dir)
            state.phase = "stopped" if self._stop.is_set() else "finished"
        except (DataError, CheckpointError, ValueError, FloatingPointError, OSError) as e:
            state.phase, state.message = "failed", str(e)
        except Exception as e:  # a bug: say so in the page, keep the traceback in the server log
            state.phase, state.message = "failed", f"unexpected {e.__class__.__name__}: {e}"
            raise

    def _on_event(self, event: TrainEvent) -> None:
        state = self.state
        if event.kind == "step":
            state.step = event.step
            # one append per step: a reader in another thread always sees whole records
            state.history.append((event.step, event.data["loss"], event.data["lr"], time.perf_counter()))
        elif event.kind == "preview":
            state.preview = Path(event.data["path"])
        elif event.kind == "warning":
            state.message = event.data["message"]
        elif event.kind == "checkpoint":
            state.message = f"checkpoint written to {event.data['path']}"

    def images_per_sec(self, window: int = 50) -> float:
        recent = self.state.history[-window:]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) * self.state.batch_size / (recent[-1][3] - recent[0][3])

    def summary(self) -> str:
        state = self.state
        if state is None:
            return "No training yet. One run at a time; generation keeps working meanwhile."
        lines = [f"**{state.phase}** · `{state.out_dir.name}` · step {state.step}/{state.total_steps or '?'}"]
        speed = self.images_per_sec()
        if speed and state.phase == "training":
            eta = (state.total_steps - state.step) * state.batch_size / speed
            lines.append(f"{speed:.1f} images/s · ETA {time.strftime('%H:%M:%S', time.gmtime(eta))}")
        if state.phase == "finished":
            lines.append("The model is now in the checkpoint lists (as runs/...).")
        if state.message:
            lines.append(state.message)
        return "\n\n".join(lines)

    def loss_figure(self) -> Figure | None:
        """Loss per step (and its learning rate), the live version of the paper's Figure 2."""
        if self.state is None or not self.state.history:
            return None
        steps, losses, lrs, _ = zip(*list(self.state.history))
        figure = Figure(figsize=(6, 3), layout="constrained")
        loss_axis = figure.add_subplot()
        loss_axis.plot(steps, losses, color="tab:blue", linewidth=0.8)
        trainer = self.trainer
        name = loss_name(trainer.model_config.prediction, trainer.config.min_snr_gamma) if trainer else "MSE"
        loss_axis.set(xlabel="step", ylabel=f"loss ({name})")
        lr_axis = loss_axis.twinx()
        lr_axis.plot(steps, lrs, "--", color="tab:orange")
        lr_axis.set_ylabel("learning rate", color="tab:orange")
        lr_axis.ticklabel_format(axis="y", style="sci", scilimits=(0, 0), useOffset=False)
        return figure

    def preview_file(self) -> Path | None:
        """The latest preview PNG of the run (each epoch writes a new one), once it is written."""
        preview = self.state.preview if self.state else None
        return preview if preview and preview.is_file() else None
