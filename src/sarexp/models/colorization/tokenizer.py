"""A word-level prompt tokenizer built from the dataset's prompts, and one interface over it and HF tokenizers.

The colorization prompts come from a template over a few metadata values, so a word-level vocabulary built
from every prompt the data can produce is complete; unknown words map to ``<|unk|>``. Text is lower-cased
and split on whitespace and punctuation (``tokenizers``' ``Whitespace`` pre-tokenizer). Special tokens
have fixed ids, whatever the corpus: pad 0, unk 1, start 2, end-of-text 3 — so a text model can be built
before the data is read, and its ``eos_token_id`` (3) makes transformers' CLIP pool at the end-of-text
token (not at the largest id, its legacy rule for ``eos_token_id == 2``). Every prompt is encoded as
``<|startoftext|> words <|endoftext|>``, truncated to ``max_length`` and padded to it (as Stable Diffusion
pads to 77); the empty prompt "" (the unconditional prompt of classifier-free guidance) is start, end, pads.
"""

from collections.abc import Sequence
from typing import Any

import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

from sarexp.errors import ConfigError

PAD, UNK, START, END = "<|pad|>", "<|unk|>", "<|startoftext|>", "<|endoftext|>"
SPECIAL_TOKENS = (PAD, UNK, START, END)
PAD_ID, UNK_ID, START_ID, END_ID = range(4)


def build_word_tokenizer(corpus: Sequence[str], max_length: int) -> Tokenizer:
    """A ``tokenizers`` WordLevel tokenizer trained on ``corpus`` that wraps each prompt in start / end tokens."""
    if max_length < 2:
        raise ConfigError(f"the tokenizer's max_length must be >= 2 (start and end tokens), got {max_length}")
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=list(SPECIAL_TOKENS), min_frequency=1, show_progress=False)
    tokenizer.train_from_iterator(list(corpus), trainer)
    ids = {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}
    if ids != dict(zip(SPECIAL_TOKENS, range(4))):
        raise RuntimeError(f"special token ids moved: {ids}")
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{START} $A {END}", special_tokens=[(START, START_ID), (END, END_ID)]
    )
    return tokenizer


class PromptTokenizer:
    """Prompts → ``input_ids`` and ``attention_mask`` (B, max_length) int64 tensors, padded to ``max_length``.

    Wraps a ``tokenizers.Tokenizer``: the word-level one of :func:`build_word_tokenizer`, or the fast backend
    of a transformers tokenizer read from a diffusers folder's ``tokenizer/`` (e.g. Stable Diffusion's CLIP
    BPE tokenizer, :meth:`from_transformers`). :meth:`state` (plain strings and ints) is what checkpoints keep.
    """

    def __init__(self, backend: Tokenizer, max_length: int, pad_id: int = PAD_ID, start_id: int = START_ID,
                 end_id: int = END_ID) -> None:
        self.backend = backend
        self.max_length = max_length
        self.pad_id, self.start_id, self.end_id = pad_id, start_id, end_id
        backend.enable_truncation(max_length)
        backend.enable_padding(pad_id=pad_id, pad_token=backend.id_to_token(pad_id) or PAD, length=max_length)

    @classmethod
    def from_corpus(cls, corpus: Sequence[str], max_length: int) -> "PromptTokenizer":
        return cls(build_word_tokenizer(corpus, max_length), max_length)

    @classmethod
    def from_transformers(cls, tokenizer: Any, max_length: int) -> "PromptTokenizer":
        """The fast backend of a transformers tokenizer (pads with its pad token, else its end token)."""
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if not isinstance(backend, Tokenizer):
            raise ConfigError(f"{type(tokenizer).__name__} has no fast (tokenizers) backend; install tokenizers "
                              f"or save the folder's tokenizer as tokenizer.json")
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        return cls(Tokenizer.from_str(backend.to_str()), max_length, pad, tokenizer.bos_token_id,
                   tokenizer.eos_token_id)

    def state(self) -> dict[str, Any]:
        """Plain values (weights_only-safe) that :meth:`from_state` turns back into this tokenizer."""
        return {"json": self.backend.to_str(), "max_length": self.max_length, "pad_id": self.pad_id,
                "start_id": self.start_id, "end_id": self.end_id}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> "PromptTokenizer":
        return cls(Tokenizer.from_str(state["json"]), int(state["max_length"]), int(state["pad_id"]),
                   int(state["start_id"]), int(state["end_id"]))

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    def __call__(self, prompts: Sequence[str] | str) -> dict[str, torch.Tensor]:
        encodings = self.backend.encode_batch([prompts] if isinstance(prompts, str) else list(prompts))
        return {"input_ids": torch.tensor([e.ids for e in encodings], dtype=torch.long),
                "attention_mask": torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)}

    def decode(self, ids: Sequence[int]) -> str:
        """The text of one id sequence, special tokens dropped (words joined by single spaces here)."""
        return self.backend.decode(list(ids), skip_special_tokens=True)
