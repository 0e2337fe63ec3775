"""The U-Net's fused, in-place forward pass computes what the textbook ops compute: GroupNorm (in the
input's layout), then SiLU, then the convolution, with the embedding and the residual added out of place,
F.interpolate's upsampling and nn.Conv2d's 1x1 convolutions.
Outputs and gradients are compared on tiny models in fp32 (to round-off) and under bf16 autocast (no
worse than the textbook ops' own bf16 error, with a margin of 2). A guided pass's label sets give what
the repeated batch gives."""

import contextlib
import copy

import pytest
import torch
import torch.nn.functional as F

from fastdiff.config import CascadeConfig, ModelConfig
from fastdiff.diffusion.guidance import combine, guided_output
from fastdiff.nn import unet
from fastdiff.nn.cascade import CascadeUNet
from fastdiff.nn.unet import GroupNorm32, NormActConv, PointwiseConv, ResBlock, UNet, upsample

CLASSES = ("a", "b", "c")


def textbook_resblock(self, x, emb):
    h = self.conv1(F.silu(self.norm1(x)))
    h = h + self.emb_proj(emb)[:, :, None, None]
    h = self.conv2(F.silu(self.norm2(h)))
    return h + self.skip(x)


def textbook_norm_act_conv(self, x):
    norm, act, conv = self
    return conv(act(norm(x)))


def textbook_group_norm(self, x, act=False):
    h = torch.nn.GroupNorm.forward(self, x)
    return F.silu(h) if act else h


@contextlib.contextmanager
def textbook_ops():
    """Run the network with the textbook forward passes of its fused blocks."""
    fused = ResBlock.forward, NormActConv.forward, GroupNorm32.forward, PointwiseConv.forward, unet.upsample
    ResBlock.forward, NormActConv.forward, GroupNorm32.forward, PointwiseConv.forward, unet.upsample = (
        textbook_resblock,
        textbook_norm_act_conv,
        textbook_group_norm,
        torch.nn.Conv2d.forward,
        lambda x: F.interpolate(x, scale_factor=2.0),
    )
    try:
        yield
    finally:
        ResBlock.forward, NormActConv.forward, GroupNorm32.forward, PointwiseConv.forward, unet.upsample = fused


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


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_upsampling_repeats_each_pixel_as_interpolate_does(channels_last, dtype):
    x = torch.randn(2, 3, 4, 5, dtype=dtype).requires_grad_()
    layout = torch.channels_last if channels_last else torch.contiguous_format
    up = upsample(x.contiguous(memory_format=layout))
    assert torch.equal(up, F.interpolate(x, scale_factor=2.0))
    assert up.is_contiguous(memory_format=layout)
    up.backward(torch.ones_like(up))
    assert torch.equal(x.grad, torch.full_like(x, 4.0))  # each pixel feeds four


@pytest.mark.parametrize("channels_last", [False, True])
def test_pointwise_conv_matches_conv2d_in_bf16_with_gradients(channels_last):
    torch.manual_seed(0)
    conv = PointwiseConv(6, 4)
    x = torch.randn(3, 6, 5, 5)
    if channels_last:
        conv, x = conv.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    results = []
    for forward in (PointwiseConv.forward, torch.nn.Conv2d.forward):
        conv.zero_grad()
        x_bf16 = x.bfloat16().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = forward(conv, x_bf16)
        out.float().square().sum().backward()
        results.append((out.float(), x_bf16.grad.float(), conv.weight.grad.clone(), conv.bias.grad.clone()))
    for got, expected in zip(*results, strict=True):
        torch.testing.assert_close(got, expected, rtol=2e-2, atol=2e-2)


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


@pytest.mark.parametrize("channels_last", [False, True])  # below 32x32 GroupNorm runs on an NCHW copy
@pytest.mark.parametrize("size", [16, 32])
def test_bf16_outputs_and_gradients_stay_within_the_textbook_ops_error(size, channels_last):
    model = tiny()
    model.config.image_size = size
    x, t, labels = batch(size=size)
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
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


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("cascade", [False, True])
def test_label_sets_give_what_the_repeated_batch_gives(cascade, precision, channels_last):
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = tiny(cascade=cascade).to(memory_format=layout)
    x, t, labels = batch(size=8 if cascade else 16)
    x = x.contiguous(memory_format=layout)
    null = torch.full_like(labels, model.null_class)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        shared = model(x, t, torch.cat([labels, null])).float()
        repeated = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null])).float()
        separate = torch.cat([model(x, t, labels), model(x, t, null)]).float()
    assert shared.shape == repeated.shape == (2 * len(x), *x.shape[1:])
    tolerance = 1e-5 if precision == "fp32" else 2e-2  # bf16: convolutions of another batch size round apart
    torch.testing.assert_close(shared, repeated, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(shared, separate, rtol=tolerance, atol=tolerance)


def test_guided_output_asks_each_image_under_both_labels_once():
    model, (x, t, labels) = tiny(), batch()
    calls = []
    model.register_forward_hook(lambda module, args, output: calls.append([len(a) for a in args]))
    with torch.inference_mode():
        guided = guided_output(model, x, t, labels, 2.0)
        expected = combine(model(x, t, labels), model(x, t, torch.full_like(labels, model.null_class)), 2.0)
    assert calls[0] == [len(x), len(x), 2 * len(x)]  # x_t and t once, two labels per image
    torch.testing.assert_close(guided, expected, rtol=1e-5, atol=1e-5)


def test_a_guidance_input_follows_the_label_sets():
    torch.manual_seed(0)
    config = ModelConfig(n_feat=8, image_size=16, num_classes=3, class_names=CLASSES, guidance_embedding=True)
    model = UNet(config).eval()
    torch.nn.init.normal_(model.guidance_mlp[-1].weight, std=0.2)  # zero at init: it would hide the input
    x, t, labels = batch()
    w = torch.linspace(0, 4, len(x))
    with torch.inference_mode():
        shared = model(x, t, torch.cat([labels, labels]), guidance=w)
        repeated = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, labels]), guidance=torch.cat([w, w]))
    torch.testing.assert_close(shared, repeated, rtol=1e-5, atol=1e-5)
