"""Colorization stage 1: tokenizer, CLIP text model pooling, the contrastive loss against transformers, loaders."""

import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import CLIPConfig, CLIPModel, CLIPTextModel, PreTrainedTokenizerFast

from sarexp.data.synthetic.colorization import REGIONS, SEASONS
from sarexp.errors import ConfigError
from sarexp.losses.contrastive import SymmetricInfoNCE, group_targets
from sarexp.models.colorization.image_encoder import ImageEncoder
from sarexp.models.colorization.text import PromptTextTower, clip_text_config, encode_prompts, load_text_encoder
from sarexp.models.colorization.tokenizer import END_ID, PAD_ID, START_ID, UNK_ID, PromptTokenizer
from sarexp.systems.contrastive import ContrastiveSystem

TEMPLATE = "Colorize the image, Region: {region}, Season: {season}"
CORPUS = [TEMPLATE.format(region=r, season=s) for r in REGIONS for s in SEASONS]
TINY_TEXT = dict(vocab_size=40, hidden_size=16, max_position_embeddings=20, num_attention_heads=2,
                 num_hidden_layers=2)


def words(prompt: str) -> str:
    """The normalised words of a prompt, as the Whitespace pre-tokenizer splits them."""
    return " ".join(re.findall(r"\w+|[^\w\s]+", prompt.lower()))


def test_tokenizer_round_trip_padding_and_special_tokens() -> None:
    tokenizer = PromptTokenizer.from_corpus(CORPUS, max_length=20)
    encoded = tokenizer([CORPUS[5], "", "Colorize the moon"])
    ids = encoded["input_ids"]
    assert ids.shape == (3, 20) and ids.dtype == torch.long
    length = len(words(CORPUS[5]).split()) + 2
    assert ids[0, 0] == START_ID and ids[0, length - 1] == END_ID and (ids[0, length:] == PAD_ID).all()
    assert encoded["attention_mask"][0].sum() == length
    assert ids[1, :3].tolist() == [START_ID, END_ID, PAD_ID]                 # the null prompt of guidance
    assert UNK_ID in ids[2].tolist()                                         # "moon" is not in the data
    for prompt in CORPUS:                                                    # decode ∘ encode = normalisation
        first = tokenizer([prompt])["input_ids"][0]
        text = tokenizer.decode(first.tolist())
        assert text == words(prompt)
        assert torch.equal(tokenizer([text])["input_ids"][0], first)
    restored = PromptTokenizer.from_state(tokenizer.state())
    assert torch.equal(restored(CORPUS)["input_ids"], tokenizer(CORPUS)["input_ids"])
    long = tokenizer([" ".join(["image"] * 50)])["input_ids"][0]
    assert long[0] == START_ID and long[-1] == END_ID                        # truncation keeps the end token


def test_pooled_state_is_taken_at_the_end_of_text_token() -> None:
    torch.manual_seed(0)
    tokenizer = PromptTokenizer.from_corpus(CORPUS, max_length=20)
    model = CLIPTextModel(clip_text_config(**TINY_TEXT)).eval()
    tokens = tokenizer([CORPUS[0], "summer", ""])
    with torch.no_grad():
        out = model(**tokens)
    ends = (tokens["input_ids"] == END_ID).int().argmax(dim=1)
    assert ends.tolist() == [12, 2, 1]
    assert torch.allclose(out.pooler_output, out.last_hidden_state[torch.arange(3), ends])
    largest = tokens["input_ids"].argmax(dim=1)                              # transformers' legacy rule
    assert not torch.allclose(out.pooler_output[0], out.last_hidden_state[0, largest[0]])
    padded_differently = tokens["input_ids"].clone()
    padded_differently[1, 5:] = 7                                            # tokens after the end token
    with torch.no_grad():
        assert torch.allclose(model(input_ids=padded_differently).pooler_output[1], out.pooler_output[1], atol=1e-6)


def test_loss_equals_transformers_clip_loss_when_all_prompts_differ() -> None:
    torch.manual_seed(1)
    config = CLIPConfig(text_config=dict(vocab_size=30, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, max_position_embeddings=8, eos_token_id=3),
                        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                           num_attention_heads=2, image_size=8, patch_size=4),
                        projection_dim=8)
    model = CLIPModel(config).eval()
    with torch.no_grad():
        model.logit_scale.fill_(1.7)
        ids = torch.randint(4, 30, (6, 8))
        ids[:, -1] = 3
        out = model(input_ids=ids, pixel_values=torch.randn(6, 3, 8, 8), return_loss=True)
        ours = SymmetricInfoNCE(logit_scale_init=1.7)
        terms = ours(out.text_embeds, out.image_embeds, groups=[f"prompt {i}" for i in range(6)])
    assert torch.allclose(terms["loss"], out.loss, atol=1e-6)
    assert torch.allclose(ours.logits(out.text_embeds, out.image_embeds), out.logits_per_text, atol=1e-5)
    assert math.isclose(SymmetricInfoNCE().logit_scale.item(), math.log(1 / 0.07), rel_tol=1e-6)


def test_samples_sharing_a_prompt_are_positives_of_each_other() -> None:
    torch.manual_seed(2)
    text, image = torch.randn(5, 4), torch.randn(5, 4)
    groups = ["a", "b", "a", "c", "a"]
    targets = group_targets(groups)
    assert torch.allclose(targets.sum(1), torch.ones(5)) and targets[0, 2] == pytest.approx(1 / 3)
    loss = SymmetricInfoNCE(logit_scale_init=0.5)
    logits = loss.logits(text, image).detach()
    naive = 0.0
    for matrix in (logits, logits.T):                                       # −mean over positives of log p
        log_p = matrix.log_softmax(dim=1)
        naive += sum(-sum(log_p[i, j] for j in range(5) if groups[j] == groups[i]) / groups.count(groups[i])
                     for i in range(5)) / 5
    assert loss(text, image, groups)["loss"].item() == pytest.approx(naive.item() / 2, abs=1e-6)


def tiny_system(corpus: list[str]) -> ContrastiveSystem:
    text = PromptTextTower(embed_dim=8, **TINY_TEXT)
    system = ContrastiveSystem(text, ImageEncoder(channels=[8, 8], embed_dim=8), SymmetricInfoNCE(),
                               optimizer=torch.optim.AdamW)
    text.prepare(SimpleNamespace(prompt_corpus=lambda: corpus))
    return system


def test_text_encoder_reloads_from_a_checkpoint_and_a_folder(tmp_path: Path) -> None:
    torch.manual_seed(3)
    system = tiny_system(CORPUS)
    checkpoint = {"state_dict": system.state_dict()}
    system.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "clip.ckpt")
    tokenizer, model = load_text_encoder(tmp_path / "clip.ckpt")
    with torch.no_grad():
        ids = system.text_tower.tokenizer(CORPUS[:3])["input_ids"]              # no mask: SD's conditioning
        expected = system.text_tower.text_model.eval()(input_ids=ids).last_hidden_state
        assert torch.allclose(encode_prompts(tokenizer, model, CORPUS[:3]), expected)
    assert model.config.eos_token_id == END_ID and tokenizer.max_length == 20

    folder = tmp_path / "sd"
    model.save_pretrained(folder / "text_encoder")
    PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend, bos_token="<|startoftext|>",
                            eos_token="<|endoftext|>", pad_token="<|pad|>", unk_token="<|unk|>",
                            model_max_length=20).save_pretrained(folder / "tokenizer")
    folder_tokenizer, folder_model = load_text_encoder(folder)
    assert torch.equal(folder_tokenizer(CORPUS)["input_ids"], tokenizer(CORPUS)["input_ids"])
    with torch.no_grad():
        assert torch.allclose(encode_prompts(folder_tokenizer, folder_model, CORPUS[:3]), expected, atol=1e-6)

    tower = PromptTextTower(embed_dim=8, pretrained=str(tmp_path / "clip.ckpt"))  # model.pretrained
    assert tower.tokenizer is not None and tower.text_model.config.hidden_size == 16


def test_bad_text_encoder_paths_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="clip_checkpoint=.*missing.ckpt: no such file"):
        load_text_encoder(tmp_path / "missing.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ConfigError, match="not a colorization_clip checkpoint"):
        load_text_encoder(tmp_path / "other.ckpt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="cannot load a CLIP text encoder"):
        load_text_encoder(tmp_path / "empty")
    with pytest.raises(ConfigError, match="model.text.vocab_size"):
        PromptTextTower(embed_dim=8, **{**TINY_TEXT, "vocab_size": 10}).prepare(
            SimpleNamespace(prompt_corpus=lambda: CORPUS))


def test_warmup_steps_set_the_linear_warmup_in_optimizer_steps() -> None:
    from sarexp.optim.schedulers import warmup_cosine

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = warmup_cosine(optimizer, total_steps=100, warmup_fraction=0.5, min_lr_ratio=0.0, warmup_steps=10)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[:10] == pytest.approx([(step + 1) / 10 for step in range(10)])
    assert rates[10] == pytest.approx(1.0) and rates[55] == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 90)))
    with pytest.raises(ConfigError, match="scheduler.warmup_steps"):
        warmup_cosine(optimizer, total_steps=10, warmup_steps=-1)
