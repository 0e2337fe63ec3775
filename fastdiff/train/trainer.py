"""Training: the paper's recipe (Adam, cosine learning rate, 10% label dropout, AMP), EMA weights,
atomic per-epoch checkpoints, exact resume, previews, and an event stream for UIs.

Randomness is a pure function of (seed, epoch) for the data order and (seed, rank, step) for noise,
timesteps and label dropout, so a resumed run repeats an uninterrupted one exactly. Runs the same
under `torchrun` with DistributedDataParallel; only rank 0 writes files.

On CUDA the step never waits for the GPU: the images live on the device, noise is drawn there, the
fused Adam skips the update of a non-finite loss by itself, and the losses are read on the host every
SYNC_EVERY steps, where the warnings and the max_bad_steps stop happen. On the CPU, where reading a
loss costs nothing, every step is read at once.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..config import (
    TRAINING_PREDICTION,
    CascadeConfig,
    DiffusionConfig,
    ModelConfig,
    TrainConfig,
    from_dict,
    to_dict,
)
from ..data import ImageDataset
from ..device import autocast, device_name, peak_resident_mb, resolve_device, resolve_precision, setup_backends
from ..diffusion.losses import cascade_loss, diffusion_loss
from ..diffusion.sampling import is_frame, make_plan, sample_steps
from ..diffusion.schedule import NoiseSchedule
from ..images import grid, save_animation, save_image
from ..nn import checkpoint as ckpt
from ..nn.cascade import CascadeUNet, build_model
from ..nn.unet import UNet

STATE_NAME = "training_state.safetensors"
LOG_NAME = "log.jsonl"
SYNC_EVERY = 25  # CUDA: steps between reads of the losses on the host (step events come in such bursts)


@dataclass
class TrainEvent:
    kind: str  # "step", "epoch", "preview", "checkpoint", "warning", "done"
    epoch: int
    step: int
    data: dict = field(default_factory=dict)


class EMA:
    """Exponential moving average of the weights, decay ramped as min(decay, (1 + n) / (10 + n))."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, num_updates: int, finite: torch.Tensor | None = None) -> None:
        """finite: a 0-dim bool tensor; False leaves the average as it is (the step was skipped) without
        the host reading it."""
        decay = min(self.decay, (1 + num_updates) / (10 + num_updates))
        averaged, current = [], []
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                averaged.append(self.shadow[k])
                current.append(v.float())
            else:
                self.shadow[k].copy_(v)
        if finite is None:
            torch._foreach_lerp_(averaged, current, 1 - decay)
        else:  # shadow += finite * (1 - decay) * (v - shadow)
            step = torch._foreach_sub(current, averaged)
            torch._foreach_mul_(step, finite * (1 - decay))
            torch._foreach_add_(averaged, step)


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """Linear warm-up, then cosine annealing from lr to lr_min over the run."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps))
    return config.lr_min + 0.5 * (config.lr - config.lr_min) * (1 + math.cos(math.pi * progress))


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return peak_resident_mb()


class Trainer:
    def __init__(
        self,
        dataset: ImageDataset,
        out_dir: Path,
        train_config: TrainConfig = TrainConfig(),
        model_config: ModelConfig | None = None,
        diffusion_config: DiffusionConfig = DiffusionConfig(),
        device: torch.device = torch.device("cpu"),
        init: Path | None = None,
        resume: bool = False,
        on_event: Callable[[TrainEvent], None] | None = None,
        cascade_config: CascadeConfig | None = None,
        model: torch.nn.Module | None = None,
        quality_probe: Callable[[torch.nn.Module, NoiseSchedule], dict] | None = None,
    ):
        """model_config: width, attention and image size; channels and classes come from the dataset.
        cascade_config: train a LowDiff cascade (cascade.py) with cascade_loss instead of a plain UNet.
        model: a prebuilt network to train instead (the benchmarks' baseline U-Net).
        quality_probe: scores the EMA model every train_config.eval_every epochs (evaluate.QualityProbe);
        its numbers go into the epoch's log line."""
        self.dataset, self.out_dir, self.config, self.device = dataset.to(device), Path(out_dir), train_config, device
        self.quality_probe = quality_probe
        self.on_event = on_event or (lambda event: None)
        self.stop_requested = False
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.world_size = dist.get_world_size() if dist.is_initialized() else 1
        if train_config.batch_size % self.world_size:
            raise ValueError(f"batch size {train_config.batch_size} is not divisible by {self.world_size} processes")
        if train_config.batch_size > len(dataset):
            raise ValueError(f"batch size {train_config.batch_size} is larger than the dataset ({len(dataset)} images)")
        self.precision = resolve_precision(train_config.precision, device)
        setup_backends(device)
        base = model_config or ModelConfig()
        self.model_config = from_dict(
            ModelConfig,
            {
                **to_dict(base),
                "image_channels": dataset.images.shape[1],
                "image_size": dataset.images.shape[2],
                "num_classes": len(dataset.class_names),
                "class_names": dataset.class_names,
            },
        )
        if diffusion_config.zero_terminal_snr and self.model_config.prediction == "eps":
            raise ValueError(
                "a zero-terminal-SNR schedule needs a v- or x0-predicting network: the noise at the last "
                "timestep is the input itself, and x0 cannot be recovered from it"
            )
        self.diffusion_config, self.cascade_config = diffusion_config, cascade_config
        self.loss = functools.partial(
            diffusion_loss if cascade_config is None else cascade_loss, min_snr_gamma=train_config.min_snr_gamma
        )
        self.schedule = NoiseSchedule(diffusion_config, device)
        torch.manual_seed(train_config.seed)
        self.model = (model or build_model(self.model_config, cascade_config)).to(device)
        self.fused = device.type == "cuda"  # fused Adam, channels-last batches, losses read every SYNC_EVERY steps
        if self.fused:
            self.model.to(memory_format=torch.channels_last)
        self.warm_start: dict | None = None  # the checkpoint this run started from, and what it had seen
        if init is not None:
            self._warm_start(Path(init))
        if train_config.freeze_base:
            self._freeze_base(started_from_weights=init is not None or resume)
        self.ema = EMA(self.model, train_config.ema_decay)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=train_config.lr, fused=self.fused or None)
        self.noise_generator = torch.Generator(device)  # reseeded every step
        self.sync_every = SYNC_EVERY if self.fused else 1
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.precision == "fp16")
        self.steps_per_epoch = len(dataset) // train_config.batch_size
        self.total_steps = self.steps_per_epoch * train_config.epochs
        self.step = 0
        self.losses: list[float] = []  # mean loss per epoch (and of the part epoch, on a stop)
        if resume:
            self._load_state()
        self.ddp_model = torch.nn.parallel.DistributedDataParallel(self.model) if self.world_size > 1 else self.model

    def _warm_start(self, init: Path) -> None:
        """Start from a checkpoint's weights. A smaller model warm-starts a larger one: a plain
        checkpoint starts a cascade's full-size path or the attention variant; the added layers keep
        their initialisation, under which they start as the identity (see unet.py). The weights may
        also start a network of another parameterization (an eps model a v model), which then learns
        its new output."""
        init_model, _, init_training = ckpt.load_model(init)
        init_cascade = getattr(init_model, "cascade", None)
        adds_attention = self.model_config.attention and not init_model.config.attention
        changed = {name: getattr(self.model_config, name) for name in ("attention", "prediction")}
        config = from_dict(ModelConfig, {**to_dict(init_model.config), **changed})
        if config != self.model_config or init_cascade not in (None, self.cascade_config):
            raise ValueError(
                f"{init}: its model config does not match this run's ({init_model.config} vs {self.model_config})"
            )
        if init_model.config.attention and not self.model_config.attention:
            raise ValueError(f"{init}: has attention layers; train with --attention to start from it")
        strict = init_cascade == self.cascade_config and not adds_attention
        self.model.load_state_dict(init_model.state_dict(), strict=strict)
        self.warm_start = {"checkpoint": str(init), "images_seen": ckpt.images_seen_total(init_training)}

    def _freeze_base(self, started_from_weights: bool) -> None:
        """Stop gradients to every weight the plain U-Net has, so that only the added layers train
        (they start at zero, so the run starts as the warm-start model and its base path stays it)."""
        if not started_from_weights:
            raise ValueError("freezing the base keeps its weights fixed, so it needs a warm start (--init)")
        plain = UNet(from_dict(ModelConfig, {**to_dict(self.model_config), "attention": False})).state_dict()
        if all(name in plain for name, _ in self.model.named_parameters()):
            raise ValueError(
                "freezing the base leaves nothing to train: only a cascade (--cascade) or the "
                "attention variant (--attention) adds layers to the plain U-Net"
            )
        for name, parameter in self.model.named_parameters():
            parameter.requires_grad_(name not in plain)
        if isinstance(self.model, CascadeUNet):
            self.model.keep_full_size_embedding()

    # -- state ---------------------------------------------------------------------------------------

    def _save_state(self) -> None:
        """Resume state in one file, then the shippable EMA checkpoint beside it (rank 0 only)."""
        if self.rank:
            return
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors |= {f"ema.{k}": v for k, v in self.ema.shadow.items()}
        optimizer_state = self.optimizer.state_dict()
        for index, state in optimizer_state["state"].items():
            tensors |= {f"optim.{index}.{k}": v if torch.is_tensor(v) else torch.tensor(v) for k, v in state.items()}
        meta = {
            "step": self.step,
            "losses": self.losses,
            "scaler": self.scaler.state_dict(),
            "param_groups": optimizer_state["param_groups"],
            "train": to_dict(self.config),
            "model": to_dict(self.model_config),
            "diffusion": to_dict(self.diffusion_config),
            "warm_start": self.warm_start,
        }
        if self.cascade_config is not None:
            meta["cascade"] = to_dict(self.cascade_config)
        ckpt.save_tensors(self.out_dir / STATE_NAME, tensors, meta)
        ckpt.save_model(
            self.out_dir,
            self.ema.shadow,
            self.model_config,
            self.diffusion_config,
            self.metadata(),
            cascade_config=self.cascade_config,
        )
        self.on_event(TrainEvent("checkpoint", self.epoch, self.step, {"path": str(self.out_dir)}))

    def _load_state(self) -> None:
        path = self.out_dir / STATE_NAME
        tensors, meta = ckpt.load_tensors(path, self.device)
        if meta["model"] != json.loads(json.dumps(to_dict(self.model_config))):
            raise ckpt.CheckpointError(f"{path}: was trained with another model config: {meta['model']}")
        cascade = self.cascade_config and json.loads(json.dumps(to_dict(self.cascade_config)))
        if meta.get("cascade") != cascade:
            raise ckpt.CheckpointError(f"{path}: was trained with another cascade config: {meta.get('cascade')}")
        ckpt.load_state_into(self.model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, path)
        self.ema.shadow = {k[4:]: v.float() for k, v in tensors.items() if k.startswith("ema.")}
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                state.setdefault(int(index), {})[name] = value
        groups = [group | {"fused": self.fused or None} for group in meta["param_groups"]]  # this device's Adam
        self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        self.scaler.load_state_dict(meta["scaler"])
        self.step, self.losses = meta["step"], meta["losses"]
        self.warm_start = meta.get("warm_start", self.warm_start)

    def metadata(self) -> dict:
        return {
            "epochs": self.step / self.steps_per_epoch,
            "steps": self.step,
            "world_size": self.world_size,
            "images_seen": self.step * self.config.batch_size,
            "precision": self.precision,
            "device": self.device.type,
            "machine": device_name(self.device),
            "config": to_dict(self.config),
            **({"warm_start": self.warm_start} if self.warm_start else {}),
        }

    @property
    def epoch(self) -> int:
        return self.step // self.steps_per_epoch

    def request_stop(self) -> None:
        """End the run at the next step, with a checkpoint written."""
        self.stop_requested = True

    # -- loop ----------------------------------------------------------------------------------------

    def train_step(self, x0: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One optimizer step; returns the loss (0-dim, on the device). A non-finite loss skips the
        update: on the CPU by reading it, on CUDA inside the fused Adam without waiting for the GPU."""
        lr = learning_rate(self.config, self.step, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.noise_generator.manual_seed(self.config.seed * 2**40 + self.rank * 2**32 + self.step)
        memory_format = torch.channels_last if self.fused else torch.preserve_format
        with autocast(self.device, self.precision):
            loss = self.loss(
                self.ddp_model,
                self.schedule,
                x0.to(self.device, memory_format=memory_format),
                labels.to(self.device),
                self.noise_generator,
                self.config.label_dropout,
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        finite = torch.isfinite(loss.detach())
        if self.world_size > 1:  # every process skips together, or DDP's all-reduce would hang
            finite = finite.float()
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
            finite = finite.bool()
        if not self.fused and not finite:
            return loss.detach()
        self.scaler.scale(loss).backward()
        if self.config.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if self.fused and not self.scaler.is_enabled():
            # What GradScaler does for fused optimizers: the kernels leave weights and moments as they
            # are where found_inf is 1.
            self.optimizer.found_inf = (~finite).float()
            self.optimizer.step()
            del self.optimizer.found_inf
        else:
            self.scaler.step(self.optimizer)  # fp16: skipped on overflowing gradients (a NaN loss makes them)
        self.scaler.update()
        self.ema.update(self.model, self.step, finite if self.fused else None)
        return loss.detach()

    def run(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        bad_steps = 0
        while self.step < self.total_steps and not self.stop_requested:
            epoch, skip = divmod(self.step, self.steps_per_epoch)
            data_order = torch.Generator().manual_seed(self.config.seed * 2**32 + epoch)
            batches = self.dataset.batches(self.config.batch_size, data_order, self.rank, self.world_size)
            losses, unread, start = [], [], time.perf_counter()
            for i, (x0, labels) in enumerate(batches):
                if i < skip:
                    continue  # resumed mid-epoch: the same order, past the batches already trained on
                loss = self.train_step(x0, labels)
                unread.append((self.step, self.optimizer.param_groups[0]["lr"], loss))
                epoch_done = self.step % self.steps_per_epoch == 0
                if len(unread) >= self.sync_every or epoch_done or self.stop_requested:
                    bad_steps = self._read_losses(epoch, unread, losses, bad_steps)
                    unread = []
                if self.stop_requested or epoch_done:
                    break
            self._end_epoch(epoch, losses, time.perf_counter() - start)
        self.on_event(TrainEvent("done", self.epoch, self.step, {"stopped": self.stop_requested}))

    def _read_losses(self, epoch: int, unread: list, losses: list[float], bad_steps: int) -> int:
        """Read the losses of the steps since the last read (one wait for the device), in order: a step
        event for each finite one, a warning for each skipped one, and the stop after max_bad_steps
        skipped steps in a row. Returns the count of skipped steps in a row so far."""
        values = torch.stack([loss for _, _, loss in unread]).tolist()
        for (step, lr, _), loss in zip(unread, values):
            if not math.isfinite(loss):
                bad_steps += 1
                message = f"non-finite loss at step {step}: step skipped"
                self.on_event(TrainEvent("warning", epoch, step, {"message": message}))
                if bad_steps >= self.config.max_bad_steps:
                    self._save_state()
                    raise FloatingPointError(
                        f"{bad_steps} non-finite losses in a row at step {step}: stopping "
                        f"(try --precision fp32 or a lower lr)"
                    )
                continue
            bad_steps = 0
            losses.append(loss)
            self.on_event(TrainEvent("step", epoch, step, {"loss": loss, "lr": lr, "total_steps": self.total_steps}))
        return bad_steps

    def _end_epoch(self, epoch: int, losses: list[float], seconds: float) -> None:
        """Checkpoint and log after an epoch, or the part of one that a stop request ended."""
        self._save_state()
        if losses:
            self.losses.append(sum(losses) / len(losses))
            record = {
                "epoch": epoch + 1,
                "step": self.step,
                "loss": self.losses[-1],
                "lr": self.optimizer.param_groups[0]["lr"],
                "images_per_sec": len(losses) * self.config.batch_size / seconds,
                "peak_memory_mb": peak_memory_mb(self.device),
                "seconds": seconds,
            }
            if self.quality_probe and self._due(self.config.eval_every):
                record |= self.quality_probe(self.ema_model(), self.schedule)
            if self.rank == 0:
                with open(self.out_dir / LOG_NAME, "a") as f:
                    f.write(json.dumps(record) + "\n")
            self.on_event(TrainEvent("epoch", epoch, self.step, record))
        if self._due(self.config.preview_every):
            self.on_event(TrainEvent("preview", epoch, self.step, {"path": str(self.preview())}))

    def _due(self, every: int) -> bool:
        """Whether an every-N-epochs task (preview, quality probe) runs now: on rank 0, at the end of
        every N-th epoch and of the last one."""
        finished_epoch = self.step % self.steps_per_epoch == 0
        return (
            self.rank == 0
            and finished_epoch
            and every > 0
            and (self.epoch % every == 0 or self.step == self.total_steps)
        )

    # -- outputs -------------------------------------------------------------------------------------

    def ema_model(self) -> UNet:
        model = build_model(self.model_config, self.cascade_config).to(self.device, memory_format=torch.channels_last)
        model.eval()
        model.load_state_dict(self.ema.shadow)
        return model

    def preview(self, num_frames: int = 10) -> Path:
        """A denoising sequence, noise to image, for a few classes: a strip PNG and a GIF. A cascade
        shows all its stages, the low-resolution frames enlarged."""
        classes = list(range(min(4, self.model_config.num_classes)))
        labels = torch.tensor(classes, device=self.device) if classes else None
        seeds, size = list(range(max(1, len(classes)))), self.model_config.image_size
        model = self.ema_model()
        stages = len(self.cascade_config.resolutions) if self.cascade_config else 1
        plan = make_plan(model, self.schedule, "ddim", 50, stages=stages)
        frames = [
            F.interpolate(step.x0, size=(size, size))
            for step in sample_steps(model, self.schedule, labels, seeds, plan, self.precision)
            if is_frame(step, num_frames)
        ]
        columns = torch.stack(frames, dim=1).flatten(0, 1)  # row per class, column per moment
        base = self.out_dir / "previews" / f"epoch-{self.epoch:03d}"
        save_image(grid(columns, columns=len(frames), scale=2), base.with_suffix(".png"))
        save_animation([grid(f, scale=4) for f in frames], base.with_suffix(".gif"))
        return base.with_suffix(".png")


def warm_start_prediction(init: Path | None) -> str:
    """The parameterization a run trains when none is asked for: its warm start's, so that continuing a
    checkpoint keeps what it predicts, else TRAINING_PREDICTION."""
    return ckpt.read_config(init)[0].prediction if init is not None else TRAINING_PREDICTION


RUN_FILES = (ckpt.WEIGHTS_NAME, ckpt.CONFIG_NAME, STATE_NAME, LOG_NAME, "loss.png", "previews")


def run_files(run_dir: Path) -> list[Path]:
    """The files of a training run found in run_dir."""
    return [Path(run_dir) / name for name in RUN_FILES if (Path(run_dir) / name).exists()]


def clear_run(run_dir: Path) -> None:
    """Remove a run's files from run_dir (nothing else in it), so that a new run starts there."""
    for path in run_files(run_dir):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def loss_name(prediction: str, min_snr_gamma: float) -> str:
    """What a training loss measures: the MSE of the network's target, and its weighting."""
    return f"MSE of {prediction}" + (f", Min-SNR-{min_snr_gamma:g}" if min_snr_gamma else "")


def objective(run_dir: Path) -> str:
    """What a run's loss measures (loss_name), from its config.json."""
    if not (Path(run_dir) / ckpt.CONFIG_NAME).is_file():
        return "MSE"
    model_config, _, training = ckpt.read_config(run_dir)
    return loss_name(model_config.prediction, training.get("config", {}).get("min_snr_gamma", 0))


def plot_run(run_dir: Path) -> Path:
    """The loss and learning-rate curves (the paper's Figure 2) from a run's log.jsonl, as loss.png,
    and beside them the quality probe's KID and class accuracy when the run measured them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    log = Path(run_dir) / LOG_NAME
    if not log.is_file():
        raise ValueError(f"{log}: no training log to plot")
    records = [json.loads(line) for line in open(log)]
    probed = [r for r in records if "kid" in r]
    fig, axes = plt.subplots(1, 2 if probed else 1, figsize=(11 if probed else 6, 3.5), squeeze=False)
    loss_axis = axes[0, 0]
    epochs = [r["epoch"] for r in records]
    loss_axis.plot(epochs, [r["loss"] for r in records], "o-", color="tab:blue")
    loss_axis.set(xlabel="epoch", ylabel=f"training loss ({objective(run_dir)})")
    lr_axis = loss_axis.twinx()
    lr_axis.plot(epochs, [r["lr"] for r in records], "--", color="tab:orange")
    lr_axis.set_ylabel("learning rate", color="tab:orange")
    lr_axis.ticklabel_format(axis="y", style="sci", scilimits=(0, 0), useOffset=False)
    if probed:
        kid_axis = axes[0, 1]
        epochs = [r["epoch"] for r in probed]
        kid_axis.plot(epochs, [r["kid"] for r in probed], "o-", color="tab:red")
        kid_axis.set(xlabel="epoch", ylabel=f"KID (n={probed[-1]['eval_n']}, DDIM-50, w=2)")
        accuracy_axis = kid_axis.twinx()
        accuracy_axis.plot(epochs, [100 * r["class_accuracy"] for r in probed], "s--", color="tab:green")
        accuracy_axis.set_ylabel("class accuracy (%)", color="tab:green")
    fig.tight_layout()
    path = Path(run_dir) / "loss.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def setup_distributed(device_name: str = "auto") -> torch.device | None:
    """Join the process group when started by torchrun; returns this process's device, else None.
    On CUDA (the --device default where there is a GPU) each process takes the GPU of its local rank
    and they talk over NCCL; with --device cpu they run on the CPU over gloo."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    if resolve_device(device_name).type == "cuda":
        local_rank, processes = int(os.environ["LOCAL_RANK"]), int(os.environ["LOCAL_WORLD_SIZE"])
        if processes > torch.cuda.device_count():
            raise ValueError(
                f"{processes} processes per machine, but it has {torch.cuda.device_count()} GPU(s): start at most "
                f"that many (torchrun --nproc_per_node), or train on the CPU with --device cpu"
            )
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
        return torch.device("cuda", local_rank)
    dist.init_process_group("gloo")
    warnings.filterwarnings("ignore", message=".*gloo.*")
    return torch.device("cpu")
