"""Colorization stage 2: AutoencoderKL shapes, the scaling factor estimated from data, weights-only reloading."""

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from sarexp.errors import ConfigError
from sarexp.models.colorization.vae import build_vae, decode_latents, encode_latents, load_vae, vae_input
from sarexp.systems.autoencoder import AutoencoderKLSystem

TINY = dict(block_out_channels=[8, 8, 8, 8], layers_per_block=1, norm_num_groups=4)


def test_shapes_3x256_to_4x32_and_back() -> None:
    torch.manual_seed(0)
    vae = build_vae(**TINY, sample_size=256, scaling_factor=0.5).eval()
    image = torch.rand(1, 3, 256, 256) * 2 - 1
    with torch.no_grad():
        latents = encode_latents(vae, image, sample=False)
        assert latents.shape == (1, 4, 32, 32)
        assert torch.allclose(latents, 0.5 * vae.encode(image).latent_dist.mode())
        assert decode_latents(vae, latents).shape == (1, 3, 256, 256)
        assert torch.allclose(decode_latents(vae, latents), vae.decode(latents / 0.5).sample)
        sar = torch.rand(1, 1, 64, 64)
        assert torch.equal(vae_input(sar), sar.repeat(1, 3, 1, 1))
        assert encode_latents(vae, sar, sample=False).shape == (1, 4, 8, 8)
    with pytest.raises(ConfigError, match="norm_num_groups"):
        build_vae(block_out_channels=[8, 12], norm_num_groups=8)


def batches(count: int = 3) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return [{"optical": torch.rand(2, 3, 16, 16, generator=generator) * 2 - 1,
             "sar": torch.rand(2, 1, 16, 16, generator=generator) * 2 - 1} for _ in range(count)]


def test_scaling_factor_is_one_over_the_latent_std_and_is_stored(tmp_path: Path) -> None:
    torch.manual_seed(2)
    system = AutoencoderKLSystem(build_vae(**TINY, sample_size=16), optimizer=torch.optim.AdamW, scaling_batches=2)
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path, accelerator="cpu")
    data = batches()
    trainer.validate(system, dataloaders=DataLoader(data, batch_size=None))
    latents = []
    with torch.no_grad():                                       # the same seeded samples, recomputed here
        for index, batch in enumerate(data[:2]):
            images = torch.cat([batch["optical"], batch["sar"].repeat(1, 3, 1, 1)])
            latents.append(system.vae.encode(images).latent_dist.sample(torch.Generator().manual_seed(index)))
    std = torch.cat(latents).double().std().item()
    assert system.vae.config.scaling_factor == pytest.approx(1 / std, rel=1e-5)
    assert trainer.callback_metrics["val/scaling_factor"].item() == pytest.approx(1 / std, rel=1e-5)
    both = trainer.callback_metrics["val/pixel_error"].item()
    parts = [trainer.callback_metrics[f"val/pixel_error_{key}"].item() for key in ("optical", "sar")]
    assert both == pytest.approx(sum(parts) / 2, rel=1e-5)
    assert (torch.cat(latents) * system.vae.config.scaling_factor).std().item() == pytest.approx(1.0, rel=1e-4)

    trainer.save_checkpoint(tmp_path / "vae.ckpt")              # Lightning's own writer, read weights-only
    loaded = load_vae(tmp_path / "vae.ckpt")
    assert loaded.config.scaling_factor == pytest.approx(1 / std, rel=1e-6)
    image = data[0]["optical"]
    with torch.no_grad():
        assert torch.allclose(encode_latents(loaded, image, sample=False),
                              encode_latents(system.vae.eval(), image, sample=False), atol=1e-6)
    fresh = AutoencoderKLSystem(build_vae(**TINY, sample_size=16), optimizer=torch.optim.AdamW)
    fresh.on_load_checkpoint(torch.load(tmp_path / "vae.ckpt", weights_only=True))   # resume keeps the estimate
    assert fresh.vae.config.scaling_factor == pytest.approx(1 / std, rel=1e-6)

    loaded.save_pretrained(tmp_path / "sd" / "vae")             # a diffusers folder (model.pretrained=DIR)
    from_folder = build_vae(pretrained=str(tmp_path / "sd"))
    assert from_folder.config.scaling_factor == pytest.approx(1 / std, rel=1e-6)
    weight = "decoder.conv_out.weight"
    assert torch.equal(from_folder.state_dict()[weight], loaded.state_dict()[weight])


def test_training_lowers_the_reconstruction_error(tmp_path: Path) -> None:
    torch.manual_seed(3)
    system = AutoencoderKLSystem(build_vae(**TINY, sample_size=16),
                                 optimizer=lambda params: torch.optim.Adam(params, lr=3e-3), image_keys=["optical"])
    ramp = torch.linspace(-1, 1, 16)
    smooth = torch.stack([ramp[None, :].expand(16, 16), ramp[:, None].expand(16, 16), -ramp[None, :].expand(16, 16)])
    data = [{"optical": smooth[None].repeat(2, 1, 1, 1)}] * 40             # overfit one smooth image
    before = system.terms(data[0]["optical"], torch.Generator().manual_seed(0))["pixel_error"].item()
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, max_epochs=1,
                         enable_checkpointing=False, default_root_dir=tmp_path, accelerator="cpu")
    trainer.fit(system, train_dataloaders=DataLoader(data, batch_size=None))
    after = system.terms(data[0]["optical"], torch.Generator().manual_seed(0))["pixel_error"].item()
    assert after < 0.7 * before


def test_bad_vae_paths_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="vae_checkpoint=.*nothing.ckpt: no such file"):
        load_vae(tmp_path / "nothing.ckpt")
    (tmp_path / "broken.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="not a readable weights-only checkpoint"):
        load_vae(tmp_path / "broken.ckpt")
    torch.save({"state_dict": {}, "exports": {}}, tmp_path / "clip.ckpt")
    with pytest.raises(ConfigError, match="not a colorization_vae checkpoint"):
        load_vae(tmp_path / "clip.ckpt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="model.pretrained=.*cannot load an AutoencoderKL"):
        build_vae(pretrained=str(tmp_path / "empty"))
