"""The benchmark's pieces (no timings are asserted: speed is measured by `python -m fastdiff bench`)."""
import torch

from fastdiff.baseline import BaselineConfig, BaselineUNet
from fastdiff.bench import forward_gflops, markdown_table, quality
from fastdiff.config import ModelConfig
from fastdiff.unet import UNet


def test_baseline_has_the_ddpm_cifar10_size():
    model = BaselineUNet()
    assert abs(sum(p.numel() for p in model.parameters()) - 35.7e6) < 0.1e6


def test_small_baseline_forward_shape():
    model = BaselineUNet(BaselineConfig(ch=32))
    x = torch.randn(2, 3, 32, 32)
    assert model(x, torch.tensor([3, 4]), torch.tensor([1, 2])).shape == x.shape
    assert model(x, torch.tensor([3, 4])).shape == x.shape


def test_flop_count_grows_with_width_and_attention():
    small, wide = forward_gflops(UNet(ModelConfig(n_feat=16))), forward_gflops(UNet(ModelConfig(n_feat=32)))
    assert 3.5 < wide / small < 4.5  # convolutions dominate: FLOPs ~ width^2
    assert forward_gflops(UNet(ModelConfig(n_feat=16, attention=True))) > small


def test_markdown_table_and_missing_quality(tmp_path):
    assert markdown_table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |"
    assert quality(tmp_path) == ("not measured", "not measured")
