"""The adapter between the Gradio page and FastDiff: one method per UI action, taking the UI controls
in the order the page shows them. It checks the input, turns every expected failure into a one-line
gr.Error (shown in the page, never a traceback) and returns pictures, text and file paths.

Files are read only from checkpoint folders found under checkpoints/ and runs/, and written only to
runs/ and the app's temp folder.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
import weakref
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import gradio as gr

from ..config import CascadeConfig, DiffusionConfig, ModelConfig, TrainConfig
from ..data import DOWNLOADABLE, IMAGE_SUFFIXES, DataError
from ..device import resolve_device, resolve_precision
from ..diffusion.frames import FRAME_INTERVAL
from ..diffusion.replay import NO_RUN, animation_frames
from ..diffusion.schedule import NoiseSchedule
from ..diffusion.trajectory import Trajectory
from ..images import grid, save_animations, save_image, to_uint8
from ..nn.checkpoint import CheckpointError, read_config
from ..train.trainer import warm_start_prediction
from .batching import SamplingQueue, in_line
from .compare import run_all, speed_figure
from .generate import DISTILLED_SAMPLER, PAGE_STEPS, make_request, serving_checkpoint, stream, whole_number
from .learn import noised, schedule_figure
from .models import ModelStore
from .train import TrainingSession

TRAIN_PRECISIONS = ("auto", "fp32", "bf16")
NO_WARM_START = "none (from scratch)"
STATE_TTL = 3600  # seconds a session's kept run, picture and 2D model live after they were last set
SESSIONS_KEPT = 64  # sessions whose state the app keeps (Gradio's state_session_capacity too): a class's pages
CANCEL_WAIT = 30  # seconds: the longest Cancel waits for a run to end its current step and close
NO_PICTURE = "Upload a picture, or press 'use the last generated image' after a generation."


@contextlib.contextmanager
def user_errors():
    """Show expected failures (bad settings, missing or damaged files) as a message in the page."""
    try:
        yield
    except (ValueError, CheckpointError, DataError) as e:
        raise gr.Error(str(e), print_exception=False) from e


@dataclass
class SamplingRun:
    """A session's latest Generate run, as far as Cancel needs it: the status it last sent to the page,
    and whether it has ended (finished, failed, or closed by Gradio when cancelled)."""

    status: str | None = ""  # None once it has ended on its own (finished or failed)
    ended: threading.Event = field(default_factory=threading.Event)


class Backend:
    def __init__(
        self, checkpoints_dir: Path, runs_dir: Path, dataset: str | Path, app_root: Path, device: str = "auto"
    ):
        """dataset: the one dataset the page may name (a path, or a name load_dataset downloads);
        app_root: where relative paths start."""
        self.device = resolve_device(device)
        self.precision = resolve_precision("auto", self.device)
        self.store = ModelStore(checkpoints_dir, runs_dir, self.device)
        self.dataset = str(dataset)
        self.app_root = Path(app_root)
        self.temp_dir = Path(tempfile.mkdtemp(prefix="fastdiff-app-"))
        weakref.finalize(self, shutil.rmtree, self.temp_dir, ignore_errors=True)  # also at exit
        self.training = TrainingSession(self.device)
        self.sampling = SamplingQueue(self.device)
        self.sampling_runs: dict[str | None, SamplingRun] = {}  # by Gradio session, the latest last
        self.sessions_lock = threading.Lock()

    # -- checkpoints ---------------------------------------------------------------------------------

    def checkpoint_lists(self) -> tuple[gr.Dropdown, gr.Dropdown, gr.Dropdown, str]:
        """The Generate, Compare and warm-start lists and the availability note as they are now."""
        names = self.store.names()
        return (
            gr.Dropdown(choices=names),
            gr.Dropdown(choices=names),
            gr.Dropdown(choices=[NO_WARM_START] + names),
            self.store.availability(),
        )

    def sampler_steps(self, sampler: str, checkpoint: str | None, steps):
        """The steps box after a sampler change: the default student's step count for the distilled
        sampler, and back to the page's first value when leaving it with a student's count; otherwise as
        the user left it."""
        try:
            student = self.store.resolve(checkpoint, False, 1, distilled=True)
            student_steps = read_config(self.store.folder(student))[0].distilled_steps
        except (ValueError, CheckpointError):
            return gr.skip()
        if sampler == DISTILLED_SAMPLER:
            return student_steps
        return PAGE_STEPS if steps in (student_steps, *self.store.students()) else gr.skip()

    def class_choices(self, checkpoint: str | None) -> gr.Dropdown:
        """The classes of a checkpoint plus "random"; only "random" when it is unknown."""
        try:
            model_config = read_config(self.store.folder(checkpoint))[0]
        except (ValueError, CheckpointError):
            return gr.Dropdown(choices=["random"], value="random")
        names = list(model_config.class_names if model_config.num_classes else ()) + ["random"]
        return gr.Dropdown(choices=names, value=names[0])

    # -- Generate ------------------------------------------------------------------------------------

    def generate(
        self,
        checkpoint,
        class_name,
        sampler,
        steps,
        guidance,
        attention,
        stages,
        seed,
        num_images,
        eta,
        session: gr.Request | None = None,
    ):
        """Yield (live frame, status, final grid, download paths, first image, run kept for replay) while
        sampling."""
        run, key = SamplingRun(), session.session_hash if session else None
        with self.sessions_lock:
            self.sampling_runs.pop(key, None)
            self.sampling_runs[key] = run
            while len(self.sampling_runs) > SESSIONS_KEPT:  # the oldest first: pages a browser never closed
                self.sampling_runs.pop(next(iter(self.sampling_runs)))
        try:
            for outputs in self._generate(
                checkpoint, class_name, sampler, steps, guidance, attention, stages, seed, num_images, eta
            ):
                run.status = outputs[1]
                yield outputs
            run.status = None
        except Exception:
            run.status = None
            raise
        finally:
            run.ended.set()

    def _generate(self, checkpoint, class_name, sampler, steps, guidance, attention, stages, seed, num_images, eta):
        with user_errors():
            num_stages = whole_number(stages, "cascade stages")
            name = serving_checkpoint(self.store, checkpoint, sampler, bool(attention), num_stages, steps)
            loaded = self.store.load(name)
            request = make_request(loaded, class_name, sampler, steps, guidance, eta, seed, num_images, num_stages)
        job, progress = self.sampling.submit(loaded, request, self.precision), None
        try:
            for place in self.sampling.wait(job):
                yield None, f"{in_line(place)} · `{name}`", None, None, gr.skip(), gr.skip()
            trajectory = Trajectory(loaded.schedule, len(request.plan.stages))
            yield None, f"sampling with `{name}`...", None, None, gr.skip(), gr.skip()
            # the live frames of all the pages together, at most 1 / FRAME_INTERVAL a second: fewer each under load
            interval = FRAME_INTERVAL * max(1, self.sampling.running_jobs())
            for progress in stream(job.results(), loaded, request, trajectory, interval=interval):
                stage = f"{progress.stage} · " if progress.stage else ""
                status = (
                    f"step {progress.step.index + 1}/{progress.step.num_steps} · {stage}{progress.seconds:.1f} s · "
                    f"{progress.images_per_sec:.2f} images/s · `{name}`, {request.plan.sampler}"
                )
                yield progress.picture, status, gr.skip(), gr.skip(), gr.skip(), gr.skip()
        finally:
            self.sampling.cancel(job)  # out of line if still waiting; nothing once it has finished
        images, first_image = progress.step.x_t, to_uint8(progress.step.x_t[:1])[0]
        # Gradio copies the files into its cache before it asks for more; then the folder goes.
        with tempfile.TemporaryDirectory(dir=self.temp_dir) as folder:
            png, picture, final = (Path(folder) / name for name in ("samples.png", "last-frame.bmp", "grid.png"))
            save_image(grid(images), png)
            # The last frame and the final grid go to the page as files: Gradio copies a file into its cache
            # once, but writes an array again, over the copy it may still be sending.
            save_image(progress.picture, picture)
            save_image(grid(images, scale=4), final)
            yield str(picture), f"done: {status}", str(final), [str(png)], first_image, trajectory

    def animations(self, trajectory: Trajectory | None):
        """The GIF and MP4 of the session's latest run, made from the run kept for replay when asked for:
        (files, note)."""
        if trajectory is None or not trajectory.steps:
            raise gr.Error(NO_RUN, print_exception=False)
        with tempfile.TemporaryDirectory(dir=self.temp_dir) as folder:
            paths, note = save_animations(animation_frames(trajectory), Path(folder))
            yield [str(path) for path in paths], note

    def cancelled(self, session: gr.Request | None = None):
        """The status after Cancel: where the session's run stopped. Gradio stops the run once its current
        step ends; waiting for that puts this message after the run's last frame in the page."""
        run = self.sampling_runs.get(session.session_hash if session else None)
        if run is None:
            return gr.skip()
        run.ended.wait(CANCEL_WAIT)
        if run.status is None or run.status.startswith("done"):
            return gr.skip()
        if run.status.startswith("step "):
            return f"cancelled at {run.status}"
        if " in line" in run.status:
            return "cancelled while waiting in line"
        return "cancelled before the first step"

    def forget(self, session: gr.Request | None = None) -> None:
        """Drop what the app keeps of a session whose page has closed."""
        with self.sessions_lock:
            self.sampling_runs.pop(session.session_hash if session else None, None)

    # -- Compare -------------------------------------------------------------------------------------

    def compare(self, checkpoint, class_name, seed, num_images, table):
        """Return (captioned grids, results table rows, speed plot) for 2-4 configurations."""
        with user_errors():
            results = run_all(self.store, self.precision, checkpoint, class_name, seed, num_images, table)
        grids = [(grid(r.images, scale=2), f"{i}: {r.configuration}, {r.checkpoint}") for i, r in enumerate(results, 1)]
        return grids, [r.row(i) for i, r in enumerate(results, 1)], speed_figure(results)

    # -- Train ---------------------------------------------------------------------------------------

    def dataset_path(self, text: str, upload: str | None) -> Path:
        """An uploaded .zip of class folders, or the app's one dataset; no other path is read."""
        if upload:
            path = Path(upload)
            if not zipfile.is_zipfile(path):
                raise ValueError(f"the uploaded file {path.name} is not a .zip file")
            try:
                with zipfile.ZipFile(path) as archive:
                    names = archive.namelist()
            except zipfile.BadZipFile as e:
                raise ValueError(f"the uploaded file {path.name} is not a readable .zip file ({e})") from e
            if not any(
                len(PurePosixPath(n).parts) >= 2 and PurePosixPath(n).suffix.lower() in IMAGE_SUFFIXES for n in names
            ):
                raise ValueError(
                    f"the uploaded {path.name} has no images in class folders (expected CLASS/IMAGE.png inside the zip)"
                )
            return path
        path = (self.app_root / (text or "").strip()).resolve()
        allowed = (self.app_root / self.dataset).resolve()
        if path != allowed:
            raise ValueError(f"dataset: use {self.dataset} or upload a .zip of class folders; other paths are not read")
        if self.dataset in DOWNLOADABLE:
            return Path(self.dataset)
        if not path.is_file():
            raise ValueError(f"{path}: not found; upload a .zip of class folders instead")
        return path

    def start_training(
        self,
        dataset_text,
        upload=None,
        epochs=TrainConfig.epochs,
        batch_size=TrainConfig.batch_size,
        precision="auto",
        attention=False,
        cascade=False,
        warm_start=NO_WARM_START,
        freeze_base=False,
    ):
        """Start a background run; returns its status. The defaults are the page's, so
        that API callers may leave out the upload and what follows it."""
        with user_errors():
            dataset = self.dataset_path(dataset_text, upload)
            epochs, batch_size = whole_number(epochs, "epochs"), whole_number(batch_size, "batch size")
            if not 1 <= epochs <= 1000 or not 1 <= batch_size <= 1024:
                raise ValueError("epochs must be between 1 and 1000 and batch size between 1 and 1024")
            if precision not in TRAIN_PRECISIONS:
                raise ValueError(f"precision must be one of {', '.join(TRAIN_PRECISIONS)}, got {precision!r}")
            init, n_feat = None, ModelConfig.n_feat
            if warm_start and warm_start != NO_WARM_START:
                init = self.store.folder(warm_start)
                init_config = read_config(init)[0]
                if init_config.attention != bool(attention):
                    raise ValueError(
                        f"warm start: {warm_start} has attention {'on' if init_config.attention else 'off'}; "
                        f"set the attention switch to match"
                    )
                if self.store.is_cascade(warm_start) and not cascade:
                    raise ValueError(f"warm start: {warm_start} is a cascade; tick 'cascade' to continue it")
                n_feat = init_config.n_feat
            model_config = ModelConfig(n_feat=n_feat, attention=bool(attention), prediction=warm_start_prediction(init))
            if freeze_base and (init is None or not cascade):
                raise ValueError(
                    "keeping the base fixed trains only a cascade's added layers: tick 'cascade' "
                    "and pick a checkpoint to warm-start from"
                )
            name = (
                time.strftime("%Y%m%d-%H%M%S") + ("-attn" if attention else "-base") + ("-cascade" if cascade else "")
            )
            train_config = TrainConfig(
                epochs=epochs, batch_size=batch_size, precision=precision, freeze_base=bool(freeze_base)
            )
            self.training.start(
                dataset,
                self.store.runs_dir / name,
                train_config,
                model_config,
                init,
                CascadeConfig() if cascade else None,
            )
        return self.training.summary()

    def training_status(self):
        """(status, loss plot, preview, timer, checkpoint lists x3, availability); the lists are
        refreshed when no run is going on (a run that ended has become a checkpoint)."""
        running = self.training.running
        lists = (gr.skip(),) * 4 if running else self.checkpoint_lists()
        return (
            self.training.summary(),
            self.training.loss_figure(),
            self.served_copy(self.training.preview_file()),
            gr.Timer(active=running),
            *lists,
        )

    def served_copy(self, path: Path | None) -> str | None:
        """A copy of a run's file in the app's temp folder, which Gradio serves from, made once per
        version of the file. The page polls the training preview: as the same file each time, Gradio
        copies it into its cache once; an array it would encode and write again at every poll, over the
        copy it may still be sending."""
        if path is None:
            return None
        version = path.stat().st_mtime_ns
        copy = self.temp_dir / "served" / f"{path.parent.parent.name}-{path.stem}-{version}{path.suffix}"
        if not copy.exists():
            copy.parent.mkdir(exist_ok=True)
            staging = copy.with_name(f".{copy.name}")
            shutil.copyfile(path, staging)
            staging.replace(copy)  # a poll never sees a partial copy
        return str(copy)

    def stop_training(self) -> str:
        if not self.training.request_stop():
            return "No training is running."
        return "Stopping at the next step; a checkpoint will be written."

    # -- Learn ---------------------------------------------------------------------------------------

    @staticmethod
    def use_last_image(image):
        """(Learn's picture, caption) for 'use the last generated image'."""
        if image is None:
            return gr.skip(), "No image generated yet: press Generate first, or upload a picture."
        return image, gr.skip()

    def learn(self, picture, t, checkpoint):
        """(x_0 | x_t picture, caption, schedule plot) for the schedule of the chosen checkpoint."""
        with user_errors():
            schedule = self.store.schedule(checkpoint) if checkpoint else NoiseSchedule(DiffusionConfig())
            t = whole_number(t, "t")
            if picture is None:
                return None, NO_PICTURE, schedule_figure(schedule, t)
            image, caption = noised(picture, schedule, t)
        return image, caption, schedule_figure(schedule, t)
