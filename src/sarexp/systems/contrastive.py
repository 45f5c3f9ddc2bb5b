"""Contrastive training of two towers (CLIP-style): a text tower on `batch[text_key]` and an image tower on
`batch[image_key]`, trained with a symmetric InfoNCE loss where samples sharing `batch[group_key]` are
positives of each other (colorization: the prompt).

- A tower may define ``prepare(datamodule)`` (called once in ``setup``: the text tower builds its tokenizer
  from the data's prompts there) and ``export(prefix)`` / ``restore(exported)`` (extra plain values stored in
  the checkpoint under ``exports/<attribute>``: the tokenizer and the text config, so the text encoder can
  be reloaded with ``torch.load(weights_only=True)`` without the config that trained it).
- Validation and test log the loss, the temperature, retrieval accuracy (the image a text ranks first
  shares its group) and, when the data module offers ``prompt_corpus()``, zero-shot accuracy: the share of
  images whose most similar prompt among all the data's prompts is their own (chance = 1 / #prompts).
"""

from collections.abc import Callable
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.optim import Optimizer

from sarexp.errors import TrainingError
from sarexp.optim.param_groups import lightning_optimization

TOWERS = ("text_tower", "image_tower")


class ContrastiveSystem(pl.LightningModule):
    """See the module docstring; ``loss(text_emb, image_emb, groups)`` returns named terms with ``loss``."""

    def __init__(
        self,
        text_tower: nn.Module,
        image_tower: nn.Module,
        loss: nn.Module,
        optimizer: Callable[..., Optimizer],
        scheduler: Callable[..., Any] | None = None,
        text_key: str = "prompt",
        image_key: str = "optical",
        group_key: str = "prompt",
    ) -> None:
        super().__init__()
        self.text_tower = text_tower
        self.image_tower = image_tower
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.text_key, self.image_key, self.group_key = text_key, image_key, group_key
        self.corpus: list[str] = []

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        for name in TOWERS:
            prepare = getattr(getattr(self, name), "prepare", None)
            if prepare is not None:
                prepare(datamodule)
        corpus = getattr(datamodule, "prompt_corpus", None)
        self.corpus = corpus() if corpus is not None else []

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.text_tower(batch[self.text_key]), self.image_tower(batch[self.image_key])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        text, image = self(batch)
        terms = self.loss(text, image, batch[self.group_key])
        if not torch.isfinite(terms["loss"]):
            raise TrainingError(f"non-finite contrastive loss at step {self.global_step}; lower optimizer.lr")
        self._log("train", terms, len(text))
        return terms["loss"]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate("val", batch)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate("test", batch)

    def _evaluate(self, stage: str, batch: dict[str, Any]) -> None:
        text, image = self(batch)
        groups = batch[self.group_key]
        terms = self.loss(text, image, groups)
        logits = self.loss.logits(text, image)
        ranked_first = logits.argmax(dim=1).tolist()
        terms["retrieval_accuracy"] = torch.tensor(
            sum(groups[i] == groups[j] for i, j in enumerate(ranked_first)) / len(groups))
        if self.corpus and self.text_key == self.group_key:
            prompts = self.loss.logits(self.text_tower(self.corpus), image).argmax(dim=0).tolist()
            terms["zero_shot_accuracy"] = torch.tensor(
                sum(self.corpus[k] == prompt for k, prompt in zip(prompts, batch[self.text_key])) / len(groups))
        self._log(stage, terms, len(text))

    def _log(self, stage: str, terms: dict[str, torch.Tensor], batch_size: int) -> None:
        training = stage == "train"
        options = {"on_step": training, "on_epoch": True, "batch_size": batch_size, "sync_dist": not training}
        self.log(f"{stage}/loss", terms["loss"], prog_bar=True, **options)
        self.log_dict({f"{stage}/{name}": value for name, value in terms.items() if name != "loss"}, **options)
        if training:
            self.log("train/logit_scale", self.loss.logit_scale.detach(), on_step=True, on_epoch=False)

    def configure_optimizers(self) -> Any:
        return lightning_optimization(self.optimizer_factory, self.scheduler_factory, self,
                                      self.trainer.estimated_stepping_batches)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["exports"] = {name: getattr(self, name).export(f"{name}.") for name in TOWERS
                                 if hasattr(getattr(self, name), "export")}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        for name, exported in checkpoint.get("exports", {}).items():
            getattr(self, name).restore(exported)
