"""The PDM config groups: every sampler composes and instantiates; the model follows the data and the process."""

import pytest
from hydra.utils import instantiate

from sarexp.config.locate import config_dir
from sarexp.config.validation import validate_config
from sarexp.diffusion.samplers import Sampler

SAMPLERS = sorted(path.stem for path in (config_dir() / "sampler").glob("*.yaml"))


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_composes_and_instantiates(compose_config, sampler):
    cfg = compose_config(["experiment=pdm_sar_lowres", "task=sample", f"sampler={sampler}"])
    validate_config(cfg)
    assert isinstance(instantiate(cfg.sampler), Sampler)


def test_the_model_follows_data_and_process(compose_config):
    cfg = compose_config(["experiment=pdm_insar_phase", "data.image_size=64", "diffusion.learn_sigma=false"])
    assert cfg.model.in_channels == 2 and cfg.model.image_size == 64 and cfg.model.num_classes == 0
    assert cfg.model.learn_sigma is False
    superres = compose_config(["experiment=pdm_sar_superres"])
    assert superres.model.super_resolution is True and superres.data.low_res_size == 16
    assert compose_config(["experiment=pdm_sar_lowres"]).diffusion.steps == 2000
    assert compose_config(["experiment=pdm_insar_noise"]).diffusion.steps == 1000


def test_sampling_defaults_to_the_measured_fast_sampler_on_sar_and_full_ddpm_elsewhere(compose_config):
    """docs/pdm.md: DPM-Solver++(2M) SDE, 25 steps on the quadratic grid, matched full-chain quality on the SAR
    models; the experiments where it was not measured keep the seed's full ancestral chain."""
    sampler = instantiate(compose_config(["experiment=pdm_sar_lowres", "task=sample"]).sampler)
    assert type(sampler).__name__ == "DPMSolverSDESampler"
    assert (sampler.steps, sampler.order, sampler.spacing) == (25, 2, "quadratic")
    for experiment in ("pdm_sar_superres", "pdm_insar_phase", "pdm_insar_noise"):
        other = instantiate(compose_config([f"experiment={experiment}", "task=sample"]).sampler)
        assert type(other).__name__ == "AncestralSampler" and other.steps is None


def test_a_run_config_from_before_the_unet_loader_moved_still_adopts(compose_config, tmp_path):
    """Runs trained when the UNet loaded its own weights saved `_target_: sarexp.models.unet.UNet` with
    `pretrained`; sampling from them must still build the network (through build_unet)."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from sarexp.models.unet import UNet
    from sarexp.tasks.source_config import adopt_run_config

    old = compose_config(["experiment=pdm_sar_lowres"])
    old.model._target_ = "sarexp.models.unet.UNet"
    config_file = tmp_path / "old_run" / ".hydra" / "config.yaml"
    config_file.parent.mkdir(parents=True)
    OmegaConf.save(old, config_file)
    cfg = compose_config(["experiment=pdm_sar_lowres"])
    adopt_run_config(cfg, config_file, overrides=(set(), set()))
    assert cfg.model._target_ == "sarexp.models.unet_pretrained.build_unet"
    network = instantiate({key: value for key, value in cfg.model.items() if key != "compile"})
    assert isinstance(network, UNet)
