"""Weights for :class:`sarexp.models.unet.UNet` from elsewhere (`model.pretrained=PATH`), loaded by
:func:`build_unet`, the `_target_` of conf/model/unet.yaml; the network module itself reads no files.

PATH may be
- a folder of the seed's released models (Tuel, Kerdreux et al. 2023, Zenodo 8222779, unzipped): bare
  ``torch.save(model.state_dict())`` files ``model_epoch=E_iter=N[...].pt`` (raw weights), ``ema_rate=R_E[...].pt``
  (their moving average), ``optE.pt`` (ignored) and ``metadata.json``. The EMA weights of the latest epoch are
  used (they are what the seed samples from); with no EMA file, the latest raw weights;
- one such ``.pt`` file (a path with ``=`` in it must be quoted on the command line, see docs/pdm.md);
- a sarexp checkpoint (``last.ckpt``): its EMA network, else its raw network.

The seed's networks are improved-diffusion's ``UNetModel`` / ``SuperResModel``: the same layers as sarexp's UNet
in the same order under other names, and the attention's qkv rows grouped per head ([q_h, k_h, v_h] for each
head h) where sarexp groups them per kind ([q_1..q_H, k_1..k_H, v_1..v_H]). :func:`improved_diffusion_to_unet`
maps names and rows by walking the sarexp network, so the mapping follows whatever architecture is configured.
"""

import logging
import re
from pathlib import Path
from typing import Any

import torch

from sarexp.config.forwarding import passes_keywords_to
from sarexp.errors import ConfigError
from sarexp.io.checkpoint_io import load_weights_file
from sarexp.models.unet import AttentionBlock, Downsample, UNet, Upsample, _Stage

log = logging.getLogger(__name__)

EMA_FILE = re.compile(r"^ema_rate=(?P<rate>[0-9.]+)_(?P<epoch>\d+)(_step=(?P<step>\d+))?.*\.pt$")
MODEL_FILE = re.compile(r"^model_epoch=(?P<epoch>\d+)_(iter|step)=(?P<step>\d+).*\.pt$")
KEY = "config key 'model.pretrained'"

# improved-diffusion sub-module names → sarexp names, per kind of block
RESBLOCK_NAMES = {"in_layers.0": "in_layers.0", "in_layers.2": "in_layers.2", "emb_layers.1": "emb_layers.1",
                  "out_layers.0": "out_norm", "out_layers.3": "out_layers.2", "skip_connection": "skip"}
ATTENTION_NAMES = {"norm": "norm", "qkv": "qkv", "proj_out": "proj"}


@passes_keywords_to(UNet)
def build_unet(pretrained: str | None = None, **config: Any) -> UNet:
    """The UNet of `config` (UNet's arguments, checked as such by the config validator), with the weights of
    `pretrained` when given (see the module docstring)."""
    net = UNet(**config)
    if pretrained:
        load_pretrained_unet(net, pretrained)
    return net


def seed_weights_file(path: Path) -> Path:
    """The weights file a seed folder is loaded from: the EMA of the latest epoch (highest rate on ties), else the
    latest raw weights."""
    files = [file for file in path.iterdir() if file.is_file()]
    ema = [(int(m["epoch"]), int(m["step"] or 0), float(m["rate"]), f) for f in files if (m := EMA_FILE.match(f.name))]
    if ema:
        return max(ema, key=lambda item: item[:3])[-1]
    raw = [(int(m["epoch"]), int(m["step"]), f) for f in files if (m := MODEL_FILE.match(f.name))]
    if raw:
        return max(raw, key=lambda item: item[:2])[-1]
    raise ConfigError(f"{KEY} = {path}: no ema_rate=…pt or model_epoch=…pt file in this folder; pass the unzipped "
                      "seed model folder or a weights file")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The network's state dict from a seed .pt file (a bare state dict) or a sarexp checkpoint (EMA first)."""
    state = load_weights_file(path, "model.pretrained")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        inner = state["state_dict"]
        for prefix in ("ema_net.", "net."):
            picked = {key[len(prefix):]: value for key, value in inner.items() if key.startswith(prefix)}
            if picked:
                return picked
        raise ConfigError(f"{KEY} = {path}: a checkpoint without net.* or ema_net.* weights; is it a pdm_* run?")
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ConfigError(f"{KEY} = {path}: holds neither a state dict nor a sarexp checkpoint")
    return state


def improved_diffusion_to_unet(state: dict[str, torch.Tensor], net: UNet) -> dict[str, torch.Tensor]:
    """An improved-diffusion UNetModel/SuperResModel state dict renamed (and qkv rows reordered) for `net`."""
    prefixes: dict[str, tuple[str, str, int]] = {}  # seed prefix → (sarexp prefix, kind, heads)

    def add_stage(seed: str, ours: str, stage: _Stage) -> int:
        prefixes[f"{seed}.0"] = (f"{ours}.res", "res", 0)
        if isinstance(stage.attention, AttentionBlock):
            prefixes[f"{seed}.1"] = (f"{ours}.attention", "attention", stage.attention.num_heads)
            return 2
        return 1

    prefixes["time_embed"] = ("time_embed", "same", 0)
    prefixes["label_emb"] = ("label_embed", "same", 0)
    prefixes["out"] = ("out", "same", 0)
    prefixes["input_blocks.0.0"] = ("input_conv", "same", 0)
    for index, module in enumerate(net.down):
        seed = f"input_blocks.{index + 1}"
        if isinstance(module, _Stage):
            add_stage(seed, f"down.{index}", module)
        elif isinstance(module, Downsample):
            prefixes[f"{seed}.0.op"] = (f"down.{index}.op", "same", 0)
    prefixes["middle_block.0"] = ("middle.0", "res", 0)
    prefixes["middle_block.1"] = ("middle.1", "attention", net.middle[1].num_heads)
    prefixes["middle_block.2"] = ("middle.2", "res", 0)
    block, used = -1, 1  # the seed's output block index, and how many layers it holds before an Upsample
    for index, module in enumerate(net.up):
        if isinstance(module, _Stage):
            block += 1
            used = add_stage(f"output_blocks.{block}", f"up.{index}", module)
        elif isinstance(module, Upsample):  # the last layer of the seed's output block before it
            prefixes[f"output_blocks.{block}.{used}.conv"] = (f"up.{index}.conv", "same", 0)

    mapped: dict[str, torch.Tensor] = {}
    for name, value in state.items():
        mapped_name, value = _map_key(name, value, prefixes)
        mapped[mapped_name] = value
    return mapped


def _map_key(name: str, value: torch.Tensor, prefixes: dict[str, tuple[str, str, int]]) -> tuple[str, torch.Tensor]:
    candidates = [prefix for prefix in prefixes if name.startswith(prefix + ".")]
    if not candidates:
        raise ConfigError(f"{KEY}: weight {name!r} has no place in the configured UNet; configure the model from "
                          "the folder's metadata.json (model.pretrained=FOLDER does it)")
    prefix = max(candidates, key=len)
    ours, kind, heads = prefixes[prefix]
    rest = name[len(prefix) + 1 :]
    if kind == "same":
        return f"{ours}.{rest}", value
    names = RESBLOCK_NAMES if kind == "res" else ATTENTION_NAMES
    module, _, leaf = rest.rpartition(".")
    if module not in names:
        raise ConfigError(f"{KEY}: unexpected weight {name!r} in an improved-diffusion {kind} block")
    if kind == "attention" and module == "qkv":
        value = per_head_to_per_kind(value, heads)
    return f"{ours}.{names[module]}.{leaf}", value


def per_head_to_per_kind(qkv: torch.Tensor, heads: int) -> torch.Tensor:
    """Rows [q_1 k_1 v_1 … q_H k_H v_H] (improved-diffusion) → [q_1…q_H k_1…k_H v_1…v_H] (sarexp)."""
    rows = qkv.shape[0]
    width = rows // (3 * heads)
    return qkv.reshape(heads, 3, width, *qkv.shape[1:]).transpose(0, 1).reshape(rows, *qkv.shape[1:])


def load_pretrained_unet(net: UNet, pretrained: str) -> None:
    """Load `pretrained` (see the module docstring) into `net`, strictly: every weight must fit."""
    path = Path(pretrained).expanduser()
    if not path.exists():
        raise ConfigError(f"{KEY} = {path}: no such file or folder; pass the unzipped seed model folder, one of "
                          "its .pt files or a sarexp last.ckpt")
    file = seed_weights_file(path) if path.is_dir() else path
    state = read_state_dict(file)
    if any(key.startswith(("input_blocks.", "middle_block.", "output_blocks.")) for key in state):
        state = improved_diffusion_to_unet(state, net)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = [key for key in expected if key in state and state[key].shape != expected[key].shape]
    if missing or unexpected or misshaped:
        detail = (f"{len(missing)} missing (e.g. {missing[0]})" if missing else
                  f"{len(unexpected)} unexpected (e.g. {unexpected[0]})" if unexpected else
                  f"{misshaped[0]} is {tuple(state[misshaped[0]].shape)}, the model has "
                  f"{tuple(expected[misshaped[0]].shape)}")
        raise ConfigError(f"{KEY} = {file}: the weights do not fit the configured UNet ({detail}); use the settings "
                          "of the model that wrote them (its metadata.json or .hydra/config.yaml)")
    net.load_state_dict({key: value.to(expected[key].dtype) for key, value in state.items()})
    log.info("model.pretrained: loaded %d tensors from %s", len(state), file)
