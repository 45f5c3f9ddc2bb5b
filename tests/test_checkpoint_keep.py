"""Rolling retention of periodic checkpoints (seed: checkpoint_keep) as configured in conf/callbacks/gan.yaml."""

from pathlib import Path

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

CONFIG = Path(__file__).resolve().parents[1] / "conf" / "callbacks" / "gan.yaml"


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.layer(batch[0]).pow(2).mean()
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_only_the_most_recent_periodic_checkpoints_are_kept(tmp_path: Path) -> None:
    node = OmegaConf.load(CONFIG)["periodic_checkpoint"]
    node.dirpath = str(tmp_path / "checkpoints")
    node.every_n_train_steps = 2
    node.save_top_k = 2
    periodic = instantiate(node)
    last = pl.callbacks.ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True, monitor="train/loss",
                                        filename="best", save_top_k=1)
    trainer = pl.Trainer(default_root_dir=tmp_path, max_steps=10, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[periodic, last], log_every_n_steps=1)
    trainer.fit(Tiny(), DataLoader(TensorDataset(torch.randn(40, 2)), batch_size=2))
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    periodic_names = [n for n in names if n.startswith("periodic")]
    assert periodic_names == ["periodic-step0000008.ckpt", "periodic-step0000010.ckpt"]
    assert "last.ckpt" in names and any(n.startswith("best") for n in names)
