"""bench profile's op breakdown (no timings asserted)."""

from fastdiff.bench.profile import kind_of, op_shares
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
