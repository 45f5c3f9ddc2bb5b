"""Settings of the model being used, taken from where it came from, so `task=sample|likelihood|evaluate|colorize`
need no repetition of the training command line:

- a checkpoint of a sarexp run: the run's `.hydra/config.yaml` (next to `checkpoints/`) gives the `model`,
  `diffusion`, `data` and `system` groups (and `sampler` when none is configured), and the top-level keys a
  task names (colorize: the `clip_checkpoint` and `vae_checkpoint` the LDM's system group reads);
- `model.pretrained=FOLDER` of the seed's released models: its `metadata.json` (the seed's `train*.py` argument
  dict) gives the model, process, data and training settings (:func:`seed_settings`);
- a samples file (`task=evaluate`): the sample run's `.hydra/config.yaml` gives the `data` group.

Command-line overrides win, except for the settings the weights were trained with (the network's architecture,
the process, the image size, channels, classes): overriding one of those with another value is a one-line
ConfigError naming both values.

These files are data from elsewhere: every `_target_` in them must be on sarexp's allowlist
(:mod:`sarexp.config.trusted_targets`), checked on the whole file before anything of it is adopted, and again on
the config it is adopted into (interpolations resolve there); a YAML syntax error is one line.
"""

import copy
import json
import logging
import math
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from sarexp.config.trusted_targets import config_body, trusted_targets
from sarexp.config.validation import validate_config
from sarexp.config.yaml_errors import load_config_file
from sarexp.errors import ConfigError
from sarexp.tasks.checkpoints import required_checkpoint

log = logging.getLogger(__name__)

RUN_GROUPS = ("model", "diffusion", "data", "system")
FREE_MODEL_KEYS = {"dropout", "pretrained"}  # model keys that do not change the trained function
LOCKED_DIFFUSION = {"steps", "noise_schedule", "learn_sigma", "sigma_small", "rescale_timesteps"}
LOCKED_DATA = {"image_size", "channels", "num_classes", "low_res_size", "scaling", "value_range"}
# channel_mult per image size, as the seed's create_model
CHANNEL_MULT = {32: [1, 2, 2, 2], 64: [1, 2, 3, 4], 128: [1, 1, 2, 3, 4], 256: [1, 1, 2, 2, 4, 4]}
_ABSENT = object()


def is_locked(key: str) -> bool:
    """Whether a dotted key is a setting the trained weights depend on."""
    group, _, leaf = key.partition(".")
    leaf = leaf.split(".")[0]
    if group == "model":
        return leaf not in FREE_MODEL_KEYS
    return (group == "diffusion" and leaf in LOCKED_DIFFUSION) or (group == "data" and leaf in LOCKED_DATA)


def command_line_overrides() -> tuple[set[str], set[str]]:
    """(dotted keys set on the command line, config groups chosen on it) of the running Hydra job."""
    if not HydraConfig.initialized():
        return set(), set()
    keys, groups = set(), set()
    for item in HydraConfig.get().overrides.task:
        key = item.split("=", 1)[0].lstrip("+~")
        (keys if "." in key else groups).add(key)
    return keys, groups


def _selected(cfg: DictConfig, key: str, resolve: bool = True) -> Any:
    value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_resolution_failure=False)
    if not resolve:
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        if isinstance(node, DictConfig) and leaf in node:
            return OmegaConf.to_container(node, resolve=False)[leaf]
        return _ABSENT
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def _conflict(key: str, ours: Any, theirs: Any, origin: str) -> ConfigError:
    return ConfigError(f"{key}={ours} on the command line, but the model was trained with {key}={theirs} "
                       f"({origin}); drop the override")


def adopt_run_config(cfg: DictConfig, config_file: Path, groups: tuple[str, ...] = RUN_GROUPS,
                     overrides: tuple[set[str], set[str]] | None = None, top_level: tuple[str, ...] = ()) -> None:
    """Replace `groups` of cfg by those of the run config `config_file`, keeping command-line overrides; the
    `top_level` keys (values the groups interpolate, e.g. `${clip_checkpoint}`) too, unless set on the command line."""
    source = load_config_file(config_file)
    upgrade_moved_targets(source)
    origin = str(config_file)
    trusted = trusted_targets(cfg)
    trusted.check(source, origin)
    keys, chosen = command_line_overrides() if overrides is None else overrides
    before = copy.deepcopy(cfg)
    with open_dict(cfg):
        for group in groups:
            if group not in source:
                continue
            mine = sorted(key for key in keys if key.startswith(group + "."))
            if group in chosen and group in cfg:  # the user picked another config for the group: check, keep
                _check_locked(cfg, source, [f"{group}.{leaf}" for leaf in source[group]], origin)
                continue
            cfg[group] = copy.deepcopy(source[group])
            for key in mine:
                raw = _selected(before, key, resolve=False)
                if raw is _ABSENT:
                    continue
                theirs, ours = _selected(cfg, key), _selected(before, key)
                if is_locked(key) and theirs is not _ABSENT and theirs != ours:
                    raise _conflict(key, ours, theirs, origin)
                OmegaConf.update(cfg, key, raw, force_add=True)
        if cfg.get("sampler") is None and source.get("sampler") is not None:  # the schema's default is null
            cfg.sampler = copy.deepcopy(source.sampler)
        for key in top_level:
            raw = _selected(source, key, resolve=False)
            if key not in chosen and raw is not _ABSENT:
                cfg[key] = raw
    trusted.check(config_body(cfg), origin)
    log.info("settings of %s taken from %s (command-line overrides kept)", ", ".join(groups + top_level), config_file)


# Targets that moved, for run configs written before the move: (old target, a key only the old node has) → new.
MOVED_TARGETS = {("sarexp.models.unet.UNet", "pretrained"): "sarexp.models.unet_pretrained.build_unet"}


def upgrade_moved_targets(source: DictConfig) -> None:
    """Point the nodes of an older run's config at where their targets live now, so its checkpoint still loads
    (a UNet node that carries `pretrained` was written when the UNet loaded its own weights)."""
    for node in _dict_nodes(source):
        for (old, marker), new in MOVED_TARGETS.items():
            if node.get("_target_") == old and marker in node:
                node._target_ = new


def _dict_nodes(node: DictConfig) -> list[DictConfig]:
    found = [node]
    for key in node:
        child = node._get_node(key)
        if isinstance(child, DictConfig):
            found.extend(_dict_nodes(child))
    return found


def _check_locked(cfg: DictConfig, source: DictConfig, keys: list[str], origin: str) -> None:
    for key in keys:
        if not is_locked(key):
            continue
        ours, theirs = _selected(cfg, key), _selected(source, key)
        if ours is not _ABSENT and theirs is not _ABSENT and ours != theirs:
            raise _conflict(key, ours, theirs, origin)


def training_run_config(checkpoint: Path) -> Path | None:
    """`<run>/.hydra/config.yaml` of the run whose `<run>/checkpoints/` holds the checkpoint, if any."""
    for run in (checkpoint.parent.parent, checkpoint.parent):
        config = run / ".hydra" / "config.yaml"
        if config.is_file():
            return config
    return None


def adopt_checkpoint_config(cfg: DictConfig, checkpoint: Path, top_level: tuple[str, ...] = ()) -> None:
    """The training run's model/diffusion/data/system settings (and the `top_level` keys), when its config is beside
    the checkpoint."""
    config = training_run_config(checkpoint)
    if config is None:
        log.info("no .hydra/config.yaml beside %s: using the configured model settings", checkpoint)
        return
    adopt_run_config(cfg, config, top_level=top_level)


def adopt_samples_config(cfg: DictConfig, samples: Path) -> None:
    """The data settings of the run that wrote a samples file (its `.hydra/config.yaml` beside it), if any."""
    config = samples.parent / ".hydra" / "config.yaml"
    if config.is_file():
        adopt_run_config(cfg, config, groups=("data",))
        validate_config(cfg)


def seed_metadata_file(pretrained: str) -> Path | None:
    """The seed's metadata.json for a model folder or a weights file in one (the only .json, as the seed reads)."""
    path = Path(pretrained).expanduser()
    folder = path if path.is_dir() else path.parent
    named = folder / "metadata.json"
    if named.is_file():
        return named
    candidates = sorted(folder.glob("*.json"))
    return candidates[0] if len(candidates) == 1 else None


def seed_settings(metadata: dict[str, Any]) -> dict[str, Any]:
    """The seed's train*.py argument dict as sarexp config values (dotted keys)."""
    try:
        size = int(metadata["image_size"])
        steps = int(metadata["diffusion_steps"])
        channels = int(metadata["num_input_channels"])
        output_type = _plain_text(metadata, "output_type", "epsilon")
        if output_type != "epsilon":
            raise ConfigError(f"seed metadata output_type={output_type!r}: sarexp's samplers take ε-predicting "
                              "models only (output_type='epsilon')")
        if size not in CHANNEL_MULT:
            raise ConfigError(f"seed metadata image_size={size}: the seed defines channel_mult for "
                              f"{sorted(CHANNEL_MULT)} px only")
        classes = int(metadata["num_class"]) if metadata.get("class_cond") else 0
        loss = _plain_text(metadata, "loss_name", "mse")
        microbatch, batch = int(metadata.get("microbatch") or -1), int(metadata.get("batch_size", 1))
        settings: dict[str, Any] = {
            "data.image_size": size, "data.channels": channels, "data.num_classes": classes,
            "model.image_size": size, "model.in_channels": channels, "model.num_classes": classes,
            "model.model_channels": int(metadata["num_model_channels"]),
            "model.num_res_blocks": int(metadata["num_res_blocks"]),
            "model.attention_resolutions": [int(r) for r in str(metadata["attention_resolutions"]).split(",") if r],
            "model.channel_mult": CHANNEL_MULT[size],
            "model.num_heads": int(metadata.get("num_heads", 1)),
            "model.num_heads_upsample": int(metadata.get("num_heads_upsample", -1)),
            "model.dropout": float(metadata.get("dropout", 0.0)),
            "model.use_scale_shift_norm": bool(metadata.get("use_scale_shift_norm", True)),
            "model.conv_resample": True,
            "model.super_resolution": "image_size_lr" in metadata,
            "model.learn_sigma": bool(metadata.get("learn_sigma", False)),
            "diffusion.steps": steps,
            "diffusion.noise_schedule": _plain_text(metadata, "noise_schedule", "linear"),
            "diffusion.learn_sigma": bool(metadata.get("learn_sigma", False)),
            "diffusion.sigma_small": bool(metadata.get("sigma_small", False)),
            "diffusion.rescale_timesteps": bool(metadata.get("rescale_timesteps", True)),  # seed train.py default
            "diffusion.loss_type": "kl" if loss in ("kl", "rescaled_kl") else "mse",
            "diffusion.vlb_weight": 0.001 if loss == "rescaled_mse" else 1.0 / steps,
            "system.schedule_sampler": _plain_text(metadata, "schedule_sampler", "uniform"),
            "system.ema_decay": float(str(metadata.get("ema_rate", "0.9999")).split(",")[0]),
            "system.ema_warmup": False,
            "optimizer.lr": float(metadata.get("lr", 1e-4)),
            "optimizer.weight_decay": float(metadata.get("weight_decay", 0.0)),
            "data.batch_size": microbatch if 0 < microbatch < batch else batch,
            "trainer.accumulate_grad_batches": batch // microbatch if 0 < microbatch < batch else 1,
        }
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"seed metadata.json: missing or malformed entry ({error!s}); is it the seed's "
                          "train*.py argument dict?") from None
    if "image_size_lr" in metadata:
        settings["data.low_res_size"] = int(metadata["image_size_lr"])
    return settings


def _plain_text(metadata: dict[str, Any], key: str, default: str) -> str:
    """A string entry of the metadata as a value, never a node or an interpolation (`${…}` would be resolved)."""
    value = metadata.get(key, default)
    if not isinstance(value, str) or "${" in value:
        raise ValueError(f"{key}={value!r} is not a plain string")
    return value


def adopt_seed_metadata(cfg: DictConfig, overrides: tuple[set[str], set[str]] | None = None) -> None:
    """Configure model, process and data from the metadata.json of `model.pretrained` (when it has one)."""
    pretrained = OmegaConf.select(cfg, "model.pretrained")
    metadata_file = seed_metadata_file(pretrained) if pretrained else None
    if metadata_file is None:
        return
    try:
        metadata = json.loads(metadata_file.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{metadata_file}: not readable JSON ({error}); pass the seed's metadata.json") from None
    trusted = trusted_targets(cfg)
    trusted.check(metadata, str(metadata_file))
    settings = seed_settings(metadata)
    if _selected(cfg, "data.scaling") == "phase" and settings["data.channels"] == 1:
        # the seed's insar_phase model sees the wrapped phase as one channel, φ/π in [−1, 1]
        settings.update({"data.scaling": "range", "data.value_range": [-math.pi, math.pi]})
    keys, _ = command_line_overrides() if overrides is None else overrides
    with open_dict(cfg):
        for key, value in settings.items():
            current = _selected(cfg, key)
            if current is _ABSENT:
                continue  # a group this experiment does not have (e.g. no trainer option of that name)
            if key in keys:
                if is_locked(key) and current != value:
                    raise _conflict(key, current, value, str(metadata_file))
                continue
            OmegaConf.update(cfg, key, value)
    trusted.check(config_body(cfg), str(metadata_file))
    log.info("model, diffusion and data configured from %s", metadata_file)


def source_checkpoint(cfg: DictConfig, task: str) -> Path | None:
    """The checkpoint a generative task loads, with its run's settings adopted into cfg; None when the weights
    come from `model.pretrained` alone (its metadata adopted). cfg is validated again afterwards."""
    if not cfg.get("ckpt_path") and OmegaConf.select(cfg, "model.pretrained"):
        adopt_seed_metadata(cfg)
        validate_config(cfg)
        return None
    return run_checkpoint(cfg, task)


def run_checkpoint(cfg: DictConfig, task: str, top_level: tuple[str, ...] = ()) -> Path:
    """The checkpoint `ckpt_path` (required), with its run's settings and `top_level` keys adopted into cfg;
    cfg is validated again afterwards."""
    checkpoint = required_checkpoint(cfg.get("ckpt_path"), task)
    adopt_checkpoint_config(cfg, checkpoint, top_level)
    validate_config(cfg)
    return checkpoint
