"""Smaller parts of the LDM stage: the widened pretrained UNet, the constant warm-up schedule, season labels."""

import torch

from ldm_helpers import WIDTH, tiny_unet
from sarexp.data.colorization_labels import ColorizationLabelsDataModule
from sarexp.models.ldm_unet import ldm_unet
from sarexp.optim.schedulers import warmup_constant


def test_pretrained_unet_is_widened_with_zero_weights(tmp_path):
    torch.manual_seed(0)
    original = tiny_unet()
    original.conv_in = torch.nn.Conv2d(4, 16, 3, padding=1)  # a 4-channel (Stable Diffusion-like) input
    original.register_to_config(in_channels=4)
    original.save_pretrained(tmp_path / "unet")
    widened = ldm_unet(pretrained=str(tmp_path), in_channels=8)
    assert widened.config.in_channels == 8 and widened.conv_in.in_channels == 8
    x, t, context = torch.randn(2, 4, 4, 4), torch.tensor([3, 700]), torch.randn(2, 5, WIDTH)
    condition = torch.randn(2, 4, 4, 4)
    with torch.no_grad():
        before = original.eval()(x, t, encoder_hidden_states=context).sample
        after = widened.eval()(torch.cat([x, condition], 1), t, encoder_hidden_states=context).sample
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)


def test_warmup_constant_ramps_then_holds():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = warmup_constant(optimizer, total_steps=100, warmup_steps=4)
    seen = []
    for _ in range(8):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_season_labels_follow_the_configured_order(tmp_path):
    module = ColorizationLabelsDataModule(root=str(tmp_path / "data"), image_size=16, batch_size=4,
                                          simulator={"scenes": 12, "patches_per_scene": 1, "size": 16})
    module.prepare_data()
    module.setup()
    batch = module.on_after_batch_transfer(next(iter(module.train_dataloader())), 0)
    expected = [module.seasons.index(season) for season in batch["season"]]
    assert batch["label"].tolist() == expected and torch.equal(batch["image"], batch["optical"])
    both = ColorizationLabelsDataModule(root=str(tmp_path / "data"), image_size=16, label="region_season")
    assert both.num_classes == 12 and both.class_index("arctic", "autumn") == 11
