"""Configs sarexp reads from files it did not compose are data, not code: a run's `.hydra/config.yaml` beside a
checkpoint (task=sample, likelihood, colorize), the run that wrote a samples file (task=evaluate), a feature
extractor or season classifier run, a seed folder's metadata.json. A `_target_` in them that is not on the
allowlist (sarexp.config.trusted_targets) is one line naming the file, the key and the target, and nothing in the
file runs: the planted `torch.load(notes.pkl, weights_only=False)` would create a marker file, which must not appear.
The shipped experiments' own run configs are adopted unchanged."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from cli_helpers import run_cli
from sarexp.config.trusted_targets import TrustedTargets, trusted_targets
from sarexp.errors import ConfigError


class _Payload:
    """Unpickling this calls os.system, which creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def planted(tmp_path) -> tuple[Path, dict]:
    """(marker, the `_target_` node a stranger's config plants: unpickling notes.pkl creates the marker)."""
    marker = tmp_path / "MARKER"
    torch.save({"notes": _Payload(marker)}, tmp_path / "notes.pkl")
    return marker, {"_target_": "torch.load", "f": str(tmp_path / "notes.pkl"), "weights_only": False}


def plant_run(run: Path, config: dict) -> Path:
    """A run folder as sarexp writes one: .hydra/config.yaml and a (harmless) checkpoints/last.ckpt."""
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    OmegaConf.save(OmegaConf.create(config), run / ".hydra" / "config.yaml")
    torch.save({"state_dict": {}}, run / "checkpoints" / "last.ckpt")
    return run / "checkpoints" / "last.ckpt"


def run_config_of(compose_config, overrides: list[str]) -> dict:
    """What `.hydra/config.yaml` of a run of the shipped experiment holds (unresolved, as Hydra saves it)."""
    return OmegaConf.to_container(compose_config(overrides), resolve=False)


def assert_refused(error: pytest.ExceptionInfo, origin: Path, key: str, target: str, marker: Path) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{origin}: {key}={target} is not a trusted target; nothing was built"), message
    assert f"trusted_targets=[{target}]" in message
    assert not marker.exists()


def run_task(cfg) -> None:
    instantiate(cfg.task)(cfg)


def test_sample_refuses_a_planted_system_even_if_the_file_trusts_it(compose_config, tmp_path, planted):
    marker, evil = planted
    config = run_config_of(compose_config, ["experiment=pdm_sar_lowres"])
    config["system"] = evil
    config["trusted_targets"] = ["torch.load"]  # a file cannot extend the list itself
    checkpoint = plant_run(tmp_path / "their_run", config)
    cfg = compose_config(["experiment=pdm_sar_lowres", "task=sample", f"ckpt_path={checkpoint}",
                          "task.num_samples=1", "task.progress=false"])
    with pytest.raises(ConfigError) as error:
        run_task(cfg)
    assert_refused(error, tmp_path / "their_run" / ".hydra" / "config.yaml", "system._target_", "torch.load", marker)


def test_likelihood_refuses_a_nested_target(compose_config, tmp_path, planted):
    marker, evil = planted
    config = run_config_of(compose_config, ["experiment=pdm_sar_lowres"])
    config["diffusion"]["noise_schedule"] = evil
    checkpoint = plant_run(tmp_path / "their_run", config)
    cfg = compose_config(["experiment=pdm_sar_lowres", "task=likelihood", f"ckpt_path={checkpoint}",
                          "task.max_batches=1", "task.steps=2", "task.progress=false"])
    with pytest.raises(ConfigError) as error:
        run_task(cfg)
    assert_refused(error, tmp_path / "their_run" / ".hydra" / "config.yaml", "diffusion.noise_schedule._target_",
                   "torch.load", marker)


def _samples_run(compose_config, tmp_path: Path, data_generator: dict | None = None) -> Path:
    config = run_config_of(compose_config, ["experiment=pdm_sar_lowres", "task=sample"])
    if data_generator is not None:
        config["data"]["generator"] = data_generator
    plant_run(tmp_path / "sample_run", config)
    np.savez(tmp_path / "sample_run" / "samples.npz", images=np.zeros((2, 1, 32, 32), np.float32))
    return tmp_path / "sample_run" / "samples.npz"


def test_evaluate_refuses_a_planted_samples_run(compose_config, tmp_path, planted):
    marker, evil = planted
    samples = _samples_run(compose_config, tmp_path, data_generator=evil)
    cfg = compose_config(["experiment=pdm_sar_lowres", "task=evaluate", f"task.samples_path={samples}",
                          f"task.inception_weights={tmp_path / 'inception.pth'}"])
    with pytest.raises(ConfigError) as error:
        run_task(cfg)
    assert_refused(error, tmp_path / "sample_run" / ".hydra" / "config.yaml", "data.generator._target_",
                   "torch.load", marker)


def test_evaluate_refuses_an_extractor_run_reaching_torch_load_through_a_sarexp_module(compose_config, tmp_path,
                                                                                        planted):
    """`sarexp.models.unet.torch.load` starts like a sarexp class but is torch.load (through unet's import)."""
    marker, evil = planted
    samples = _samples_run(compose_config, tmp_path)
    extractor = plant_run(tmp_path / "extractor_run", {"model": {**evil, "_target_": "sarexp.models.unet.torch.load"}})
    cfg = compose_config(["experiment=pdm_sar_lowres", "task=evaluate", f"task.samples_path={samples}",
                          f"task.extractor_checkpoint={extractor}"])
    with pytest.raises(ConfigError) as error:
        run_task(cfg)
    assert_refused(error, tmp_path / "extractor_run" / ".hydra" / "config.yaml", "model._target_",
                   "sarexp.models.unet.torch.load", marker)
    assert not (tmp_path / "data").exists()  # refused before the real images were generated


def test_colorize_refuses_a_planted_ldm_run(compose_config, tmp_path, planted):
    marker, evil = planted
    config = run_config_of(compose_config, ["experiment=colorization_ldm"])
    config["system"]["clip_checkpoint"] = evil
    checkpoint = plant_run(tmp_path / "ldm_run", config)
    cfg = compose_config(["task=colorize", f"ckpt_path={checkpoint}", "task.region=tropical", "task.season=summer"])
    with pytest.raises(ConfigError) as error:
        run_task(cfg)
    assert_refused(error, tmp_path / "ldm_run" / ".hydra" / "config.yaml", "system.clip_checkpoint._target_",
                   "torch.load", marker)


def test_colorize_dataset_refuses_a_planted_season_classifier_run_before_colorizing(compose_config, tmp_path,
                                                                                     planted):
    marker, evil = planted
    ldm = plant_run(tmp_path / "ldm_run", run_config_of(compose_config, ["experiment=colorization_ldm"]))
    classifier = plant_run(tmp_path / "season_run", {"model": {"_target_": "sarexp.models.feature_cnn.FeatureCNN",
                                                               "in_channels": 3, "num_classes": 4,
                                                               "widths": [evil], "feature_dim": 4}})
    cfg = compose_config(["task=colorize", f"ckpt_path={ldm}", "task.mode=dataset",
                          f"task.season_classifier_checkpoint={classifier}"])
    with pytest.raises(ConfigError) as error:
        run_task(cfg)
    assert_refused(error, tmp_path / "season_run" / ".hydra" / "config.yaml", "model.widths[0]._target_",
                   "torch.load", marker)
    assert not (tmp_path / "run").exists()  # nothing written: refused before the LDM was built


def test_seed_folder_metadata_is_data(compose_config, tmp_path, planted):
    from sarexp.models.unet import UNet
    from sarexp.tasks.source_config import seed_settings

    marker, evil = planted
    metadata = {"image_size": 32, "num_input_channels": 1, "num_model_channels": 8, "num_res_blocks": 1,
                "attention_resolutions": "", "learn_sigma": False, "class_cond": False, "diffusion_steps": 10,
                "noise_schedule": "linear"}
    model = {key.split(".", 1)[1]: value for key, value in seed_settings(metadata).items() if key.startswith("model.")}
    folder = tmp_path / "seed_model"
    folder.mkdir()
    torch.save({"state_dict": {f"net.{k}": v for k, v in UNet(**model).state_dict().items()}},
               folder / "ema_rate=0.9999_3.pt")
    (folder / "metadata.json").write_text(json.dumps({**metadata, "noise_schedule": evil}))
    cfg = compose_config(["experiment=pdm_sar_lowres", "task=sample", f"model.pretrained={folder}",
                          "task.num_samples=1", "task.progress=false"])
    with pytest.raises(ConfigError) as error:
        run_task(cfg)
    assert_refused(error, folder / "metadata.json", "noise_schedule._target_", "torch.load", marker)

    (folder / "metadata.json").write_text(json.dumps({**metadata, "noise_schedule": "${oc.env:HOME}"}))
    with pytest.raises(ConfigError, match=r"noise_schedule='\$\{oc.env:HOME\}' is not a plain string"):
        run_task(compose_config(["experiment=pdm_sar_lowres", "task=sample", f"model.pretrained={folder}"]))


@pytest.mark.parametrize("experiment", sorted(path.stem for path in (Path(__file__).parents[1] / "conf" /
                                                                     "experiment").glob("*.yaml")))
def test_shipped_run_configs_are_trusted(compose_config, experiment):
    """Every experiment's run config passes on the list derived from conf/ alone (interpolations resolved)."""
    trusted_targets().check(compose_config([f"experiment={experiment}"]), experiment)


def test_what_the_allowlist_refuses():
    """Exact library names only, sarexp classes where they are defined, interpolations resolved, `_args_`,
    `_partial_` and lists walked."""
    trusted = trusted_targets()
    assert trusted.allows("torch.optim.Adam") and trusted.allows("lightning.pytorch.Trainer")  # used by conf/
    assert trusted.allows("sarexp.models.unet.AttentionBlock")  # a sarexp class conf/ does not name
    for target in ("torch.load", "torch.optim.Adam.__init__", "builtins.eval", "os.system",
                   "sarexp.models.unet.torch.load",  # torch.load through unet's `import torch`
                   "sarexp.models.unet_pretrained.UNet",  # a class, but where it is imported, not defined
                   "sarexp.tasks.colorize_output.write_png_atomic",  # a sarexp function, not a class
                   "sarexp.io.atomic.write_file_atomically", "sarexp.models", 3, None):
        assert not trusted.allows(target), target
    evil = {"_target_": "torch.load", "f": "x", "weights_only": False}
    cases = [
        ("a._args_[0]._target_", {"a": {"_target_": "torch.nn.CrossEntropyLoss", "_args_": [evil]}}),
        ("a._target_", {"a": {**evil, "_partial_": True}}),
        ("a[1].b._target_", {"a": [1, {"b": evil}]}),
        ("a.b._target_", {"name": "torch.load", "a": {"b": {"_target_": "${name}"}}}),
        ("a.b._target_", {"a": {"b": "${oc.create:{_target_: torch.load, f: x}}"}}),
    ]
    for key, config in cases:
        with pytest.raises(ConfigError, match=rf"^origin: {re.escape(key)}=torch.load is not a trusted target"):
            trusted.check(OmegaConf.create(config), "origin")


def test_trusted_targets_extends_the_list_from_the_command_line(compose_config):
    cfg = compose_config(["trusted_targets=[torch.load,sarexp.io.*]"])
    trusted = trusted_targets(cfg)
    assert trusted.allows("torch.load") and trusted.allows("sarexp.io.atomic.write_file_atomically")
    assert not trusted.allows("sarexp.io.atomic.os.replace")  # a prefix entry trusts what is defined there
    with pytest.raises(ConfigError, match="trusted_targets entry 'torch/load' is not a dotted name"):
        trusted_targets(compose_config(["trusted_targets=[torch/load]"]))
    assert isinstance(trusted, TrustedTargets)


@pytest.mark.slow
def test_cli_sample_of_a_strangers_run_is_one_line(compose_config, tmp_path, planted):
    marker, evil = planted
    config = run_config_of(compose_config, ["experiment=pdm_sar_lowres"])
    config["system"] = evil
    checkpoint = plant_run(tmp_path / "their_run", config)
    result = run_cli(["experiment=pdm_sar_lowres", "task=sample", f"ckpt_path={checkpoint}",
                      f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, timeout=180)
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {tmp_path}/their_run/.hydra/config.yaml: system._target_=torch.load is not a trusted target; "
        "nothing was built (a config sarexp reads from a file may only name the targets of its conf/ and sarexp's "
        "own classes; if you trust this file and its code, add trusted_targets=[torch.load] to the command line)"]
    assert "Traceback" not in result.stderr
    assert not marker.exists()
