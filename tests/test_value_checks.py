"""Out-of-range values give one ConfigError line naming the key, before any data is read: batch sizes, learning
rates, an accelerator that is not there and more devices than exist."""

import re

import pytest
import torch

from cli_helpers import run_cli
from sarexp.config import value_checks
from sarexp.config.validation import validate_config
from sarexp.errors import ConfigError

NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without a GPU")


@pytest.mark.parametrize("experiment, override, message", [
    ("ssm4sar", "data.batch_size=0", "config key 'data.batch_size' = 0 must be a positive whole number of samples"),
    ("pdm_sar_lowres", "data.val_batch_size=-4", "config key 'data.val_batch_size' = -4 must be a positive"),
    ("mixmae_benv1", "data.batch_size=-1", "config key 'data.batch_size' = -1 must be"),
    ("ssm4sar", "optimizer.lr=-0.001", "config key 'optimizer.lr' = -0.001: a learning rate cannot be negative"),
    ("mixmae_benv1_ft", "optimizer.lr=-1", "config key 'optimizer.lr' = -1: a learning rate cannot be negative"),
    ("ssm4sar", "trainer.accelerator=banana", "config key 'trainer.accelerator' = 'banana' is not one of"),
    ("ssm4sar", "trainer.devices=0", "config key 'trainer.devices' = 0 must be positive, -1 (all) or auto"),
    ("ssm4sar", "launcher.devices=-3", "config key 'trainer.devices' = -3 must be positive"),
    pytest.param("ssm4sar", "trainer.accelerator=gpu",
                 "config key 'trainer.accelerator' = 'gpu', but this machine has no GPU device", marks=NO_GPU),
    pytest.param("ssm4sar", "trainer.accelerator=mps",
                 "config key 'trainer.accelerator' = 'mps', but this machine has no MPS device", marks=NO_GPU),
])
def test_out_of_range_values_name_the_key(compose_config, experiment, override, message):
    cfg = compose_config([f"experiment={experiment}", override])
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        validate_config(cfg)
    assert "\n" not in str(error.value)


def test_devices_beyond_the_gpus_present_name_the_key(compose_config, monkeypatch):
    monkeypatch.setattr(value_checks, "_available_devices", lambda accelerator: 2)
    monkeypatch.setattr(value_checks, "_has_cuda", lambda: True)
    for devices, requested in (("4", 4), ("[0,3]", 4)):
        cfg = compose_config(["experiment=ssm4sar", "trainer.accelerator=cuda", f"trainer.devices={devices}"])
        with pytest.raises(ConfigError, match=re.escape(f"asks for {requested} cuda devices, but this machine has 2")):
            validate_config(cfg)
    for devices in ("2", "[1]", "-1", "auto"):
        validate_config(compose_config(["experiment=ssm4sar", "trainer.accelerator=auto", f"trainer.devices={devices}"]))


def test_a_slurm_submission_host_does_not_check_the_nodes_hardware(compose_config, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    cfg = compose_config(["experiment=ssm4sar", "launcher=slurm", "launcher.gpus_per_node=4",
                          "trainer.accelerator=gpu"])
    validate_config(cfg)  # the login node has no GPU; the job checks on its node
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="trainer.accelerator"):
            validate_config(cfg)


@pytest.mark.slow
def test_cli_prints_one_line(tmp_path):
    result = run_cli(["experiment=ssm4sar", "data.batch_size=0", f"hydra.run.dir={tmp_path / 'run'}",
                      f"data.root={tmp_path / 'data'}"], cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: config key 'data.batch_size' = 0 must be a positive whole number of samples")
    assert not (tmp_path / "data").exists()
