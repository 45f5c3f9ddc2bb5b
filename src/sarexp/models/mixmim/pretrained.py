"""Initialise a MixMIM encoder from a checkpoint: a sarexp run's ``.ckpt`` or an upstream ``.pth``.

Accepted files (read with ``torch.load(weights_only=True)``, which unpickles tensors and plain containers
only): a Lightning checkpoint whose ``state_dict`` holds the encoder under some prefix ending in
``encoder.`` (``net.encoder.`` for sarexp's MixMIM systems), or a MixMIM / SAR-W-MixMAE state dict under
``model`` whose encoder keys are top-level (``patch_embed.…``, ``layers.…``). Relative-position-bias tables
and the absolute position embedding are resized when window or grid sizes differ; the relative position
index is derived, not loaded. A report of loaded, resized, missing and ignored keys is logged.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from timm.layers import resample_abs_pos_embed, resize_rel_pos_bias_table

from sarexp.io.checkpoint_io import load_weights_file
from sarexp.errors import ConfigError
from sarexp.models.mixmim.encoder import MixMIMEncoder

log = logging.getLogger(__name__)

_ENCODER_ROOTS = ("patch_embed.", "absolute_pos_embed", "layers.", "norm.")
_WRAPPERS = ("net.", "module.", "model.")


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    resized: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.loaded)} encoder tensors loaded"]
        if self.resized:
            parts.append(f"resized: {', '.join(self.resized)}")
        parts.append(f"missing (left at initialisation): {', '.join(self.missing) or 'none'}")
        parts.append(f"ignored from the checkpoint: {_shorten(self.ignored) or 'none'}")
        return "; ".join(parts)


def read_state_dict(path: str) -> dict[str, torch.Tensor]:
    """The tensors of a sarexp checkpoint (``state_dict``) or an upstream one (``model``)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(
            f"config key 'model.pretrained' = {path}: no such file; pass a sarexp pretraining checkpoint "
            f"(<run dir>/checkpoints/last.ckpt) or an upstream .pth state dict"
        )
    blob = load_weights_file(file, "model.pretrained")
    for key in ("state_dict", "model"):
        if isinstance(blob, dict) and isinstance(blob.get(key), dict):
            return blob[key]
    raise ConfigError(
        f"config key 'model.pretrained' = {path}: holds neither 'state_dict' (sarexp) nor 'model' (upstream .pth)"
    )


def encoder_entries(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(encoder-relative tensors, other keys): strip everything up to ``encoder.``, else keep upstream roots."""
    encoder, others = {}, []
    for key, value in state.items():
        if "encoder." in key:
            encoder[key.split("encoder.", 1)[1]] = value
        elif key.removeprefix("module.").startswith(_ENCODER_ROOTS):
            encoder[key.removeprefix("module.")] = value
        else:
            others.append(key)
    return encoder, others


def load_pretrained_encoder(encoder: MixMIMEncoder, path: str) -> LoadReport:
    source, others = encoder_entries(read_state_dict(path))
    target = encoder.state_dict()
    report = LoadReport(ignored=others)
    matched = {}
    for key, value in source.items():
        if key.endswith("relative_position_index"):
            continue  # derived from the window size
        if key not in target:
            report.ignored.append(key)
            continue
        if value.shape != target[key].shape:
            value = _resize(key, value, target[key])
            if value is None:
                report.ignored.append(f"{key} (shape)")
                continue
            report.resized.append(key)
        matched[key] = value
    if not matched:
        raise ConfigError(
            f"config key 'model.pretrained' = {path}: no tensor fits the MixMIM encoder; is it a MixMIM checkpoint?"
        )
    encoder.load_state_dict(matched, strict=False)
    report.loaded = sorted(matched)
    report.missing = sorted(set(target) - set(matched))
    log.info("model.pretrained=%s: %s", path, report.summary())
    return report


def _resize(key: str, value: torch.Tensor, reference: torch.Tensor) -> torch.Tensor | None:
    """Resize a relative-position-bias table or the absolute position embedding; None for anything else."""
    if key.endswith("relative_position_bias_table") and value.shape[1] == reference.shape[1]:
        old, new = _window(value.shape[0]), _window(reference.shape[0])
        return resize_rel_pos_bias_table(value, (new, new), tuple(reference.shape), (old, old))
    if key == "absolute_pos_embed" and value.shape[-1] == reference.shape[-1]:
        old, new = round(value.shape[1] ** 0.5), round(reference.shape[1] ** 0.5)
        return resample_abs_pos_embed(value, [new, new], [old, old], num_prefix_tokens=0)
    return None


def _window(table_rows: int) -> int:
    """Window size W of a (2W−1)² table."""
    return (round(table_rows**0.5) + 1) // 2


def _shorten(keys: list[str], limit: int = 8) -> str:
    """Module names of the keys (``net.decoder_blocks`` for ``net.decoder_blocks.0.attn.qkv.weight``)."""
    roots = sorted({".".join(key.split(".")[: 2 if key.startswith(_WRAPPERS) else 1]) for key in keys})
    return ", ".join(roots[:limit]) + (f" … ({len(roots) - limit} more)" if len(roots) > limit else "")
