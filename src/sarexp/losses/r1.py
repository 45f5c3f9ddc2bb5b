"""R1 gradient penalty (Mescheder et al. 2018): γ/2 · E_real ‖∇ₓ D(x)‖², which keeps the discriminator
flat on the data and stabilises GAN training. For a spatial (or multi-channel) D output the gradient is
that of D(x).sum() per sample, so every output element counts."""

import torch


def r1_penalty(outputs: torch.Tensor, inputs: torch.Tensor, gamma: float) -> torch.Tensor:
    """γ/2 · mean over the batch of ‖∂ sum(outputs_i) / ∂ inputs_i‖²; `inputs` must require grad and
    `outputs` be computed from them. The graph is kept (create_graph) so the penalty trains D."""
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    return 0.5 * gamma * grad.pow(2).flatten(1).sum(1).mean()
