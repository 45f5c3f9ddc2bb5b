"""Load the network whose features FID and precision/recall are measured in.

Two sources: a checkpoint of ``experiment=pdm_feature_extractor`` (its network is rebuilt from the
``model`` node of the run's ``.hydra/config.yaml`` and filled with the ``net.`` weights of the
ClassificationSystem checkpoint), or an Inception-v3 weights file. Either way the result has
``features(images)`` (B, D) and ``forward(images)`` class logits.
"""

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from sarexp.config.model_options import network_node
from sarexp.config.trusted_targets import TrustedTargets, trusted_targets
from sarexp.config.yaml_errors import load_config_file
from sarexp.errors import ConfigError, first_line
from sarexp.io.checkpoint_io import load_weights_file
from sarexp.models.inception import InceptionFeatures
from sarexp.rundir import check_checkpoint_file

SYSTEM_NET_PREFIX = "net."
EXTRACTOR_KEY = "task.extractor_checkpoint"


def extractor_run_config(checkpoint: Path, trusted: TrustedTargets | None = None,
                         key: str = EXTRACTOR_KEY) -> DictConfig:
    """The `.hydra/config.yaml` of the run that wrote the checkpoint, checked: the file is as untrusted as the
    checkpoint, so all its `_target_`s must be on the allowlist (sarexp's alone when `trusted` is not given).
    Cheap: tasks call it before their long work too."""
    check_checkpoint_file(checkpoint, key=key)
    run_config = checkpoint.resolve().parent.parent / ".hydra" / "config.yaml"
    if not run_config.is_file():
        raise ConfigError(
            f"{key}={checkpoint}: no {run_config} beside it; use a checkpoint in the checkpoints/ folder of the "
            "run directory of a classifier (pdm_feature_extractor, colorization_season_classifier)"
        )
    config = load_config_file(run_config)
    (trusted or trusted_targets()).check(config, str(run_config))
    if "model" not in config:
        raise ConfigError(f"{key}={checkpoint}: {run_config} has no model group; is it a sarexp run's config?")
    return config


def extractor_from_checkpoint(checkpoint: Path, trusted: TrustedTargets | None = None,
                              key: str = EXTRACTOR_KEY) -> nn.Module:
    """The classifier saved by a ``pdm_feature_extractor`` (or season classifier) run, in eval mode."""
    model_node = extractor_run_config(checkpoint, trusted, key).model
    network = instantiate(network_node(model_node), _convert_="object")
    if not hasattr(network, "features"):
        raise ConfigError(f"{key}={checkpoint}: its model {type(network).__name__} has no features()")
    blob = load_weights_file(checkpoint, key)
    state = blob.get("state_dict") if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise ConfigError(f"{key}={checkpoint}: holds no 'state_dict'; use a sarexp .ckpt file")
    weights = {name.removeprefix(SYSTEM_NET_PREFIX): value for name, value in state.items()
               if name.startswith(SYSTEM_NET_PREFIX)}
    try:
        network.load_state_dict(weights)
    except RuntimeError as error:
        raise ConfigError(f"{key}={checkpoint}: weights do not fit the run's model ({first_line(error)})") from None
    return network.eval()


def load_feature_extractor(extractor_checkpoint: str | None, inception_weights: str | None,
                           trusted: TrustedTargets | None = None) -> nn.Module:
    """The extractor named by exactly one of the two task keys."""
    if bool(extractor_checkpoint) == bool(inception_weights):
        raise ConfigError(
            "task=evaluate needs exactly one feature extractor: task.extractor_checkpoint=<pdm_feature_extractor "
            "run>/checkpoints/last.ckpt or task.inception_weights=<inception_v3 state dict>"
        )
    if extractor_checkpoint:
        return extractor_from_checkpoint(Path(extractor_checkpoint), trusted)
    return InceptionFeatures(str(inception_weights)).eval()
