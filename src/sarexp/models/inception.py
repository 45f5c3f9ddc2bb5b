"""Inception-v3 (torchvision's architecture) as a FID feature extractor, from a weights file the user gives.

No weights can be downloaded here, so the network is built empty and filled from ``weights_path``: a
torchvision ``inception_v3`` state dict (ImageNet or fine-tuned on SAR, as the seed does), optionally with
a different number of classes. Images in [−1, 1] with 1 or 3 channels are resized to 299 × 299 (bilinear)
and grey images repeated to three channels; Inception's own preprocessing expects [−1, 1], so
``transform_input`` stays off. ``features`` is the 2048-d pool output (the FID convention), ``forward``
the class logits.
"""

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import inception_v3

from sarexp.io.checkpoint_io import load_weights_file
from sarexp.errors import ConfigError


class InceptionFeatures(nn.Module):
    """Inception-v3 loaded from ``weights_path``; 2048-d features and the classifier of the file."""

    def __init__(self, weights_path: str, input_size: int = 299) -> None:
        super().__init__()
        path = Path(weights_path)
        if not path.is_file():
            raise ConfigError(f"{path}: Inception weights file not found; give a torchvision inception_v3 state dict")
        state = load_weights_file(path, "task.inception_weights")
        state = state.get("state_dict", state)
        state = {key.removeprefix("module."): value for key, value in state.items() if not key.startswith("AuxLogits.")}
        if "fc.weight" not in state:
            raise ConfigError(f"{path}: not an inception_v3 state dict (no fc.weight)")
        self.network = inception_v3(weights=None, aux_logits=False, init_weights=False,
                                    num_classes=int(state["fc.weight"].shape[0]), transform_input=False)
        try:
            self.network.load_state_dict(state)
        except RuntimeError as error:
            first_line = str(error).splitlines()[0]
            raise ConfigError(f"{path}: does not fit torchvision's inception_v3 ({first_line})") from None
        self.classifier = self.network.fc
        self.network.fc = nn.Identity()
        self.input_size = input_size
        self.feature_dim = 2048

    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        if images.shape[1] != 3:
            raise ConfigError(f"Inception takes 1- or 3-channel images, got {images.shape[1]} channels")
        return F.interpolate(images, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(self._prepare(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(images))
