"""CSWin attention against a naive full-attention reference; generator and discriminator shapes, spectral norm."""

import pytest
import torch
import torch.nn.functional as F

from sarexp.errors import ConfigError
from sarexp.models.cswin_attention import CSWinAttention, pad_to_multiple, stripe_merge, stripe_partition
from sarexp.models.cswin_generator import NoiseRobustCSWinGenerator
from sarexp.models.hsi_discriminator import SpectralNormTransformerDiscriminator


@pytest.mark.parametrize("stripe", [(6, 2), (3, 8), (6, 8)])
def test_stripe_partition_and_merge_round_trip(stripe: tuple[int, int]) -> None:
    x = torch.randn(2, 5, 6, 8)
    windows = stripe_partition(x, *stripe)
    assert windows.shape == (2 * (6 // stripe[0]) * (8 // stripe[1]), stripe[0] * stripe[1], 5)
    assert torch.equal(stripe_merge(windows, *stripe, 6, 8), x)
    # the first window holds the top-left stripe, row-major
    assert torch.equal(windows[0, :, 0], x[0, 0, : stripe[0], : stripe[1]].flatten())


def _naive_full_attention(module: CSWinAttention, x: torch.Tensor) -> torch.Tensor:
    """Multi-head attention over all pixels per half, LePE as a depthwise conv over the whole map."""
    b, c, h, w = x.shape
    q, k, v = module.qkv(x).chunk(3, dim=1)
    outs = []
    for branch, s in zip(module.branches, (slice(0, c // 2), slice(c // 2, None))):
        heads = branch.heads
        qh, kh, vh = (t[:, s].reshape(b, heads, -1, h * w).transpose(2, 3) for t in (q, k, v))
        attn = torch.softmax(qh @ kh.transpose(2, 3) / (c // 2 // heads) ** 0.5, dim=-1)
        out = (attn @ vh).transpose(2, 3).reshape(b, c // 2, h, w)
        outs.append(out + branch.lepe(v[:, s]))
    return module.proj(torch.cat(outs, 1))


@pytest.mark.parametrize("split", [7, 50])
def test_split_at_least_the_map_is_full_attention(split: int) -> None:
    torch.manual_seed(0)
    module = CSWinAttention(dim=8, heads=4, split=split)
    x = torch.randn(2, 8, 5, 7)
    assert torch.allclose(module(x), _naive_full_attention(module, x), atol=1e-5)


def test_stripes_are_local_and_odd_maps_are_padded() -> None:
    torch.manual_seed(0)
    module = CSWinAttention(dim=8, heads=2, split=2)
    x = torch.randn(1, 8, 9, 7)
    assert module(x).shape == x.shape
    assert pad_to_multiple(x, 2, 4).shape == (1, 8, 10, 8)
    y = x.clone()
    y[:, :, 0, 0] += 1.0  # a pixel outside both stripes through (8, 6) leaves that output untouched
    assert torch.allclose(module(x)[:, :, 8, 6], module(y)[:, :, 8, 6], atol=1e-6)
    with pytest.raises(ConfigError, match="heads"):
        CSWinAttention(dim=8, heads=3, split=2)


@pytest.mark.parametrize("size", [(1, 1), (3, 5), (17, 12)])
def test_generator_and_discriminator_on_small_and_odd_maps(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    generator = NoiseRobustCSWinGenerator(dim=8, depths=(1, 1, 1), heads=(2, 2, 4), splits=(4, 4, 8),
                                          norm_groups=4, noise_embed_dim=8)
    discriminator = SpectralNormTransformerDiscriminator(dim=8, stages=3, heads=2, out_channels=4)
    rgb = torch.rand(2, 3, *size)
    hsi = generator(rgb)
    assert hsi.shape == (2, 31, *size) and torch.isfinite(hsi).all()
    out, features = discriminator(torch.cat([rgb, hsi], 1), features=True)
    assert out.shape[:2] == (2, 4) and len(features) == 3 and torch.isfinite(out).all()


def test_discriminator_output_is_spatial() -> None:
    discriminator = SpectralNormTransformerDiscriminator(dim=8, stages=2, heads=2, out_channels=4)
    assert discriminator(torch.randn(1, 34, 32, 24)).shape == (1, 4, 8, 6)


def test_spectral_norm_bounds_every_convolution() -> None:
    torch.manual_seed(0)
    discriminator = SpectralNormTransformerDiscriminator(dim=8, stages=2, heads=2, out_channels=4)
    discriminator.train()
    with torch.no_grad():
        for _ in range(30):  # one power iteration per forward
            discriminator(torch.randn(1, 34, 16, 16))
    discriminator.eval()
    convs = [m for m in discriminator.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) >= 8
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=2e-2)
        assert torch.linalg.matrix_norm(conv.parametrizations.weight.original.flatten(1), ord=2) > 0


def test_discriminator_logits_are_nan_safe() -> None:
    discriminator = SpectralNormTransformerDiscriminator(dim=8, stages=1, heads=2, out_channels=4).eval()
    with torch.no_grad():
        discriminator.stages[0].attention.rho.fill_(-200.0)  # temperature → 0.01: huge logits
        assert torch.isfinite(discriminator(torch.randn(1, 34, 8, 8) * 1e3)).all()


def test_delayed_sigmoid_clamps_then_blends_into_a_sigmoid() -> None:
    generator = NoiseRobustCSWinGenerator(dim=8, depths=(1, 1, 1), heads=(2, 2, 2), norm_groups=4,
                                          noise_embed_dim=8, output_activation="delayed_sigmoid",
                                          activation_delay=2)
    y = torch.linspace(-2, 3, 11, requires_grad=True)
    out = generator.activate(y)
    assert torch.equal(out, y.detach().clamp(0, 1))
    out.sum().backward()
    assert torch.equal(y.grad, torch.ones_like(y))  # straight-through clamp keeps gradients
    generator.forward_passes.fill_(4)
    assert torch.allclose(generator.activate(y), torch.sigmoid(y))
    generator.train()
    generator(torch.rand(1, 3, 8, 8))
    assert int(generator.forward_passes) == 5 and "forward_passes" in generator.state_dict()
    with pytest.raises(ConfigError, match="output_activation"):
        NoiseRobustCSWinGenerator(output_activation="relu")


def test_noise_embedding_reacts_to_input_noise() -> None:
    torch.manual_seed(0)
    generator = NoiseRobustCSWinGenerator(dim=8, depths=(1, 1, 1), heads=(2, 2, 2), norm_groups=4, noise_embed_dim=8)
    clean = F.interpolate(torch.rand(1, 3, 4, 4), size=(32, 32), mode="bilinear")
    noisy = clean + 0.1 * torch.randn_like(clean)
    assert not torch.allclose(generator.noise(clean), generator.noise(noisy), atol=1e-3)
