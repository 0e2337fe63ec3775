"""The app's adapter functions without a server: settings checks, frame throttling, variant choice."""

import itertools
import math
import os
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from helpers import make_tiny_checkpoint, request

from fastdiff.app import ui as app
from fastdiff.app.backend import Backend
from fastdiff.app.compare import CASCADE_CONFIG, DISTILLED_CONFIG, default_configs, quality, run_all
from fastdiff.app.generate import DISTILLED_SAMPLER, PAGE_STEPS, Request, make_request, run_steps, stream
from fastdiff.app.learn import noised, schedule_figure
from fastdiff.diffusion.cascade import Stage
from fastdiff.diffusion.sampling import Plan
from fastdiff.images import pad_to_multiple


def test_lists_shipped_checkpoints_and_runs_and_says_what_is_missing(store):
    assert store.names() == ["cifar10-base", "runs/cascade", "runs/with-attention"]
    assert f"attention variant: cifar10-attn not found in {store.checkpoints_dir}" in store.availability()
    assert "shipped yet" not in store.availability()  # not found in this folder is all the app knows
    assert "trained here: runs/cascade, runs/with-attention" in store.availability()


def test_variant_choice(store):
    assert store.resolve("cifar10-base", False, 1) == "cifar10-base"
    assert store.resolve("runs/with-attention", True, 1) == "runs/with-attention"
    with pytest.raises(ValueError, match="attention variant: cifar10-attn not found in .*checkpoints$"):
        store.resolve("cifar10-base", True, 1)
    with pytest.raises(ValueError, match="trained with attention: tick"):
        store.resolve("runs/with-attention", False, 1)
    with pytest.raises(ValueError, match="cifar10-cascade not found in .*checkpoints; use 1 stage"):
        store.resolve("cifar10-base", False, 3)
    with pytest.raises(ValueError, match="runs/with-attention is a plain model: cascade with 2 stages"):
        store.resolve("runs/with-attention", True, 2)
    assert [store.resolve("runs/cascade", False, stages) for stages in (1, 2, 3)] == ["runs/cascade"] * 3
    with pytest.raises(ValueError, match="runs/cascade was trained without attention"):
        store.resolve("runs/cascade", True, 3)
    with pytest.raises(ValueError, match="not found"):
        store.resolve("empty", False, 1)


def test_request_settings(store):
    made = request(store)
    assert made.seeds == [5, 6, 7] and made.labels.tolist() == [1, 1, 1] and made.plan.sampler == "ddim"
    assert request(store, sampler_label="DPM-Solver++", eta=0.7).plan.eta == 0.0  # eta is DDIM's alone
    for bad, message in [
        (dict(guidance=math.nan), "guidance weight must be between 0 and 10, got nan"),
        (dict(guidance=math.inf), "guidance weight must be between 0 and 10, got inf"),
        (dict(guidance=1e30), "guidance weight must be between 0 and 10, got 1e"),
        (dict(steps=2.5), "steps must be a whole number"),
        (dict(steps=math.nan), "steps must be a whole number"),
        (dict(eta=1.5), "eta must be between 0 and 1"),
        (dict(num_images=0), "number of images must be between 1 and 16"),
    ]:
        with pytest.raises(ValueError, match=message):
            request(store, **bad)


def test_stream_sends_a_bounded_number_of_frames_and_always_the_last(store):
    ticks = itertools.count()
    clock = lambda: next(ticks) * 0.01  # noqa: E731 (each step takes 10 ms of fake time)
    loaded, made = store.load("cifar10-base"), request(store, steps=50)
    sent = list(stream(run_steps(loaded, made, "fp32"), loaded, made, interval=0.1, clock=clock))
    assert 5 <= len(sent) <= 7  # 50 steps of 10 ms at <= 10 frames/s, plus the last step
    assert sent[-1].step.index == 49 and sent[-1].step.x_t.shape == (3, 3, 32, 32)
    assert sent[0].picture.shape == (2 * 34 + 2, 2 * (2 * 34 + 2) + 4, 3)


def test_a_cascade_streams_the_first_frame_of_every_stage_at_the_final_size(store):
    loaded = store.load("runs/cascade")
    made = make_request(loaded, "b", "DDIM", 10, 2.0, 0.0, 5, 2, num_stages=3)
    assert [(s.resolution, s.nfe) for s in made.plan.stages] == [(8, 5), (16, 4), (32, 5)]  # 10 plain steps, scaled
    with pytest.raises(ValueError, match="stage 1 .* needs a truncation point"):
        make_request(loaded, "b", "DDIM", 1, 2.0, 0.0, 5, 2, num_stages=3)
    # interval inf: only the throttle's exceptions are sent
    sent = list(stream(run_steps(loaded, made, "fp32"), loaded, made, interval=math.inf))
    assert [(p.step.index, p.stage) for p in sent] == [
        (0, "stage 1/3 at 8x8"),
        (5, "stage 2/3 at 16x16"),
        (9, "stage 3/3 at 32x32"),
        (13, "stage 3/3 at 32x32"),
    ]
    assert {p.picture.shape for p in sent} == {(34 + 2, 2 * (2 * 34 + 2) + 4, 3)}  # 8x8 and 16x16 enlarged


def test_quality_of_the_measured_configuration_or_labelled_with_it():
    measured = {
        "sampler": "ddim",
        "steps": 50,
        "guidance": 2.0,
        "stages": 1,
        "class_accuracy": 0.612,
        "kid": 0.0123,
        "real_vs_real": {"class_accuracy": 0.9, "kid": 0.0011, "fd": 1.0},
    }
    same = Request(Plan("ddim", 50, 2.0, 0.0, [Stage(32, "ddim", 50)]), None, [0])
    numbers = "class acc. 61.2%, KID 0.0123 (real vs real 0.0011)"
    assert quality(measured, same) == (numbers, 0.0123)
    other = Request(Plan("dpm++", 20, 2.0, 0.0, [Stage(32, "dpm++", 20)]), None, [0])
    assert quality(measured, other) == (f"measured at DDIM-50, w=2: {numbers}", None)
    assert quality({**measured, "stages": 3}, same)[0].startswith("measured at DDIM-50, w=2, 3 stages: ")
    assert quality(None, same) == quality({"results": []}, same) == ("not measured yet", None)


def test_pad_to_multiple():
    padded = pad_to_multiple(np.zeros((70, 144, 3), np.uint8))
    assert padded.shape == (80, 144, 3) and padded[75, 0, 0] == 255


def test_forward_process_picture_follows_the_schedule(store):
    schedule = store.schedule("cifar10-base")
    picture = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)  # cropped and resized
    start, caption = noised(picture, schedule, 0)
    x0, x_t = (start[16:272, 8 * left : 8 * (left + 32)].astype(int) for left in (2, 36))  # grid(scale=8) tiles
    assert np.abs(x0 - x_t).mean() < 8  # t = 0: almost no noise
    end, _ = noised(picture, schedule, schedule.num_timesteps - 1)
    assert not np.array_equal(start, end) and caption.startswith("t = 0:")
    with pytest.raises(ValueError, match="t must be between 0 and 49"):
        noised(picture, schedule, 50)
    assert len(schedule_figure(schedule, 10).axes) == 3


def test_an_app_without_checkpoints_starts_and_says_so(tmp_path):
    backend = Backend(tmp_path / "checkpoints", tmp_path / "runs", tmp_path / "data.zip", tmp_path)
    app.build_app(backend)
    assert f"base model: cifar10-base not found in {tmp_path / 'checkpoints'}" in backend.checkpoint_lists()[3]
    with pytest.raises(gr.Error, match=f"not found; available: none in {tmp_path / 'checkpoints'} or "):
        next(backend.generate(None, "random", "DDIM", 10, 2.0, False, 1, 0, 1, 0.0))
    assert backend.learn(None, 10, None)[1].startswith("Upload a picture")  # default schedule, no error


def test_the_app_takes_its_checkpoints_from_the_flag_else_the_resolution_order(tmp_path, monkeypatch, capsys):
    served = []
    monkeypatch.setattr(app, "build_app", lambda backend: backend)
    monkeypatch.setattr(app, "launch", lambda backend, host, port, web: served.append(backend.store.checkpoints_dir))
    monkeypatch.setattr(app.signal, "signal", lambda *args: None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FASTDIFF_CHECKPOINTS", str(tmp_path / "shared"))
    app.main([])
    app.main(["--checkpoints", str(tmp_path / "mine")])
    assert served == [tmp_path / "shared", tmp_path / "mine"]
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("device cpu, precision ") and "(auto" in lines[0]


def test_compare_offers_the_cascade_and_the_student_when_they_are_shipped():
    assert CASCADE_CONFIG not in default_configs(["cifar10-base"])
    assert default_configs(["cifar10-base", "cifar10-cascade"])[-1] == CASCADE_CONFIG
    both = default_configs(["cifar10-base", "cifar10-cascade", "cifar10-distilled"])
    assert len(both) == 4 and both[-2:] == [CASCADE_CONFIG, DISTILLED_CONFIG]  # the page takes four


def test_the_distilled_sampler_runs_a_student_on_its_own_grid_and_only_there(tmp_path):
    student = dict(guidance_embedding=True, distilled_steps=4, prediction="v")
    make_tiny_checkpoint(tmp_path / "checkpoints" / "cifar10-base")
    make_tiny_checkpoint(tmp_path / "checkpoints" / "cifar10-distilled", **student)
    make_tiny_checkpoint(tmp_path / "runs" / "student-2", **{**student, "distilled_steps": 2})
    backend = Backend(tmp_path / "checkpoints", tmp_path / "runs", tmp_path / "data.zip", tmp_path)
    store = backend.store
    # the shipped names lead to the shipped student; a student of one's own serves itself
    assert store.resolve("cifar10-base", False, 1, distilled=True) == "cifar10-distilled"
    assert store.resolve("runs/student-2", False, 1, distilled=True) == "runs/student-2"
    for args, message in [
        (("cifar10-distilled", False, 1), "cifar10-distilled is a distilled student: choose the distilled sampler"),
        (("cifar10-base", False, 3, True), "one stage and no attention"),
        (("cifar10-base", True, 1, True), "one stage and no attention"),
    ]:
        with pytest.raises(ValueError, match=message):
            store.resolve(*args)
    loaded = store.load("cifar10-distilled")
    settings = dict(class_name="b", guidance=3.0, eta=0.5, seed=0, num_images=2)
    plan = make_request(loaded, sampler_label=DISTILLED_SAMPLER, steps=4, **settings).plan
    assert (plan.sampler, plan.num_steps, plan.eta, plan.guidance) == ("ddim", 4, 0.0, 3.0)
    for sampler, steps, message in [
        (DISTILLED_SAMPLER, 8, "distilled for DDIM with 4 steps .*got DDIM with 8 steps"),
        ("DPM-Solver++", 4, "got DPM-Solver\\+\\+ with 4 steps"),
        ("DDIM", 4, "got DDIM with 4 steps and eta 0.5"),
    ]:
        with pytest.raises(ValueError, match=message):
            make_request(loaded, sampler_label=sampler, steps=steps, **settings)
    with pytest.raises(gr.Error, match="choose the distilled sampler"):
        next(backend.generate("cifar10-distilled", "random", "DDIM", 4, 2.0, False, 1, 0, 1, 0.0))
    frames = list(backend.generate("cifar10-base", "b", DISTILLED_SAMPLER, 4, 2.0, False, 1, 0, 2, 0.0))
    assert "`cifar10-distilled`" in frames[-1][1] and frames[-1][1].startswith("done: step 4/4")
    table = [DISTILLED_CONFIG, ["DDIM", 4, 2.0, "base", 1]]
    compared = run_all(store, "fp32", "cifar10-base", "b", 0, 2, table)
    assert [r.checkpoint for r in compared] == ["cifar10-distilled", "cifar10-base"]
    # choosing the sampler sets the student's step count; leaving it at that count restores the page's
    assert backend.sampler_steps(DISTILLED_SAMPLER, "cifar10-base", 20) == 4
    assert backend.sampler_steps(DISTILLED_SAMPLER, "runs/student-2", 20) == 2
    assert backend.sampler_steps("DDIM", "cifar10-base", 4) == PAGE_STEPS
    assert backend.sampler_steps("DDIM", "cifar10-base", 30) == gr.skip()  # left as typed


def test_the_distilled_sampler_offers_each_shipped_students_step_count(tmp_path):
    student = dict(guidance_embedding=True, prediction="v")
    make_tiny_checkpoint(tmp_path / "checkpoints" / "cifar10-base")
    for name, steps in (("cifar10-distilled", 4), ("cifar10-distilled-2", 2)):
        make_tiny_checkpoint(tmp_path / "checkpoints" / name, distilled_steps=steps, **student)
    make_tiny_checkpoint(tmp_path / "runs" / "student-1", distilled_steps=1, **student)  # not shipped
    backend = Backend(tmp_path / "checkpoints", tmp_path / "runs", tmp_path / "data.zip", tmp_path)
    store = backend.store
    assert store.students() == {2: "cifar10-distilled-2", 4: "cifar10-distilled"}
    assert store.fastest_student() == "cifar10-distilled-2"
    assert store.resolve("cifar10-base", False, 1, distilled=True) == "cifar10-distilled"
    assert store.resolve("cifar10-base", False, 1, distilled=True, steps=2) == "cifar10-distilled-2"
    with pytest.raises(ValueError, match="the distilled students shipped here run 2 or 4 steps, got 1"):
        store.resolve("cifar10-base", False, 1, distilled=True, steps=1)
    frames = list(backend.generate("cifar10-base", "b", DISTILLED_SAMPLER, 2, 2.0, False, 1, 0, 2, 0.0))
    assert "`cifar10-distilled-2`" in frames[-1][1] and frames[-1][1].startswith("done: step 2/2")
    compared = run_all(store, "fp32", "cifar10-base", "b", 0, 1, [[DISTILLED_SAMPLER, 2, 2.0, "base", 1]] * 2)
    assert [r.checkpoint for r in compared] == ["cifar10-distilled-2"] * 2
    assert backend.sampler_steps("DDIM", "cifar10-base", 2) == PAGE_STEPS


def test_the_training_preview_is_served_as_one_copy_per_version(tmp_path):
    backend = Backend(tmp_path / "checkpoints", tmp_path / "runs", tmp_path / "data.zip", tmp_path)
    assert backend.served_copy(None) is None
    preview = tmp_path / "runs" / "run-1" / "previews" / "epoch-000.png"
    preview.parent.mkdir(parents=True)
    preview.write_bytes(b"first")
    copy = backend.served_copy(preview)
    assert copy.startswith(str(backend.temp_dir)) and open(copy, "rb").read() == b"first"
    written = Path(copy).stat().st_mtime_ns
    assert backend.served_copy(preview) == copy and Path(copy).stat().st_mtime_ns == written  # not written again
    preview.write_bytes(b"second")
    os.utime(preview, ns=(written + 10**9, written + 10**9))  # a new version, even within the clock's step
    newer = backend.served_copy(preview)
    assert newer != copy and open(newer, "rb").read() == b"second"
