"""MixMIM / SAR-W-MixMAE: mixing isolation, unmixing, backscatter weights, layer decay, checkpoint loading."""

import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from sarexp.errors import ConfigError
from sarexp.losses.backscatter_weights import BackscatterWeights
from sarexp.losses.mixmim import MixedReconstructionLoss
from sarexp.metrics.classification import LabelFrequencyAveragePrecision
from sarexp.models.mixmim.classifier import MixMIMClassifier, MixMIMPairClassifier
from sarexp.models.mixmim.encoder import MixMIMEncoder
from sarexp.models.mixmim.mixing import draw_mix_mask, upsample_mask, window_group_mask
from sarexp.models.mixmim.pretrain import MixMIMPretrainNet
from sarexp.optim.param_groups import build_optimizer
from sarexp.optim.schedulers import warmup_cosine
from sarexp.systems.masked_pretraining import MaskedPretrainingSystem

TINY = {"embed_dim": 16, "depths": [1, 1, 2, 1], "num_heads": [1, 2, 4, 8], "window_sizes": [8, 8, 8, 4]}
DECODER = {"decoder_dim": 32, "decoder_depth": 1, "decoder_num_heads": 2}


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- mixing -------------------------------------------------------------------------------------------------


def test_mix_mask_hides_exactly_the_ratio_and_upsamples_like_nearest_interpolation():
    mask = draw_mix_mask((4, 4), 0.5, _generator())
    assert mask.dtype == torch.bool and int(mask.sum()) == 8
    reference = F.interpolate(mask[None, None].float(), size=(32, 32), mode="nearest")[0, 0].bool()
    assert torch.equal(upsample_mask(mask, (32, 32)), reference)


def test_window_group_mask_blocks_exactly_the_pairs_from_different_images():
    mask = draw_mix_mask((4, 4), 0.5, _generator(1))
    additive = window_group_mask(mask, 2)  # 4 windows of 2×2
    for window in range(4):
        row0, col0 = divmod(window, 2)
        members = [mask[2 * row0 + i // 2, 2 * col0 + i % 2].item() for i in range(4)]
        for a in range(4):
            for b in range(4):
                expected = 0.0 if members[a] == members[b] else float("-inf")
                assert additive[window, a, b].item() == expected


def test_perturbing_the_partner_leaves_the_other_images_features_unchanged():
    torch.manual_seed(0)
    encoder = MixMIMEncoder(**TINY).eval()
    images = torch.randn(4, 2, 128, 128)
    mask = draw_mix_mask(encoder.out_grid, 0.5, _generator(2)).flatten()
    perturbed = images.clone()
    perturbed[3] += 3.0 * torch.randn(2, 128, 128)  # image 3 is mixed with image 0 (b ↔ B−1−b)
    with torch.no_grad():
        before = encoder(images, mask.view(encoder.out_grid))
        after = encoder(perturbed, mask.view(encoder.out_grid))
        # image 0's tokens: row 0 where not mixed in, row 3 where mixed in
        change_of_image0 = torch.cat([(after[0] - before[0])[~mask], (after[3] - before[3])[mask]]).abs().max()
        assert change_of_image0 < 1e-6
        assert torch.equal(after[1:3], before[1:3])  # the other pair is untouched
        assert (after[0] - before[0])[mask].abs().max() > 1e-3  # image 3's tokens in row 0 did change
        # negative control: without the attention mask, image 3 leaks into image 0's tokens
        leaky_before = encoder(images, mask.view(encoder.out_grid), isolate=False)
        leaky_after = encoder(perturbed, mask.view(encoder.out_grid), isolate=False)
        assert (leaky_after[0] - leaky_before[0])[~mask].abs().max() > 1e-3


# --- reconstruction loss --------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch", [4, 3])
@pytest.mark.parametrize("norm_pix_loss", [True, False])
def test_a_decoder_returning_the_true_patches_gives_zero_loss(batch, norm_pix_loss):
    torch.manual_seed(0)
    loss = MixedReconstructionLoss(norm_pix_loss=norm_pix_loss)
    target = torch.randn(batch, 16, 64, 2)
    mask = draw_mix_mask((4, 4), 0.5, _generator(3))
    truth = loss.targets(target)
    # first branch: row b reconstructs image b; second branch: row b reconstructs image B−1−b
    oracle = torch.cat([truth, truth.flip(0)])
    weights = torch.rand_like(target) + 1.0
    assert loss(oracle, target, mask, weights).item() == 0.0
    assert loss(torch.cat([truth, truth]), target, mask).item() > 0.1  # unflipped second branch is wrong


def test_reconstruction_of_the_oracle_is_the_input_in_its_units():
    loss = MixedReconstructionLoss()
    target = 3.0 * torch.randn(4, 16, 64, 2) - 12.0
    mask = draw_mix_mask((4, 4), 0.5, _generator(4))
    truth = loss.targets(target)
    assert torch.allclose(loss.reconstruct(torch.cat([truth, truth.flip(0)]), target, mask), target, atol=1e-5)


def test_loss_is_the_weighted_mean_square_error_of_normalised_patches():
    torch.manual_seed(0)
    target = torch.randn(2, 4, 8, 2)
    pred = torch.randn(4, 4, 8, 2)
    mask = torch.tensor([[True, False], [False, True]])
    weights = torch.rand_like(target)
    expected = 0.0
    for b in range(2):
        for token in range(4):
            source = pred[b, token] if mask.flatten()[token] else pred[3 - b, token]
            patch = target[b, token]
            normalised = (patch - patch.mean()) / math.sqrt(patch.var().item() + 1e-6)
            expected += (weights[b, token] * (source - normalised) ** 2).sum().item()
    expected /= target.numel()
    assert MixedReconstructionLoss()(pred, target, mask, weights).item() == pytest.approx(expected, rel=1e-5)
    token_weights = weights.mean(dim=2, keepdim=True).expand_as(weights)
    pixel = MixedReconstructionLoss()(pred, target, mask, token_weights)
    token = MixedReconstructionLoss(weight_reduction="token")(pred, target, mask, weights)
    assert token.item() == pytest.approx(pixel.item())


def test_pretrain_net_shapes_and_patchify_round_trip():
    net = MixMIMPretrainNet(**TINY, **DECODER)
    images = torch.randn(3, 2, 128, 128)
    pred, mask = net(images, generator=_generator())
    assert pred.shape == (6, 16, 32 * 32, 2) and mask.shape == (4, 4) and int(mask.sum()) == 8
    assert torch.equal(net.unpatchify(net.patchify(images)), images)
    # patch (row 1, col 2) of the 4×4 grid is pixels [32:64, 64:96], channel last
    assert torch.equal(net.patchify(images)[0, 6, :, 1], images[0, 1, 32:64, 64:96].flatten())


# --- polarization-aware weights -------------------------------------------------------------------------------


def test_weights_are_e_for_the_darkest_and_one_for_the_brightest_pixel():
    db = torch.empty(1, 2, 8, 8).uniform_(-25.0, -5.0)
    db[0, 0, 1, 2], db[0, 0, 5, 5] = -40.0, 3.0
    db[0, 1, 0, 0], db[0, 1, 7, 1] = -35.0, 6.0
    weights = BackscatterWeights("per_channel", scale=1.0)(db)
    assert weights[0, 0, 1, 2].item() == pytest.approx(math.e) and weights[0, 0, 5, 5].item() == pytest.approx(1.0)
    assert weights[0, 1, 0, 0].item() == pytest.approx(math.e) and weights[0, 1, 7, 1].item() == pytest.approx(1.0)
    linear = 10 ** (db[0, 1, 3, 3].item() / 10)
    low, high = 10 ** -3.5, 10 ** 0.6
    assert weights[0, 1, 3, 3].item() == pytest.approx(math.exp(1 - (linear - low) / (high - low)), rel=1e-5)
    assert weights.min() >= 1.0 - 1e-6 and weights.max() <= math.e + 1e-5


def test_shared_average_and_none_variants():
    db = torch.empty(2, 2, 8, 8).uniform_(-25.0, -5.0)
    shared = BackscatterWeights("shared_avg", scale=2.0)(db)
    assert torch.equal(shared[:, 0], shared[:, 1])
    mean_linear = (10 ** (db / 10)).mean(dim=1)
    darkest = mean_linear[0].flatten().argmin()
    assert shared[0, 0].flatten()[darkest].item() == pytest.approx(math.exp(2.0))
    assert torch.equal(BackscatterWeights("none")(db), torch.ones_like(db))


# --- fine-tuning nets, layer decay, checkpoints ---------------------------------------------------------------


def test_layer_decay_follows_the_upstream_layer_numbering():
    model = MixMIMClassifier(19, **TINY, layer_decay=0.5)
    optimizer = build_optimizer(partial(torch.optim.AdamW, lr=1.0, weight_decay=0.05), model)
    setting = {id(p): (group["lr"], group["weight_decay"]) for group in optimizer.param_groups for p in group["params"]}
    named = dict(model.named_parameters())
    # 5 blocks: patch embed 0, layers.0.blocks.0 → 1, layers.0.downsample → 2, layers.2.blocks.1 → 4, head → 5
    assert setting[id(named["encoder.patch_embed.proj.weight"])] == (0.5**6, 0.05)
    assert setting[id(named["encoder.layers.0.blocks.0.attn.qkv.weight"])] == (0.5**5, 0.05)
    assert setting[id(named["encoder.layers.0.downsample.reduction.weight"])] == (0.5**4, 0.05)
    assert setting[id(named["encoder.layers.2.blocks.1.mlp.fc1.bias"])] == (0.5**2, 0.0)
    assert setting[id(named["head.weight"])] == (0.5, 0.05)
    assert setting[id(named["encoder.norm.weight"])] == (0.5, 0.0)
    assert len(setting) == len(named)


def test_warmup_cosine_horizon_stops_partway_along_a_longer_schedule():
    def rates(**options) -> list[float]:
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        scheduler = warmup_cosine(optimizer, min_lr_ratio=0.0, **options)
        values = []
        for _ in range(50):
            values.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return values

    assert rates(total_steps=50, horizon=4.0, warmup_fraction=0.05) == pytest.approx(
        rates(total_steps=200, warmup_fraction=0.05)
    )


def _save_encoder_checkpoint(path, state: dict, key: str) -> str:
    torch.save({key: state, "epoch": 3}, path)
    return str(path)


def _upstream_encoder_shapes(embed: int, depths: list[int], heads: list[int], windows: list[int]) -> dict:
    """Tensor names and shapes of the upstream MixMIM encoder (models_mixmim_ft.MixMIM), written from its source,
    for a 128×128, 2-channel input with patch 4 (relative position indices and the head left out)."""
    shapes = {"patch_embed.proj.weight": (embed, 2, 4, 4), "patch_embed.proj.bias": (embed,),
              "patch_embed.norm.weight": (embed,), "patch_embed.norm.bias": (embed,),
              "absolute_pos_embed": (1, 32 * 32, embed)}
    for stage, (depth, head, window) in enumerate(zip(depths, heads, windows)):
        dim = embed * 2**stage
        for block in range(depth):
            prefix = f"layers.{stage}.blocks.{block}."
            shapes.update({
                prefix + "norm1.weight": (dim,), prefix + "norm1.bias": (dim,),
                prefix + "attn.relative_position_bias_table": ((2 * window - 1) ** 2, head),
                prefix + "attn.qkv.weight": (3 * dim, dim), prefix + "attn.qkv.bias": (3 * dim,),
                prefix + "attn.proj.weight": (dim, dim), prefix + "attn.proj.bias": (dim,),
                prefix + "norm2.weight": (dim,), prefix + "norm2.bias": (dim,),
                prefix + "mlp.fc1.weight": (4 * dim, dim), prefix + "mlp.fc1.bias": (4 * dim,),
                prefix + "mlp.fc2.weight": (dim, 4 * dim), prefix + "mlp.fc2.bias": (dim,),
            })
        if stage < len(depths) - 1:
            shapes.update({f"layers.{stage}.downsample.norm.weight": (4 * dim,),
                           f"layers.{stage}.downsample.norm.bias": (4 * dim,),
                           f"layers.{stage}.downsample.reduction.weight": (2 * dim, 4 * dim)})
    final = embed * 2 ** (len(depths) - 1)
    shapes.update({"norm.weight": (final,), "norm.bias": (final,)})
    return shapes


def test_encoder_tensors_carry_the_upstream_names_and_shapes():
    encoder = MixMIMEncoder(**TINY)
    expected = _upstream_encoder_shapes(16, TINY["depths"], TINY["num_heads"], TINY["window_sizes"])
    assert {name: tuple(value.shape) for name, value in encoder.state_dict().items()} == expected


def test_pretrained_sarexp_checkpoint_initialises_the_encoder(tmp_path):
    pretrain = MixMIMPretrainNet(**TINY, **DECODER)
    state = {f"net.{name}": value for name, value in pretrain.state_dict().items()}
    path = _save_encoder_checkpoint(tmp_path / "last.ckpt", state, "state_dict")
    model = MixMIMClassifier(19, **TINY, pretrained=path)
    for name, value in pretrain.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[name], value), name


def test_upstream_pth_with_other_windows_and_grid_is_resized(tmp_path, caplog):
    source = MixMIMEncoder(img_size=64, **{**TINY, "window_sizes": [4, 4, 4, 2]})
    state = dict(source.state_dict())
    state["layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(16, 16, dtype=torch.long)
    state["decoder_embed.weight"] = torch.zeros(3, 3)
    state["head.weight"] = torch.zeros(2, 128)
    path = _save_encoder_checkpoint(tmp_path / "upstream.pth", state, "model")
    with caplog.at_level("INFO"):
        model = MixMIMClassifier(19, **TINY, pretrained=path)
    assert "resized: " in caplog.text and "decoder_embed" in caplog.text and "head" in caplog.text
    table = model.encoder.state_dict()["layers.0.blocks.0.attn.relative_position_bias_table"]
    assert table.shape == (15 * 15, 1)
    loaded = model.encoder.state_dict()["layers.1.blocks.0.mlp.fc1.weight"]
    assert torch.equal(loaded, state["layers.1.blocks.0.mlp.fc1.weight"])
    assert model.encoder.state_dict()["absolute_pos_embed"].shape == (1, 32 * 32, 16)


def test_bad_pretrained_path_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match="model.pretrained"):
        MixMIMClassifier(19, **TINY, pretrained=str(tmp_path / "missing.ckpt"))
    torch.save({"state_dict": {"something.else": torch.zeros(1)}}, tmp_path / "other.ckpt")
    with pytest.raises(ConfigError, match="no tensor fits"):
        MixMIMClassifier(19, **TINY, pretrained=str(tmp_path / "other.ckpt"))


def test_pair_classifier_of_identical_dates_sees_no_change():
    model = MixMIMPairClassifier(1, **TINY).eval()
    torch.nn.init.normal_(model.head.weight)
    date = torch.randn(2, 1, 2, 256, 256)
    with torch.no_grad():
        same = model(torch.cat([date, date], dim=1))
        changed = model(torch.cat([date, date + 1.0], dim=1))
    assert same.shape == (2, 1) and torch.allclose(same, model.head.bias.expand(2, 1))
    assert not torch.allclose(changed, same)


# --- pretraining system ---------------------------------------------------------------------------------------


def _system(weight_key: str = "image_db") -> MaskedPretrainingSystem:
    return MaskedPretrainingSystem(
        MixMIMPretrainNet(**TINY, **DECODER), MixedReconstructionLoss(), partial(torch.optim.AdamW, lr=1e-3),
        weighting=BackscatterWeights(), weight_key=weight_key,
    )


def test_pretraining_steps_learn_and_validation_masks_are_fixed():
    torch.manual_seed(0)
    system = _system()
    batch = {"image": torch.randn(4, 2, 128, 128), "image_db": torch.empty(4, 2, 128, 128).uniform_(-25, -5)}
    optimizer = torch.optim.AdamW(system.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        loss = system._reconstruction_loss(batch, _generator())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    system.eval()
    with torch.no_grad():
        assert system._reconstruction_loss(batch, _generator(1)) == system._reconstruction_loss(batch, _generator(1))
    with pytest.raises(ConfigError, match="system.weight_key"):
        _system("image_linear")._reconstruction_loss(batch)


# --- reference metric -------------------------------------------------------------------------------------------


def test_label_frequency_baseline_ap_is_the_mean_positive_rate():
    target = (torch.rand(50, 5) < torch.tensor([0.1, 0.3, 0.5, 0.7, 0.2])).long()
    target[0] = 1  # every class has a positive
    metric = LabelFrequencyAveragePrecision(num_labels=5)
    metric.update(torch.rand(50, 5), target)  # the model's scores are ignored
    assert metric.compute().item() == pytest.approx(target.float().mean(dim=0).mean().item(), rel=1e-6)
