"""Symmetric InfoNCE (CLIP's loss) with a learned temperature and multiple positives per sample.

CLIP (Radford et al. 2021) scores every (text, image) pair of a batch by ``exp(s) · cos`` with a learned
log-scale ``s`` (initialised to ln(1/0.07) = 2.6592, clamped at ln 100) and averages the cross-entropies of
the text→image and image→text softmaxes against the diagonal. Colorization prompts repeat within a batch
(a few regions × seasons), so samples that share a group (the prompt) are positives of each other: the
target of each row is uniform over its positives. With all groups distinct the targets are the identity and
the loss equals transformers' CLIP contrastive loss.
"""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def group_targets(groups: Sequence[object]) -> torch.Tensor:
    """(B, B) float: row i uniform over the samples j with groups[j] == groups[i]."""
    ids = {}
    codes = torch.tensor([ids.setdefault(group, len(ids)) for group in groups])
    same = (codes[:, None] == codes[None, :]).float()
    return same / same.sum(dim=1, keepdim=True)


class SymmetricInfoNCE(nn.Module):
    """``loss(text_embeddings, image_embeddings, groups)`` → terms ``loss`` (the mean of the two directions),
    ``text_to_image`` and ``image_to_text``; embeddings are L2-normalised here."""

    def __init__(self, logit_scale_init: float = math.log(1 / 0.07), max_logit_scale: float = math.log(100.0),
                 learn_temperature: bool = True) -> None:
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale_init)), requires_grad=learn_temperature)
        self.logit_scale._optim = {"weight_decay": 0.0}  # a temperature, not a weight (sarexp.optim hints)
        self.max_logit_scale = max_logit_scale

    def logits(self, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """(B_text, B_image) scaled cosine similarities (CLIP's ``logits_per_text``)."""
        scale = self.logit_scale.clamp(max=self.max_logit_scale).exp()
        return scale * F.normalize(text, dim=-1) @ F.normalize(image, dim=-1).T

    def forward(self, text: torch.Tensor, image: torch.Tensor,
                groups: Sequence[object] | None = None) -> dict[str, torch.Tensor]:
        logits = self.logits(text, image)
        targets = group_targets(groups if groups is not None else range(len(text))).to(logits)
        text_to_image = F.cross_entropy(logits, targets)
        image_to_text = F.cross_entropy(logits.T, targets.T)
        return {"loss": 0.5 * (text_to_image + image_to_text), "text_to_image": text_to_image,
                "image_to_text": image_to_text}
