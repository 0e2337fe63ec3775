"""bench classroom's pieces (no timings asserted)."""

import pytest
import torch
from helpers import make_tiny_checkpoint

from fastdiff.bench.app_memory import live_round_trip, replay_round_trip
from fastdiff.bench.classroom import on_data_share, time_replay


def test_points_on_the_data_are_counted_and_far_ones_are_not():
    data = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    samples = torch.tensor([[0.05, 0.0], [1.0, 0.95], [0.5, 0.5], [3.0, 3.0]])
    assert on_data_share(samples, data) == 0.5


def test_replay_timing_draws_views_of_a_kept_run(tmp_path):
    result = time_replay(make_tiny_checkpoint(tmp_path / "base"), steps=4, moves=20)  # more moves than images
    assert result["median_ms"] > 0 and result["max_ms"] >= result["median_ms"] and result["mb"] > 0


@pytest.mark.slow  # serves the app in a fresh process
def test_the_replay_round_trip_is_timed_through_the_served_app(tmp_path):
    make_tiny_checkpoint(tmp_path / "cifar10-base")
    result = replay_round_trip(tmp_path, steps=2, num_images=2, moves=3)
    assert 0 < result["median_ms"] <= result["max_ms"]


@pytest.mark.slow  # serves the app in a fresh process
def test_the_live_updates_are_counted_through_the_served_app(tmp_path):
    make_tiny_checkpoint(tmp_path / "cifar10-distilled", guidance_embedding=True, distilled_steps=2, prediction="v")
    result = live_round_trip(tmp_path, num_images=4, changes=6, interval=0.001)  # far faster than an update
    assert result["drawn"] + result["skipped"] == 6 and result["skipped"] > 0 and result["last_drawn"]
    assert 0 < result["median_ms"] <= result["max_ms"] and result["sampling_ms"] >= 0
