"""A differentiable all-gather: losses that are not means over samples (a Sinkhorn divergence between batch
clouds) can be computed on the samples of all ranks and still train each rank's network on its own samples."""

import torch
import torch.distributed as dist


class _GatherWithGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        ctx.rank, ctx.size = dist.get_rank(), tensor.shape[0]
        return torch.cat(parts, 0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.contiguous().clone()
        dist.all_reduce(total)  # all_reduce, not reduce_scatter: gloo has no reduce_scatter
        return total[ctx.rank * ctx.size:(ctx.rank + 1) * ctx.size]


def all_gather_with_gradient(tensor: torch.Tensor) -> torch.Tensor:
    """The tensors of all ranks concatenated along dim 0 (rank 0's first; equal shapes on every rank). The
    gradient a rank receives for its own rows is the sum over ranks of the gradients of those rows, so with the
    same loss on every rank and DDP's averaging of parameter gradients, training equals one process on all rows."""
    return _GatherWithGradient.apply(tensor)
