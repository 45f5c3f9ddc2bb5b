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
