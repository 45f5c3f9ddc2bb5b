"""The denoising UNet: embedding and attention against direct formulas, shapes, conditioning."""

import math

import pytest
import torch

from sarexp.models.unet import AttentionBlock, UNet, timestep_embedding


def _perturbed(net: torch.nn.Module) -> torch.nn.Module:
    """Zero-initialised output layers make a fresh UNet return 0; give every weight some value."""
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return net


def test_timestep_embedding_is_the_sinusoidal_formula():
    t = torch.tensor([0.0, 3.0, 999.0])
    embedding = timestep_embedding(t, 6)
    for row, value in enumerate(t.tolist()):
        freqs = [10000 ** (-k / 3) for k in range(3)]
        expected = [math.cos(value * f) for f in freqs] + [math.sin(value * f) for f in freqs]
        torch.testing.assert_close(embedding[row], torch.tensor(expected), atol=2e-3, rtol=1e-4)
    assert timestep_embedding(t, 7).shape == (3, 7)


def test_attention_block_matches_naive_softmax_attention():
    torch.manual_seed(0)
    block = _perturbed(AttentionBlock(8, num_heads=2)).eval()
    x = torch.randn(2, 8, 3, 3)
    qkv = block.qkv(block.norm(x).reshape(2, 8, 9))  # (B, 3C, N)
    q, k, v = qkv.reshape(2, 3, 2, 4, 9).unbind(1)  # (B, heads, C/heads, N)
    weights = torch.softmax(torch.einsum("bhcn,bhcm->bhnm", q, k) / math.sqrt(4), dim=-1)
    attended = torch.einsum("bhnm,bhcm->bhcn", weights, v).reshape(2, 8, 9)
    expected = x + block.proj(attended).reshape(2, 8, 3, 3)
    torch.testing.assert_close(block(x), expected, atol=1e-5, rtol=1e-5)


def test_unet_shapes_learned_sigma_and_attention_placement():
    net = UNet(in_channels=2, model_channels=16, num_res_blocks=1, attention_resolutions=[8], image_size=16,
               channel_mult=[1, 2], learn_sigma=True)
    out = net(torch.randn(3, 2, 16, 16), torch.tensor([0, 10, 999]))
    assert out.shape == (3, 4, 16, 16) and not out.any()  # zero-initialised output layer
    attention = [m for m in net.modules() if isinstance(m, AttentionBlock)]
    assert len(attention) == 1 + 1 + 2  # encoder at 8 px, middle, decoder at 8 px (two blocks)
    assert net.conditioning == ()


def test_class_conditional_unet_uses_the_label():
    torch.manual_seed(0)
    net = _perturbed(UNet(in_channels=1, model_channels=8, num_res_blocks=1, attention_resolutions=[],
                          image_size=8, channel_mult=[1, 2], num_classes=3)).eval()
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([5, 5])
    assert net.conditioning == ("label",)
    assert not torch.allclose(net(x, t, label=torch.tensor([0, 0])), net(x, t, label=torch.tensor([2, 2])))
    with pytest.raises(ValueError, match="label"):
        net(x, t)


def test_super_resolution_unet_is_conditioned_on_the_upsampled_low_res_image():
    torch.manual_seed(0)
    net = _perturbed(UNet(in_channels=1, model_channels=8, num_res_blocks=1, attention_resolutions=[4],
                          image_size=8, channel_mult=[1, 2], super_resolution=True)).eval()
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([1, 7])
    assert net.conditioning == ("low_res",)
    first = net(x, t, low_res=torch.zeros(2, 1, 4, 4))
    assert first.shape == (2, 1, 8, 8)
    assert not torch.allclose(first, net(x, t, low_res=torch.ones(2, 1, 4, 4)))
    with pytest.raises(ValueError, match="low_res"):
        net(x, t)


def test_image_size_must_fit_the_levels():
    with pytest.raises(ValueError, match="image_size"):
        UNet(image_size=20, channel_mult=[1, 2, 2, 2])
