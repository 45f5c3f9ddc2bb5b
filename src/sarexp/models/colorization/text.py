"""The colorization text encoder: transformers' ``CLIPTextModel`` sized from YAML, its prompt tokenizer, loaders.

- :func:`clip_text_config`: the seed's ``clip_config`` (n_vocab, n_embd, max_length, n_head, n_layers) as a
  ``CLIPTextConfig`` whose pad / bos / eos ids are those of the word tokenizer (eos 3: pooling at the
  end-of-text token).
- :class:`PromptTextTower`: tokenizer + text model + linear projection, the text side of the contrastive
  stage; its tokenizer is built from the data module's prompt corpus when training starts (or comes with
  ``pretrained``). It exports what :func:`load_text_encoder` needs into the Lightning checkpoint.
- :func:`load_text_encoder`: ``(tokenizer, text_model)`` from a colorization_clip checkpoint (a ``.ckpt``,
  read with ``weights_only=True``: it stores the tokenizer JSON and the text config as plain strings and
  dicts) or from a local diffusers / transformers folder (``text_encoder/`` + ``tokenizer/``, or both in the
  folder itself), read with ``local_files_only=True``.
- :func:`encode_prompts`: the per-token states (B, L, width) a UNet cross-attends to.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModel

from sarexp.errors import ConfigError
from sarexp.models.colorization.loading import first_line, load_weights, read_export
from sarexp.models.colorization.tokenizer import END_ID, PAD_ID, START_ID, PromptTokenizer


def clip_text_config(vocab_size: int = 1000, hidden_size: int = 768, max_position_embeddings: int = 77,
                     num_attention_heads: int = 12, num_hidden_layers: int = 12, intermediate_size: int | None = None,
                     dropout: float = 0.0, attention_dropout: float = 0.0) -> CLIPTextConfig:
    """A CLIP text transformer at the given sizes (intermediate size 4 × width unless set) for the word tokenizer."""
    if hidden_size % num_attention_heads:
        raise ConfigError(f"model.text.hidden_size ({hidden_size}) must be divisible by "
                          f"model.text.num_attention_heads ({num_attention_heads})")
    return CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, max_position_embeddings=max_position_embeddings,
        num_attention_heads=num_attention_heads, num_hidden_layers=num_hidden_layers,
        intermediate_size=intermediate_size or 4 * hidden_size, dropout=dropout, attention_dropout=attention_dropout,
        projection_dim=hidden_size, pad_token_id=PAD_ID, bos_token_id=START_ID, eos_token_id=END_ID,
    )


def encode_prompts(tokenizer: PromptTokenizer, text_model: CLIPTextModel, prompts: Sequence[str]) -> torch.Tensor:
    """Last hidden states (B, max_length, width) of the prompts, as Stable Diffusion conditions its UNet."""
    device = next(text_model.parameters()).device
    tokens = {key: value.to(device) for key, value in tokenizer(prompts).items()}
    return text_model(input_ids=tokens["input_ids"]).last_hidden_state


class PromptTextTower(nn.Module):
    """Prompts → L2-normalisable embeddings: CLIP text model pooled at end-of-text, then a linear projection."""

    def __init__(self, embed_dim: int = 128, vocab_size: int = 1000, hidden_size: int = 768,
                 max_position_embeddings: int = 77, num_attention_heads: int = 12, num_hidden_layers: int = 12,
                 intermediate_size: int | None = None, dropout: float = 0.0, pretrained: str | None = None) -> None:
        super().__init__()
        self.tokenizer: PromptTokenizer | None = None
        if pretrained:
            self.tokenizer, self.text_model = load_text_encoder(pretrained, key="model.pretrained")
        else:
            config = clip_text_config(vocab_size, hidden_size, max_position_embeddings, num_attention_heads,
                                      num_hidden_layers, intermediate_size, dropout)
            self.text_model = CLIPTextModel(config)
        self.projection = nn.Linear(self.text_model.config.hidden_size, embed_dim, bias=False)

    def prepare(self, datamodule: Any) -> None:
        """Build the word tokenizer from the data module's prompts, unless one came with the weights."""
        if self.tokenizer is not None:
            return
        corpus = getattr(datamodule, "prompt_corpus", None)
        if corpus is None:
            raise ConfigError(f"{type(datamodule).__name__} has no prompt_corpus(); the text tower needs the "
                              f"colorization data (data=sen12_colorization)")
        self.set_tokenizer(PromptTokenizer.from_corpus(corpus(), self.text_model.config.max_position_embeddings))

    def set_tokenizer(self, tokenizer: PromptTokenizer) -> None:
        if tokenizer.vocab_size > self.text_model.config.vocab_size:
            raise ConfigError(f"the prompts need {tokenizer.vocab_size} tokens but model.text.vocab_size is "
                              f"{self.text_model.config.vocab_size}; raise it")
        self.tokenizer = tokenizer

    def forward(self, prompts: Sequence[str]) -> torch.Tensor:
        if self.tokenizer is None:
            raise RuntimeError("PromptTextTower.prepare() must run before encoding prompts")
        tokens = {key: value.to(self.projection.weight.device) for key, value in self.tokenizer(prompts).items()}
        pooled = self.text_model(**tokens).pooler_output
        return self.projection(pooled)

    def export(self, prefix: str) -> dict[str, Any]:
        """Plain strings and dicts (weights_only-safe) that rebuild tokenizer and text model from a checkpoint."""
        if self.tokenizer is None:
            raise RuntimeError("PromptTextTower.prepare() must run before its checkpoint is written")
        return {"tokenizer": self.tokenizer.state(), "config": json.loads(self.text_model.config.to_json_string()),
                "state_dict_prefix": f"{prefix}text_model."}

    def restore(self, exported: dict[str, Any]) -> None:
        self.set_tokenizer(PromptTokenizer.from_state(exported["tokenizer"]))


def load_text_encoder(path: str | Path, key: str = "clip_checkpoint") -> tuple[PromptTokenizer, CLIPTextModel]:
    """``(tokenizer, text_model)`` from a colorization_clip checkpoint or a local diffusers/transformers folder."""
    file = Path(path).expanduser()
    if file.is_dir():
        return _from_folder(file, key)
    if not file.is_file():
        raise ConfigError(f"{key}={path}: no such file or folder; pass a colorization_clip checkpoint "
                          f"(<run dir>/checkpoints/last.ckpt) or a diffusers folder with text_encoder/ and tokenizer/")
    exported, state = read_export(file, key, "tokenizer", "colorization_clip")
    text_model = CLIPTextModel(CLIPTextConfig(**exported["config"]))
    load_weights(text_model, state, key, file)
    return PromptTokenizer.from_state(exported["tokenizer"]), text_model.eval()


def _from_folder(folder: Path, key: str) -> tuple[PromptTokenizer, CLIPTextModel]:
    model_dir = folder / "text_encoder" if (folder / "text_encoder").is_dir() else folder
    tokenizer_dir = folder / "tokenizer" if (folder / "tokenizer").is_dir() else folder
    try:
        text_model = CLIPTextModel.from_pretrained(model_dir, local_files_only=True)
        backend = AutoTokenizer.from_pretrained(tokenizer_dir, local_files_only=True)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{key}={folder}: cannot load a CLIP text encoder and tokenizer from {model_dir} and "
                          f"{tokenizer_dir} ({first_line(error)})") from None
    max_length = min(int(backend.model_max_length), text_model.config.max_position_embeddings)
    return PromptTokenizer.from_transformers(backend, max_length), text_model.eval()
