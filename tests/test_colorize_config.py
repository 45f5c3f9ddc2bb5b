"""task=colorize takes the LDM run's settings from the run directory of ckpt_path (sarexp.tasks.source_config),
so `task=colorize ckpt_path=…` needs neither the experiment nor clip_checkpoint / vae_checkpoint repeated."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from sarexp.errors import ConfigError
from sarexp.tasks.colorize import ENCODER_KEYS, colorize, prompt_for
from sarexp.tasks.source_config import run_checkpoint

LDM = "sarexp.systems.latent_diffusion.LatentDiffusionSystem"
TRAINING = ["experiment=colorization_ldm", "clip_checkpoint=/runs/clip/checkpoints/last.ckpt",
            "vae_checkpoint=/runs/vae/checkpoints/last.ckpt", "model.block_out_channels=[16,32]",
            "model.cross_attention_dim=32", "data.image_size=32", "data.prompt_template='Region {region} in {season}'"]


def _checkpoint(tmp_path: Path, config=None) -> Path:
    """<run>/checkpoints/last.ckpt, with the training config saved as Hydra does (unresolved) when given."""
    run = tmp_path / "ldm"
    (run / "checkpoints").mkdir(parents=True)
    if config is not None:
        (run / ".hydra").mkdir()
        OmegaConf.save(config, run / ".hydra" / "config.yaml")
    torch.save({"state_dict": {}}, run / "checkpoints" / "last.ckpt")
    return run / "checkpoints" / "last.ckpt"


def test_colorize_adopts_the_ldm_run_and_its_encoder_checkpoints(compose_config, tmp_path):
    checkpoint = _checkpoint(tmp_path, compose_config(TRAINING))
    cfg = compose_config(["task=colorize", f"ckpt_path={checkpoint}", "task.region=arctic"])
    assert cfg.system._target_ != LDM and cfg.sampler is None and cfg.clip_checkpoint is None
    run_checkpoint(cfg, "colorize", ENCODER_KEYS)
    assert cfg.system._target_ == LDM and cfg.diffusion.noise_schedule == "scaled_linear"
    assert cfg.system.clip_checkpoint == "/runs/clip/checkpoints/last.ckpt"  # through ${clip_checkpoint}
    assert cfg.system.vae_checkpoint == "/runs/vae/checkpoints/last.ckpt"
    assert list(cfg.model.block_out_channels) == [16, 32] and cfg.model.cross_attention_dim == 32
    assert cfg.sampler._target_ == "sarexp.diffusion.samplers.DDIMSampler" and cfg.sampler.spacing == "trailing"
    assert cfg.data.image_size == 32 and prompt_for(cfg, "arctic", "winter") == "Region arctic in winter"


def test_command_line_wins_except_for_what_the_weights_were_trained_with(compose_config, tmp_path):
    checkpoint = _checkpoint(tmp_path, compose_config(TRAINING))
    cfg = compose_config(["task=colorize", f"ckpt_path={checkpoint}", "clip_checkpoint=/moved/clip.ckpt",
                          "data.batch_size=2", "+sampler=dpm_solver_latent"])
    run_checkpoint(cfg, "colorize", ENCODER_KEYS)
    assert cfg.system.clip_checkpoint == "/moved/clip.ckpt"
    assert cfg.system.vae_checkpoint == "/runs/vae/checkpoints/last.ckpt"
    assert cfg.data.batch_size == 2 and cfg.data.image_size == 32
    assert cfg.sampler._target_ == "sarexp.diffusion.samplers.DPMSolverSampler"

    # the old command line (experiment repeated) still works; a changed architecture is one line naming both
    cfg = compose_config(["experiment=colorization_ldm", "task=colorize", f"ckpt_path={checkpoint}"])
    run_checkpoint(cfg, "colorize", ENCODER_KEYS)
    assert cfg.clip_checkpoint == "/runs/clip/checkpoints/last.ckpt" and cfg.model.cross_attention_dim == 32
    cfg = compose_config(["experiment=colorization_ldm", "task=colorize", f"ckpt_path={checkpoint}",
                          "model.cross_attention_dim=64"])
    with pytest.raises(ConfigError, match=r"^model.cross_attention_dim=64 on the command line, but the model was "
                                          r"trained with model.cross_attention_dim=32 \(.*config.yaml\)"):
        run_checkpoint(cfg, "colorize", ENCODER_KEYS)


def test_without_a_run_config_or_experiment_the_error_says_what_to_do(compose_config, tmp_path):
    checkpoint = _checkpoint(tmp_path)
    cfg = compose_config(["task=colorize", f"ckpt_path={checkpoint}"])
    with pytest.raises(ConfigError, match=r"needs a colorization_ldm model, got data .*SARFocusing.*experiment="):
        colorize(cfg, mode="single", input_image="sar.png", region="arctic", season="winter")
