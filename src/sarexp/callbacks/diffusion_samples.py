"""Draw a few samples at the end of validation epochs, so long diffusion runs can be checked by eye."""

from pathlib import Path

import lightning.pytorch as pl
import torch
from PIL import Image

from sarexp.diffusion.samplers import Sampler
from sarexp.plotting.image_grid import image_grid
from sarexp.systems.diffusion import DiffusionSystem, conditioning_of, model_function
from sarexp.callbacks.atomic_io import write_file_atomically


class SaveDiffusionSamples(pl.Callback):
    """Every `every_n_epochs` epochs: `num_samples` images with `sampler` (fixed noise, conditioned on the first
    validation batch's labels / low-resolution images) → `output_dir/epoch_XXXX.png`."""

    def __init__(
        self, sampler: Sampler, output_dir: str, every_n_epochs: int = 1, num_samples: int = 8, use_ema: bool = True
    ) -> None:
        super().__init__()
        if every_n_epochs < 1 or num_samples < 1:
            raise ValueError("every_n_epochs and num_samples must be >= 1")
        self.sampler = sampler
        self.output_dir = Path(output_dir)
        self.every_n_epochs = every_n_epochs
        self.num_samples = num_samples
        self.use_ema = use_ema
        self._conditioning: dict[str, torch.Tensor] = {}

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: object,
        batch: dict[str, torch.Tensor],
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx == 0 and isinstance(pl_module, DiffusionSystem):
            found = conditioning_of(pl_module.net, batch)
            self._conditioning = {key: value[: self.num_samples] for key, value in found.items()}

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or not isinstance(pl_module, DiffusionSystem):
            return
        if trainer.current_epoch % self.every_n_epochs != 0:
            return
        net = pl_module.sampling_network(self.use_ema)
        count = len(next(iter(self._conditioning.values()))) if self._conditioning else self.num_samples
        shape = (count, net.in_channels, net.image_size, net.image_size)
        noise = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(pl_module.device)
        was_training = net.training
        net.eval()
        images = self.sampler.sample(pl_module.diffusion, model_function(net, self._conditioning), noise)
        net.train(was_training)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        grid = image_grid(images.clamp(-1, 1).float().cpu().numpy(), columns=count)
        path = self.output_dir / f"epoch_{trainer.current_epoch:04d}.png"
        write_file_atomically(path, lambda handle: Image.fromarray(grid).save(handle, format="PNG"))
