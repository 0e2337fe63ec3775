"""bench profile's op breakdown (no timings asserted)."""

import torch

from fastdiff.bench import profile
from fastdiff.bench.profile import convolution_seconds, kind_of, op_shares
from fastdiff.config import ModelConfig
from fastdiff.nn.unet import UNet


def test_ops_are_grouped_into_the_kinds_the_table_reports():
    assert kind_of("aten::mkldnn_convolution") == "convolution" and kind_of("aten::native_group_norm") == "GroupNorm"
    assert kind_of("aten::silu_") == "SiLU" and kind_of("aten::_to_copy") == "copy / dtype conversion"
    assert kind_of("aten::upsample_nearest2d") == "cat, linear, upsample" and kind_of("aten::mul") == "other"


def test_shares_of_a_forward_pass_add_up_and_convolutions_take_part():
    model = UNet(ModelConfig(n_feat=8)).eval()
    shares = op_shares(model, batch=2, precision="fp32", repeats=2)
    assert abs(sum(shares.values()) - 1) < 1e-6 and shares["convolution"] > 0 and shares["GroupNorm"] > 0
    assert list(shares.values()) == sorted(shares.values(), reverse=True)


def test_convolutions_alone_run_each_layer_once_on_the_input_it_got(monkeypatch):
    model = UNet(ModelConfig(n_feat=8)).eval()
    timed = []
    monkeypatch.setattr(profile, "fastest", lambda run, device, repeats: timed.append(run()) or 1.0)
    convolutions = [module for module in model.modules() if isinstance(module, torch.nn.Conv2d)]
    assert convolution_seconds(model, batch=2, precision="fp32") == len(timed) == len(convolutions) == 19
    assert timed[0].shape == (2, 8, 32, 32) and timed[-1].shape == (4, 3, 32, 32)  # conv_in once per image
    assert not any(module._forward_pre_hooks for module in convolutions)
