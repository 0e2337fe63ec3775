"""The app's default sampler is the SDE solver (issue 15: fewest noise textures at 20 steps), offered on the
Generate page and first among Compare's defaults, with the deterministic samplers beside it."""

from helpers import request

from fastdiff.app.compare import default_configs
from fastdiff.app.generate import DEFAULT_SAMPLER, SAMPLER_LABELS, run_steps, stream


def test_default_sampler_is_offered_and_runs_stochastically(store):  # noqa: F811
    assert SAMPLER_LABELS[DEFAULT_SAMPLER] == "dpm++sde"
    checked = request(store, sampler_label=DEFAULT_SAMPLER, steps=6, eta=0.7)
    assert checked.plan.sampler == "dpm++sde" and checked.plan.eta == 0.0  # eta is DDIM's alone
    loaded = store.load("cifar10-base")
    progress = list(stream(run_steps(loaded, checked, "fp32"), loaded, checked, interval=0.0))
    assert progress[-1].step.index == 5 and progress[-1].step.x_t.shape == (3, 3, 32, 32)


def test_compare_puts_the_default_beside_the_deterministic_samplers():
    configs = default_configs(["cifar10-base"])
    assert configs[0][:2] == [DEFAULT_SAMPLER, 20]
    assert {"DPM-Solver++", "DDIM"} <= {config[0] for config in configs[1:]}
