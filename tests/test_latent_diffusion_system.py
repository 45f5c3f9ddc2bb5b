"""The latent-diffusion LightningModule on tiny networks: training with frozen encoders and EMA, the prompt
dropout rate, guided img2img colorization, weights-only checkpoints."""

import math
from functools import partial

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader

from ldm_helpers import batch, tiny_encoders, tiny_unet
from sarexp.diffusion.gaussian import GaussianDiffusion
from sarexp.diffusion.samplers import DDIMSampler, DPMSolverSampler
from sarexp.diffusion.schedules import make_betas
from sarexp.errors import ConfigError
from sarexp.systems.latent_diffusion import LatentDiffusionSystem
from sarexp.systems.latent_encoders import FrozenEncoders


def _system(monkeypatch, prompt_dropout: float = 0.1, unet=None) -> LatentDiffusionSystem:
    encoders = tiny_encoders()
    monkeypatch.setattr(FrozenEncoders, "from_checkpoints", classmethod(lambda cls, clip, vae: encoders))
    return LatentDiffusionSystem(
        net=unet or tiny_unet(), diffusion=GaussianDiffusion(make_betas("scaled_linear", 1000)),
        optimizer=partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.01), clip_checkpoint="clip.ckpt",
        vae_checkpoint="vae.ckpt", prompt_dropout=prompt_dropout, ema_decay=0.9,
    )


def _loader(count: int = 8) -> DataLoader:
    items = [batch(1, seed=i) for i in range(count)]
    rows = [{"sar": b["sar"][0], "optical": b["optical"][0], "prompt": b["prompt"][0]} for b in items]
    return DataLoader(rows, batch_size=4)


def test_the_unet_must_fit_the_encoders(monkeypatch):
    with pytest.raises(ConfigError, match="cross_attention_dim"):
        _system(monkeypatch, unet=tiny_unet(cross_attention_dim=24))
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="clip_checkpoint"):
        LatentDiffusionSystem(tiny_unet(), GaussianDiffusion(make_betas("scaled_linear", 10)), torch.optim.AdamW,
                              clip_checkpoint=None, vae_checkpoint=None)


def test_training_updates_unet_and_ema_only(tmp_path, monkeypatch):
    system = _system(monkeypatch)
    frozen = {k: v.clone() for k, v in system.encoders.state_dict().items()}
    ema_before = [p.clone() for p in system.ema_net.parameters()]
    net_before = [p.clone() for p in system.net.parameters()]
    trainer = pl.Trainer(max_steps=3, accumulate_grad_batches=2, gradient_clip_val=1.0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path, limit_val_batches=1)
    trainer.fit(system, _loader(), _loader(4))
    assert system.global_step == 3
    assert all(torch.equal(frozen[k], v) for k, v in system.encoders.state_dict().items())
    assert not system.encoders.text_model.training and not system.encoders.vae.training
    assert any(not torch.equal(a, b) for a, b in zip(net_before, system.net.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(ema_before, system.ema_net.parameters()))
    assert math.isfinite(trainer.callback_metrics["val/loss"].item())
    optimized = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert optimized == {id(p) for p in system.net.parameters()}


def test_observed_prompt_dropout_matches_the_setting(monkeypatch):
    for rate in (0.0, 0.1, 0.5):
        system = _system(monkeypatch, prompt_dropout=rate)
        count = 20000
        observed = system.dropped_prompts(count, torch.Generator().manual_seed(0)).float().mean().item()
        assert abs(observed - rate) <= 4 * math.sqrt(rate * (1 - rate) / count) + 1e-12
    prompts = batch(4)["prompt"]
    dropped = torch.tensor([True, False, True, False])
    context = system.encoders.context(prompts, dropped)
    null, kept = system.encoders.null_context(4), system.encoders.encode_text(prompts)
    torch.testing.assert_close(context[dropped], null[dropped])
    torch.testing.assert_close(context[~dropped], kept[~dropped])
    assert not torch.allclose(null[1], kept[1])


def test_training_step_logs_the_dropped_fraction(monkeypatch):
    system = _system(monkeypatch, prompt_dropout=0.5)
    logged = {}
    monkeypatch.setattr(system, "log", lambda name, value, **kw: logged.setdefault(name, []).append(float(value)))
    torch.manual_seed(0)
    for _ in range(25):
        system.training_step(batch(8), 0)
    observed = sum(logged["train/prompt_dropped"]) / 25
    assert abs(observed - 0.5) < 4 * math.sqrt(0.25 / 200)


def test_colorize_is_guided_img2img_from_the_sar_latent(monkeypatch):
    system = _system(monkeypatch).eval()
    sample = batch(2)
    sar, prompts = sample["sar"], sample["prompt"]
    for sampler in (DDIMSampler(steps=10, spacing="trailing", clip_denoised=False),
                    DPMSolverSampler(steps=10, spacing="trailing", clip_denoised=False)):
        images = system.colorize(sar, prompts, sampler, 0.8, 7.5, torch.Generator().manual_seed(1))
        assert images.shape == (2, 3, 32, 32) and images.abs().max() <= 1.0
        assert sampler.last_nfe == 8
        again = system.colorize(sar, prompts, sampler, 0.8, 7.5, torch.Generator().manual_seed(1))
        torch.testing.assert_close(images, again)
    # strength 0 keeps the init latent: the decoded SAR latent
    expected = system.encoders.decode(system.encoders.condition_latent(sar))
    torch.testing.assert_close(system.colorize(sar, prompts, DDIMSampler(steps=10), 0.0), expected)


def test_checkpoint_loads_weights_only(tmp_path, monkeypatch):
    system = _system(monkeypatch)
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path, limit_val_batches=0)
    trainer.fit(system, _loader(4))
    trainer.save_checkpoint(tmp_path / "ldm.ckpt")
    state = torch.load(tmp_path / "ldm.ckpt", map_location="cpu", weights_only=True)
    fresh = _system(monkeypatch)
    fresh.load_state_dict(state["state_dict"])
    for a, b in zip(fresh.ema_net.parameters(), system.ema_net.parameters()):
        assert torch.equal(a, b)
