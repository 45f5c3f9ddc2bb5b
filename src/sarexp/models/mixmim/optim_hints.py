"""Per-parameter optimizer hints (``param._optim``, read by ``sarexp.optim.param_groups``) for MixMIM nets.

As upstream: no weight decay on 1-D parameters (norms, biases); the fixed position embeddings are buffers.
Fine-tuning adds BEiT-style layer-wise lr decay with the upstream MixMIM layer numbering: patch embedding
0, block j of stage i → (blocks before stage i) + j + 1, the patch merging after stage i → (blocks up to
stage i) + 1, everything else (final norm, head) → total blocks; lr scale = decay^(total blocks + 1 − id).
"""

from collections.abc import Sequence

from torch import nn


def mark_no_weight_decay(module: nn.Module) -> None:
    for parameter in module.parameters():
        if parameter.ndim <= 1:
            parameter._optim = {"weight_decay": 0.0}


def layer_id(name: str, depths: Sequence[int]) -> int:
    """Upstream MixMIM layer id of an encoder parameter name (relative to the encoder) or a head name."""
    parts = name.split(".")
    if parts[0] in ("patch_embed", "absolute_pos_embed"):
        return 0
    if parts[0] == "layers":
        stage = int(parts[1])
        if parts[2] == "downsample":
            return sum(depths[: stage + 1]) + 1
        return sum(depths[:stage]) + int(parts[3]) + 1
    return sum(depths)


def mark_layer_decay(module: nn.Module, encoder_prefix: str, depths: Sequence[int], decay: float) -> None:
    """Hint every parameter of `module` with its lr scale (and weight decay 0 when 1-D)."""
    top = sum(depths) + 1
    for name, parameter in module.named_parameters():
        relative = name.removeprefix(encoder_prefix)
        hint = {"lr_scale": decay ** (top - layer_id(relative, depths))}
        if parameter.ndim <= 1:
            hint["weight_decay"] = 0.0
        parameter._optim = hint
