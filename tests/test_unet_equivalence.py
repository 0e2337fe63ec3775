"""The U-Net's fused, in-place forward pass computes what the textbook ops compute: GroupNorm, then
SiLU, then the convolution, with the embedding and the residual added out of place. Outputs and
gradients are compared on tiny models in fp32 (to round-off) and under bf16 autocast (no worse than the
textbook ops' own bf16 error, with a margin of 2)."""

import contextlib
import copy

import pytest
import torch
import torch.nn.functional as F

from fastdiff.config import CascadeConfig, ModelConfig
from fastdiff.nn.cascade import CascadeUNet
from fastdiff.nn.unet import NormActConv, ResBlock, UNet

CLASSES = ("a", "b", "c")


def textbook_resblock(self, x, emb):
    h = self.conv1(F.silu(self.norm1(x)))
    h = h + self.emb_proj(emb)[:, :, None, None]
    h = self.conv2(F.silu(self.norm2(h)))
    return h + self.skip(x)


def textbook_norm_act_conv(self, x):
    norm, act, conv = self
    return conv(act(norm(x)))


@contextlib.contextmanager
def textbook_ops():
    """Run the network with the textbook forward passes of its fused blocks."""
    fused = ResBlock.forward, NormActConv.forward
    ResBlock.forward, NormActConv.forward = textbook_resblock, textbook_norm_act_conv
    try:
        yield
    finally:
        ResBlock.forward, NormActConv.forward = fused


def tiny(attention=False, cascade=False):
    torch.manual_seed(0)
    config = ModelConfig(
        n_feat=8, image_size=16, num_classes=3, attention=attention, attention_heads=2, class_names=CLASSES
    )
    model = CascadeUNet(config, CascadeConfig((4, 8, 16))) if cascade else UNet(config)
    for p in model.parameters():  # the layers that start at zero would hide differences
        torch.nn.init.normal_(p, std=0.2)
    return model.eval()


def batch(n=6, size=16):
    generator = torch.Generator().manual_seed(1)
    return (
        torch.randn(n, 3, size, size, generator=generator),
        torch.randint(0, 500, (n,), generator=generator),
        torch.randint(0, 4, (n,), generator=generator),
    )


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("mode", [torch.inference_mode, torch.no_grad, torch.enable_grad])
@pytest.mark.parametrize("cascade", [False, True])
def test_fp32_outputs_match_the_textbook_ops(channels_last, mode, cascade):
    model = tiny(cascade=cascade)
    x, t, labels = batch(size=8 if cascade else 16)  # a cascade's 8x8 level uses its own output layers
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model, x = model.to(memory_format=layout), x.contiguous(memory_format=layout)
    with mode():
        got = model(x, t, labels)
        with textbook_ops():
            expected = model(x, t, labels)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def gradients(model, x, t, labels, autocast=False):
    model = copy.deepcopy(model).train()
    x = x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        loss = (model(x, t, labels).float() ** 2).mean()
    loss.backward()
    return torch.cat([x.grad.flatten()] + [p.grad.flatten() for p in model.parameters()])


def test_fp32_gradients_match_the_textbook_ops():
    model, (x, t, labels) = tiny(attention=True), batch()
    got = gradients(model, x, t, labels)
    with textbook_ops():
        expected = gradients(model, x, t, labels)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("size", [16, 32])  # at 32x32 GroupNorm runs in bf16 itself
def test_bf16_outputs_and_gradients_stay_within_the_textbook_ops_error(size):
    model = tiny()
    model.config.image_size = size
    x, t, labels = batch(size=size)
    with torch.inference_mode():
        exact = model(x, t, labels)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = model(x, t, labels).float()
            with textbook_ops():
                textbook = model(x, t, labels).float()
    assert (got - exact).abs().max() <= 2 * (textbook - exact).abs().max() + 1e-3
    exact_grads = gradients(model, x, t, labels)
    got_error = (gradients(model, x, t, labels, autocast=True) - exact_grads).norm()
    with textbook_ops():
        textbook_error = (gradients(model, x, t, labels, autocast=True) - exact_grads).norm()
    assert got_error <= 2 * textbook_error + 1e-3 * exact_grads.norm()
