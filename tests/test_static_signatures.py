"""Signatures read from source agree with `inspect.signature` for every `_target_` sarexp's configs use, and a
misspelled key is reported without importing torch or Lightning."""

import inspect
import subprocess
import sys

import pytest
from hydra.utils import get_object

from sarexp.config.locate import config_dir
from sarexp.config.signatures import static_parameters
from sarexp.config.validation import _parameters, _target_nodes, resolve_config, validate_config
from sarexp.errors import ConfigError

EXPERIMENTS = sorted(path.stem for path in (config_dir() / "experiment").glob("*.yaml"))
TASKS = sorted(path.stem for path in (config_dir() / "task").glob("*.yaml"))


def _shape(parameters: dict[str, inspect.Parameter]) -> dict[str, tuple[str, bool]]:
    return {name: (str(p.kind), p.default is inspect.Parameter.empty) for name, p in parameters.items()}


def test_static_signatures_match_the_imported_ones_for_every_configured_target(compose_config):
    targets = set()
    for experiment in EXPERIMENTS:
        cfg = compose_config([f"experiment={experiment}", "logger=[csv,tensorboard,wandb]"])
        targets |= {node["_target_"] for _, node in _target_nodes(resolve_config(cfg), "")}
    for task in TASKS:
        cfg = compose_config([f"task={task}"])
        targets |= {node["_target_"] for _, node in _target_nodes(resolve_config(cfg), "")}
    read = 0
    for target in sorted(targets):
        static = static_parameters(target)
        if static is None:
            continue  # left to the import-based pass
        read += 1
        imported, accepts_any = _parameters(get_object(target))
        assert (_shape(static[0]), static[1]) == (_shape(imported), accepts_any), target
    assert read >= 0.7 * len(targets)  # most targets are read without imports


def test_decorated_and_unknown_targets_are_left_to_the_import_pass():
    assert static_parameters("lightning.pytorch.Trainer") is None  # __init__ is decorated
    assert static_parameters("sarexp.models.no_such_module.Net") is None
    assert static_parameters("sarexp.models.s4d.NoSuchNet") is None
    parameters, accepts_any = static_parameters("torch.optim.AdamW")  # followed through torch.optim's re-export
    assert "lr" in parameters and not accepts_any


def test_a_misspelled_key_is_reported_before_torch_is_imported(tmp_path):
    probe = (
        "import sys\n"
        "from hydra import compose, initialize_config_dir\n"
        "from sarexp.config.locate import config_dir\n"
        "from sarexp.config.schema import register_schema\n"
        "from sarexp.config.validation import validate_config\n"
        "from sarexp.errors import ConfigError\n"
        "register_schema()\n"
        "with initialize_config_dir(config_dir=str(config_dir()), version_base='1.3'):\n"
        "    cfg = compose('config', overrides=['experiment=ssm4sar', '+model.hiden_size=3',\n"
        f"                                       'paths.run_dir={tmp_path}'])\n"
        "try:\n    validate_config(cfg)\nexcept ConfigError as error:\n    print(error)\n"
        "print('heavy:' + ','.join(m for m in ('torch', 'lightning') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    error, heavy = result.stdout.strip().splitlines()[-2:]
    assert "'model.hiden_size' is not an argument of sarexp.models.s4d.SSM4SARNet" in error
    assert "did you mean 'hidden_state_size'" in error
    assert heavy == "heavy:"


def test_a_factory_that_passes_its_keywords_to_a_class_is_checked_as_that_class(compose_config):
    """conf/model/unet.yaml calls build_unet(pretrained, **UNet's arguments): UNet's keys stay checked, by name
    from source and by type after import."""
    parameters, accepts_any = static_parameters("sarexp.models.unet_pretrained.build_unet")
    assert {"pretrained", "model_channels", "channel_mult"} <= set(parameters) and not accepts_any
    typo = compose_config(["experiment=pdm_sar_lowres", "+model.model_chanels=3"])
    with pytest.raises(ConfigError, match=r"'model.model_chanels' is not an argument of "
                                          r"sarexp.models.unet_pretrained.build_unet; did you mean 'model_channels'"):
        validate_config(typo)
    wrong_type = compose_config(["experiment=pdm_sar_lowres", "model.model_channels=wide"])
    with pytest.raises(ConfigError, match=r"'model.model_channels' = 'wide' is not a valid int"):
        validate_config(wrong_type)
