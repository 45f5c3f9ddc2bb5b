"""Load the network whose features FID and precision/recall are measured in.

Two sources: a checkpoint of ``experiment=pdm_feature_extractor`` (its network is rebuilt from the
``model`` node of the run's ``.hydra/config.yaml`` and filled with the ``net.`` weights of the
ClassificationSystem checkpoint), or an Inception-v3 weights file. Either way the result has
``features(images)`` (B, D) and ``forward(images)`` class logits.
"""

from pathlib import Path

from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from sarexp.io.checkpoint_io import load_weights_file
from sarexp.config.model_options import network_node
from sarexp.errors import ConfigError
from sarexp.models.inception import InceptionFeatures
from sarexp.rundir import check_checkpoint_file

SYSTEM_NET_PREFIX = "net."
TRUSTED_TARGET_PREFIX = "sarexp.models."


def extractor_from_checkpoint(checkpoint: Path) -> nn.Module:
    """The classifier saved by a ``pdm_feature_extractor`` run, in eval mode."""
    check_checkpoint_file(checkpoint, key="task.extractor_checkpoint")
    run_config = checkpoint.resolve().parent.parent / ".hydra" / "config.yaml"
    if not run_config.is_file():
        raise ConfigError(
            f"task.extractor_checkpoint={checkpoint}: no {run_config} beside it; use a checkpoint in the "
            "checkpoints/ folder of a pdm_feature_extractor run directory"
        )
    model_node = OmegaConf.load(run_config).model
    _require_sarexp_targets(OmegaConf.to_container(model_node), checkpoint)
    network = instantiate(network_node(model_node), _convert_="object")
    if not hasattr(network, "features"):
        raise ConfigError(
            f"task.extractor_checkpoint={checkpoint}: its model {type(network).__name__} has no features()"
        )
    blob = load_weights_file(checkpoint, "task.extractor_checkpoint")
    state = blob.get("state_dict") if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise ConfigError(f"task.extractor_checkpoint={checkpoint}: holds no 'state_dict'; use a sarexp .ckpt file")
    weights = {key.removeprefix(SYSTEM_NET_PREFIX): value for key, value in state.items()
               if key.startswith(SYSTEM_NET_PREFIX)}
    try:
        network.load_state_dict(weights)
    except RuntimeError as error:
        raise ConfigError(
            f"task.extractor_checkpoint={checkpoint}: weights do not fit the run's model ({str(error).splitlines()[0]})"
        ) from None
    return network.eval()


def _require_sarexp_targets(node: object, checkpoint: Path) -> None:
    """The run config beside a checkpoint is as untrusted as the checkpoint: instantiate sarexp classes only."""
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None and not str(target).startswith(TRUSTED_TARGET_PREFIX):
            raise ConfigError(
                f"task.extractor_checkpoint={checkpoint}: its run config's model names _target_={target}, not a "
                f"{TRUSTED_TARGET_PREFIX}* class; refusing to build it"
            )
        for value in node.values():
            _require_sarexp_targets(value, checkpoint)
    elif isinstance(node, list):
        for value in node:
            _require_sarexp_targets(value, checkpoint)


def load_feature_extractor(extractor_checkpoint: str | None, inception_weights: str | None) -> nn.Module:
    """The extractor named by exactly one of the two task keys."""
    if bool(extractor_checkpoint) == bool(inception_weights):
        raise ConfigError(
            "task=evaluate needs exactly one feature extractor: task.extractor_checkpoint=<pdm_feature_extractor "
            "run>/checkpoints/last.ckpt or task.inception_weights=<inception_v3 state dict>"
        )
    if extractor_checkpoint:
        return extractor_from_checkpoint(Path(extractor_checkpoint))
    return InceptionFeatures(str(inception_weights)).eval()
