"""Every experiment composes, passes validation and instantiates; the validator catches bad keys and types."""

import re
from pathlib import Path

import lightning.pytorch as pl
import pytest
from hydra.utils import instantiate

from sarexp.config.locate import config_dir
from sarexp.config.validation import validate_config
from sarexp.errors import ConfigError
from tiny_experiments import upstream_checkpoints
from sarexp.tasks.builders import build_callbacks, build_datamodule, build_loggers, build_system, build_trainer

EXPERIMENTS = sorted(path.stem for path in (config_dir() / "experiment").glob("*.yaml"))
TASKS = sorted(path.stem for path in (config_dir() / "task").glob("*.yaml"))


def test_there_are_experiments_to_check():
    assert "ssm4sar" in EXPERIMENTS


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_validates_and_instantiates(compose_config, experiment, tmp_path):
    upstream = upstream_checkpoints(compose_config, experiment, tmp_path)
    cfg = compose_config([f"experiment={experiment}", "logger=[csv,tensorboard,wandb]", *upstream])
    validate_config(cfg)
    assert isinstance(build_datamodule(cfg), pl.LightningDataModule)
    assert isinstance(build_system(cfg), pl.LightningModule)
    callbacks, loggers = build_callbacks(cfg), build_loggers(cfg)
    assert len(loggers) == 3
    assert isinstance(build_trainer(cfg, callbacks, loggers), pl.Trainer)
    assert callable(instantiate(cfg.task))


@pytest.mark.parametrize("task", TASKS)
def test_every_task_composes(compose_config, task):
    validate_config(compose_config(["experiment=ssm4sar", f"task={task}"]))


def test_debug_presets_compose(compose_config):
    for preset in sorted(path.stem for path in (config_dir() / "debug").glob("*.yaml")):
        validate_config(compose_config(["experiment=ssm4sar", f"debug={preset}"]))


def test_experiment_values_win_over_the_primary_config(compose_config):
    cfg = compose_config(["experiment=ssm4sar"])
    assert cfg.name == "ssm4sar" and cfg.monitor == "val/psnr" and cfg.monitor_mode == "max"


def test_trainer_follows_the_launcher(compose_config):
    cfg = compose_config(["experiment=ssm4sar", "launcher.nodes=3", "launcher.devices=2"])
    assert cfg.trainer.num_nodes == 3 and cfg.trainer.devices == 2


@pytest.mark.parametrize(
    "override, message",
    [
        ("+model.hiden_size=3", "config key 'model.hiden_size' is not an argument of sarexp.models.s4d.SSM4SARNet"),
        ("+loss.ssim_windw=7", "did you mean 'ssim_window'"),
        ("model.num_layers=four", "config key 'model.num_layers' = 'four'"),
        ("trainer.max_steps=1.5", "config key 'trainer.max_steps'"),
        ("data.batch_size=[1,2]", "config key 'data.batch_size'"),
        ("model._target_=sarexp.models.nothing.Here", "cannot import 'sarexp.models.nothing.Here'"),
        ("data.root=???", "data.root"),
    ],
)
def test_validation_names_the_bad_key(compose_config, override, message):
    cfg = compose_config(["experiment=ssm4sar", override])
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(cfg)


def test_a_required_argument_left_out_is_named(compose_config):
    cfg = compose_config(["experiment=ssm4sar", "~data.root"])
    with pytest.raises(ConfigError, match=r"config key 'data.root' is required"):
        validate_config(cfg)


def test_yaml_lists_fit_tuple_arguments(compose_config):
    cfg = compose_config(["experiment=ssm4sar", "optimizer.betas=[0.8,0.9]"])
    validate_config(cfg)  # torch's AdamW hints betas as a tuple; YAML can only give a list


def test_config_dir_is_the_checkout_or_packaged_conf():
    assert (config_dir() / "config.yaml").is_file()
    assert config_dir().name == "conf" and isinstance(config_dir(), Path)


def test_sweeps_directory_is_the_sweep_group(compose_config):
    params = compose_config(["experiment=ssm4sar", "sweep=ssm4sar_grid"], keep_hydra=True).hydra.sweeper.params
    assert params["optimizer.lr"] == "choice(0.001, 0.005, 0.01)"
    assert params["model.hidden_state_size"] == "choice(8, 16, 32)"
    assert set(params) == {"optimizer.lr", "data.batch_size", "model.num_layers", "model.hidden_state_size"}


def test_every_yaml_expressible_trainer_argument_can_be_overridden(compose_config):
    import inspect

    objects = {"logger", "callbacks", "plugins", "model_registry", "enable_autolog_hparams"}
    arguments = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self"} - objects
    cfg = compose_config(["experiment=ssm4sar"])
    assert arguments <= set(cfg.trainer), sorted(arguments - set(cfg.trainer))
