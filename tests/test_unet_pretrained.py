"""The seed's released models (improved-diffusion UNetModel / SuperResModel state dicts + metadata.json) load into
sarexp's UNet: a seed-format folder is written from an independent improved-diffusion-style network
(tests/improved_diffusion_reference.py), loaded through `model.pretrained`, and must compute the same function;
the metadata configures model, process and data; rescale_timesteps feeds the network t·1000/T."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from improved_diffusion_reference import RefUNetModel
from sarexp.diffusion.gaussian import gaussian_diffusion
from sarexp.errors import ConfigError
from sarexp.models.unet import UNet
from sarexp.models.unet_pretrained import build_unet, per_head_to_per_kind, seed_weights_file
from sarexp.tasks.source_config import CHANNEL_MULT, adopt_run_config, adopt_seed_metadata, seed_settings

SEED_METADATA = {  # the keys the seed's train.py dumps (values of a tiny model)
    "image_size": 32, "num_input_channels": 1, "num_model_channels": 32, "num_res_blocks": 1, "num_heads": 2,
    "num_heads_upsample": 4, "attention_resolutions": "16", "dropout": 0.1, "learn_sigma": True,
    "sigma_small": False, "class_cond": True, "num_class": 3, "diffusion_steps": 40, "noise_schedule": "cosine",
    "timestep_respacing": "", "loss_name": "rescaled_mse", "output_type": "epsilon", "rescale_timesteps": True,
    "use_checkpoint": False, "use_scale_shift_norm": True, "schedule_sampler": "loss-second-moment",
    "ema_rate": "0.9999", "lr": 0.0001, "weight_decay": 0.0, "batch_size": 8, "microbatch": 4, "num_epochs": 3,
}


def reference_network(metadata: dict, seed: int) -> RefUNetModel:
    """The seed's create_model / create_sr_model, on the reference implementation, with random weights
    everywhere (improved-diffusion zero-initialises output layers, which would hide mapping errors)."""
    size = metadata["image_size"]
    channels = metadata["num_input_channels"]
    torch.manual_seed(seed)
    net = RefUNetModel(
        channels, metadata["num_model_channels"], 2 * channels if metadata["learn_sigma"] else channels,
        metadata["num_res_blocks"], tuple(size // int(r) for r in metadata["attention_resolutions"].split(",")),
        CHANNEL_MULT[size], num_classes=metadata["num_class"] if metadata["class_cond"] else None,
        num_heads=metadata["num_heads"], num_heads_upsample=metadata["num_heads_upsample"],
        super_resolution="image_size_lr" in metadata,
    )
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.copy_(0.2 * torch.randn_like(parameter))
    return net.eval()


def write_seed_folder(folder: Path, metadata: dict) -> tuple[RefUNetModel, RefUNetModel]:
    """A folder as in the seed's Zenodo zips: raw weights, EMA weights (different), optimizer state, metadata."""
    folder.mkdir(parents=True, exist_ok=True)
    raw, ema = reference_network(metadata, 0), reference_network(metadata, 1)
    old_ema = reference_network(metadata, 2)
    torch.save(raw.state_dict(), folder / "model_epoch=3_iter=120.pt")
    torch.save(old_ema.state_dict(), folder / "ema_rate=0.9999_2.pt")
    torch.save(ema.state_dict(), folder / "ema_rate=0.9999_3.pt")
    torch.save({"state": {}, "param_groups": []}, folder / "opt3.pt")
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return raw, ema


def sarexp_network(metadata: dict, pretrained: str | None) -> UNet:
    settings = seed_settings(metadata)
    model = {key.split(".", 1)[1]: value for key, value in settings.items() if key.startswith("model.")}
    return build_unet(**model, pretrained=pretrained).eval()


def test_qkv_rows_are_regrouped_from_per_head_to_per_kind():
    heads, width = 2, 3
    rows = torch.arange(3 * heads * width)  # improved-diffusion: row = head·3w + kind·w + j
    regrouped = per_head_to_per_kind(rows, heads)
    for kind in range(3):
        for head in range(heads):
            for j in range(width):
                assert regrouped[kind * heads * width + head * width + j] == head * 3 * width + kind * width + j


@pytest.mark.parametrize("superres", [False, True], ids=["UNetModel", "SuperResModel"])
def test_seed_folder_loads_and_computes_the_reference_function(tmp_path, superres):
    metadata = dict(SEED_METADATA, **({"image_size_lr": 16, "class_cond": False} if superres else {}))
    raw, ema = write_seed_folder(tmp_path / "seed_model", metadata)
    assert seed_weights_file(tmp_path / "seed_model").name == "ema_rate=0.9999_3.pt"  # latest EMA
    net = sarexp_network(metadata, str(tmp_path / "seed_model"))
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(3, 1, 32, 32, generator=generator)
    t = torch.tensor([0.0, 312.5, 975.0])  # rescaled times are fractional
    kwargs = {"low_res": torch.randn(3, 1, 16, 16, generator=generator)} if superres else {"y": torch.tensor([0, 2, 1])}
    ours = {"low_res": kwargs["low_res"]} if superres else {"label": kwargs["y"]}
    with torch.no_grad():
        expected, got = ema(x, t, **kwargs), net(x, t, **ours)
        assert expected.abs().mean() > 0.1  # a real function, not the zero output of a fresh network
        torch.testing.assert_close(got, expected, atol=2e-5, rtol=2e-5)
        # one file by name (quoted on the command line): the raw weights
        single = sarexp_network(metadata, str(tmp_path / "seed_model" / "model_epoch=3_iter=120.pt"))
        torch.testing.assert_close(single(x, t, **ours), raw(x, t, **kwargs), atol=2e-5, rtol=2e-5)


def test_weights_that_do_not_fit_are_one_line_errors(tmp_path):
    write_seed_folder(tmp_path / "seed_model", SEED_METADATA)
    wrong = dict(SEED_METADATA, num_model_channels=64)
    with pytest.raises(ConfigError, match="do not fit the configured UNet") as raised:
        sarexp_network(wrong, str(tmp_path / "seed_model"))
    assert "\n" not in str(raised.value)
    with pytest.raises(ConfigError, match="no ema_rate"):
        sarexp_network(SEED_METADATA, str(tmp_path))
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match="model.pretrained=.*bad.pt: not a readable PyTorch checkpoint"):
        sarexp_network(SEED_METADATA, str(tmp_path / "bad.pt"))


def test_metadata_configures_model_diffusion_data_and_training():
    settings = seed_settings(dict(SEED_METADATA, image_size=128, attention_resolutions="16,8"))
    assert settings["model.channel_mult"] == [1, 1, 2, 3, 4] and settings["model.attention_resolutions"] == [16, 8]
    assert settings["diffusion.rescale_timesteps"] and settings["diffusion.vlb_weight"] == 0.001
    assert settings["data.batch_size"] == 4 and settings["trainer.accumulate_grad_batches"] == 2
    assert settings["data.num_classes"] == 3 and settings["system.ema_decay"] == 0.9999
    with pytest.raises(ConfigError, match="output_type"):
        seed_settings(dict(SEED_METADATA, output_type="x_start"))


def test_metadata_adoption_keeps_free_overrides_and_rejects_conflicting_ones(tmp_path):
    write_seed_folder(tmp_path / "m", SEED_METADATA)
    cfg = OmegaConf.create({
        "model": {"model_channels": 8, "pretrained": str(tmp_path / "m"), "in_channels": "${data.channels}",
                  "dropout": 0.0},
        "data": {"channels": 2, "image_size": 16, "num_classes": 0, "scaling": "phase", "value_range": None},
        "diffusion": {"steps": 10, "rescale_timesteps": False}, "optimizer": {"lr": 0.5},
    })
    adopt_seed_metadata(cfg, overrides=({"optimizer.lr"}, set()))
    assert cfg.model.model_channels == 32 and cfg.model.in_channels == 1 and cfg.diffusion.steps == 40
    assert cfg.diffusion.rescale_timesteps and cfg.optimizer.lr == 0.5  # a training setting: the override wins
    assert cfg.data.scaling == "range" and cfg.data.value_range == pytest.approx([-np.pi, np.pi])  # 1-channel phase
    cfg.model.model_channels = 64
    with pytest.raises(ConfigError, match=r"model.model_channels=64 on the command line.*model_channels=32"):
        adopt_seed_metadata(cfg, overrides=({"model.model_channels"}, set()))


def test_rescale_timesteps_feeds_the_network_t_times_1000_over_T():
    seen = []
    diffusion = gaussian_diffusion(steps=40, noise_schedule="cosine", rescale_timesteps=True)
    fn = lambda x, t: seen.append(t) or torch.zeros_like(x)  # noqa: E731
    diffusion.call_model(fn, torch.zeros(2, 1, 2, 2), torch.tensor([0, 39]))
    diffusion.respaced([0, 20, 39]).call_model(fn, torch.zeros(1, 1, 2, 2), torch.tensor([1]))
    torch.testing.assert_close(seen[0], torch.tensor([0.0, 975.0]))
    torch.testing.assert_close(seen[1], torch.tensor([500.0]))


def test_run_config_adoption_replaces_groups_and_keeps_free_overrides(tmp_path):
    run = OmegaConf.create({
        "model": {"model_channels": 8, "in_channels": "${data.channels}", "dropout": 0.1},
        "diffusion": {"steps": 50, "noise_schedule": "cosine"},
        "data": {"image_size": 16, "channels": 1, "root": "/train/root", "batch_size": 8},
        "sampler": {"steps": 3},
    })
    OmegaConf.save(run, tmp_path / "config.yaml")

    def configured():
        return OmegaConf.create({
            "model": {"model_channels": 32, "in_channels": "${data.channels}", "dropout": 0.0},
            "diffusion": {"steps": 2000, "noise_schedule": "cosine"},
            "data": {"image_size": 32, "channels": 1, "root": "/other/root", "batch_size": 16},
        })

    cfg = configured()
    adopt_run_config(cfg, tmp_path / "config.yaml", overrides=({"data.root", "model.dropout"}, set()))
    assert cfg.model.model_channels == 8 and cfg.diffusion.steps == 50 and cfg.data.image_size == 16
    assert cfg.data.root == "/other/root" and cfg.model.dropout == 0.0 and cfg.data.batch_size == 8
    assert cfg.sampler.steps == 3  # none configured: the run's
    with pytest.raises(ConfigError, match=r"^diffusion.steps=2000 on the command line, but the model was trained "
                                          r"with diffusion.steps=50 \("):
        adopt_run_config(configured(), tmp_path / "config.yaml", overrides=({"diffusion.steps"}, set()))
    with pytest.raises(ConfigError, match="data.image_size=32 on the command line"):  # data=… chosen: checked
        adopt_run_config(configured(), tmp_path / "config.yaml", overrides=(set(), {"data"}))
