"""Classifier-free guidance (Ho & Salimans 2022): one network trained with and without its condition gives
ε̃ = ε_u + s·(ε_c − ε_u). s = 1 is the conditional prediction, s = 0 the unconditional one; s > 1 pushes the
sample towards what the condition adds. Both predictions come from one batched call (the inputs stacked
unconditional first, as Stable Diffusion does); s = 0 and s = 1 need one branch only and call only that.
"""

from collections.abc import Callable

import torch

from sarexp.diffusion.gaussian import ModelFn

# net(x_t, t, context) → ε̂: a conditional network with the condition passed explicitly
ConditionalFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def guided_model_fn(
    net_fn: ConditionalFn, context: torch.Tensor, null_context: torch.Tensor, scale: float
) -> ModelFn:
    """`model_fn(x_t, t)` for the samplers: `net_fn` guided by `context` against `null_context` at `scale`.

    null_context is broadcast over the batch (shape (1, …) or the batch's own).
    """
    null = null_context.expand_as(context)
    if scale == 1.0:
        return lambda x, t: net_fn(x, t, context)
    if scale == 0.0:
        return lambda x, t: net_fn(x, t, null)

    def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        both = net_fn(torch.cat([x, x]), torch.cat([t, t]), torch.cat([null, context]))
        uncond, cond = both.chunk(2)
        return uncond + scale * (cond - uncond)

    return guided
