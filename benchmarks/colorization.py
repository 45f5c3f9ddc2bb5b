"""Latent-diffusion colorization: training step time and peak memory of the LDM, and colorization speed
(images/s) against sampler and steps.

    python benchmarks/colorization.py [--preset cpu|paper] [--batch 4] [--device cpu] [--threads 1]

`cpu`: the models of experiment=colorization_clip / colorization_vae / colorization_ldm as configured (64 px);
`paper`: of their _paper presets, the seed's sizes (860 M-parameter UNet, width-768 text encoder, Stable
Diffusion's VAE, 256 px; a GPU job).
Random weights: speed does not depend on them. A training step is forward + backward + AdamW step (the frozen
encoders run forward only); peak memory is torch's allocator peak on CUDA, the process's peak RSS on a CPU.
Colorization runs img2img at strength 0.8 (⌊0.8·steps⌋ UNet calls, two branches batched by guidance 7.5).
"""

import argparse
import resource
import time
from functools import partial

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig
from transformers import CLIPTextModel

from sarexp.config.locate import config_dir
from sarexp.config.model_options import network_node
from sarexp.config.schema import register_schema
from sarexp.diffusion.gaussian import gaussian_diffusion
from sarexp.diffusion.samplers import DDIMSampler, DPMSolverSampler
from sarexp.models.colorization.text import clip_text_config
from sarexp.models.colorization.tokenizer import PromptTokenizer
from sarexp.systems.latent_diffusion import LatentDiffusionSystem
from sarexp.systems.latent_encoders import FrozenEncoders

EXPERIMENTS = {"cpu": "", "paper": "_paper"}  # the suffix of the colorization_* experiment names


def preset_configs(preset: str) -> dict[str, DictConfig]:
    """The model configs of colorization_clip/vae/ldm (or their _paper presets), composed as a run would."""
    register_schema()
    configs = {}
    for stage in ("clip", "vae", "ldm"):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            configs[stage] = compose("config", overrides=[f"experiment=colorization_{stage}{EXPERIMENTS[preset]}"])
    return configs


PROMPTS = [f"Colorize the image, Region: {r}, Season: {s}" for r in ("tropical", "temperate", "arctic")
           for s in ("winter", "spring", "summer", "autumn")]


def build(configs: dict[str, DictConfig], device: torch.device) -> LatentDiffusionSystem:
    text = configs["clip"].model.text
    tokenizer = PromptTokenizer.from_corpus(PROMPTS, text.max_position_embeddings)
    text_model = CLIPTextModel(clip_text_config(
        vocab_size=64, hidden_size=text.hidden_size, max_position_embeddings=text.max_position_embeddings,
        num_attention_heads=text.num_attention_heads, num_hidden_layers=text.num_hidden_layers,
        intermediate_size=text.intermediate_size))
    vae = instantiate(network_node(configs["vae"].model))
    unet = instantiate(network_node(configs["ldm"].model))
    system = LatentDiffusionSystem(unet, gaussian_diffusion(1000, "scaled_linear"), partial(torch.optim.AdamW, lr=1e-4),
                                   None, None, encoders=FrozenEncoders(tokenizer, text_model, vae))
    return system.to(device)


def peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def batch(size: int, pixels: int, device: torch.device) -> dict:
    return {"sar": torch.rand(size, 1, pixels, pixels, device=device) * 2 - 1,
            "optical": torch.rand(size, 3, pixels, pixels, device=device) * 2 - 1,
            "prompt": [PROMPTS[i % len(PROMPTS)] for i in range(size)]}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_steps(system: LatentDiffusionSystem, data: dict, device: torch.device, repeats: int,
                amp: bool) -> float:
    optimizer = torch.optim.AdamW(system.net.parameters(), lr=1e-4)
    system.log = lambda *args, **kwargs: None  # no trainer attached
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    times = []
    for step in range(repeats + 1):
        sync(device)
        started = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss = system.training_step(data, step)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync(device)
        if step:  # the first step warms up the allocator and kernels
            times.append(time.perf_counter() - started)
    return sum(times) / len(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(EXPERIMENTS), default="cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--amp", action="store_true", help="mixed precision (fp16 on CUDA, bf16 on CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    configs = preset_configs(args.preset)
    pixels = int(configs["ldm"].data.image_size)
    system = build(configs, device)
    unet_params = sum(p.numel() for p in system.net.parameters()) / 1e6
    data = batch(args.batch, pixels, device)
    step = train_steps(system.train(), data, device, args.repeats, args.amp)
    print(f"preset {args.preset}: UNet {unet_params:.2f} M parameters, {pixels} px, batch {args.batch}, "
          f"{device}, {args.threads} thread(s), amp={args.amp}")
    print(f"training step: {step * 1000:.1f} ms, peak memory {peak_memory_mib(device):.0f} MiB")
    print(f"{'sampler':<22}{'steps':>6}{'UNet calls':>12}{'images/s':>10}")
    system.eval()
    for name, make in (("DDIM", lambda n: DDIMSampler(steps=n, spacing="trailing", clip_denoised=False)),
                       ("DPM-Solver++ 2M", lambda n: DPMSolverSampler(steps=n, spacing="trailing",
                                                                      lower_order_final="diffusers",
                                                                      clip_denoised=False))):
        for steps in (10, 25, 50):
            sampler = make(steps)
            sync(device)
            started = time.perf_counter()
            system.colorize(data["sar"], data["prompt"], sampler, 0.8, 7.5, torch.Generator().manual_seed(0))
            sync(device)
            speed = args.batch / (time.perf_counter() - started)
            print(f"{name:<22}{steps:>6}{sampler.last_nfe:>12}{speed:>10.2f}")


if __name__ == "__main__":
    main()
