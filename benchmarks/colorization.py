"""Latent-diffusion colorization: training step time and peak memory of the LDM, and colorization speed
(images/s) against sampler and steps.

    python benchmarks/colorization.py [--preset cpu|paper] [--batch 4] [--device cpu] [--threads 1]

`cpu`: the CPU-sized defaults of colorization_clip / colorization_vae / colorization_ldm at 64 px; `paper`: the
seed's sizes (860 M-parameter UNet, width-768 text encoder, Stable Diffusion's VAE, 256 px; a GPU job).
Random weights: speed does not depend on them. A training step is forward + backward + AdamW step (the frozen
encoders run forward only); peak memory is torch's allocator peak on CUDA, the process's peak RSS on a CPU.
Colorization runs img2img at strength 0.8 (⌊0.8·steps⌋ UNet calls, two branches batched by guidance 7.5).
"""

import argparse
import resource
import time
from functools import partial

import torch
from diffusers import AutoencoderKL
from transformers import CLIPTextModel

from sarexp.diffusion.gaussian import gaussian_diffusion
from sarexp.diffusion.samplers import DDIMSampler, DPMSolverSampler
from sarexp.models.colorization.text import clip_text_config
from sarexp.models.colorization.tokenizer import PromptTokenizer
from sarexp.models.ldm_unet import ldm_unet
from sarexp.systems.latent_diffusion import LatentDiffusionSystem
from sarexp.systems.latent_encoders import FrozenEncoders

PRESETS = {
    "cpu": {"pixels": 64, "text": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                                   "max_position_embeddings": 32},
            "vae": {"block_out_channels": (32, 64, 64, 64), "layers_per_block": 1},
            "unet": {"block_out_channels": [32, 64], "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
                     "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "layers_per_block": 1,
                     "attention_head_dim": 4, "norm_num_groups": 16}},
    "paper": {"pixels": 256, "text": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                                      "max_position_embeddings": 77},
              "vae": {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2},
              "unet": {"block_out_channels": [320, 640, 1280, 1280],
                       "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
                       "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, "layers_per_block": 2,
                       "attention_head_dim": 8, "norm_num_groups": 32}},
}
PROMPTS = [f"Colorize the image, Region: {r}, Season: {s}" for r in ("tropical", "temperate", "arctic")
           for s in ("winter", "spring", "summer", "autumn")]


def build(preset: dict, device: torch.device) -> LatentDiffusionSystem:
    text = preset["text"]
    tokenizer = PromptTokenizer.from_corpus(PROMPTS, text["max_position_embeddings"])
    text_model = CLIPTextModel(clip_text_config(vocab_size=64, **text))
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, sample_size=preset["pixels"],
                        **preset["vae"])
    unet = ldm_unet(in_channels=8, out_channels=4, cross_attention_dim=text["hidden_size"],
                    sample_size=preset["pixels"] // 8, **preset["unet"])
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
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--amp", action="store_true", help="mixed precision (fp16 on CUDA, bf16 on CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    preset = PRESETS[args.preset]
    system = build(preset, device)
    unet_params = sum(p.numel() for p in system.net.parameters()) / 1e6
    data = batch(args.batch, preset["pixels"], device)
    step = train_steps(system.train(), data, device, args.repeats, args.amp)
    print(f"preset {args.preset}: UNet {unet_params:.2f} M parameters, {preset['pixels']} px, batch {args.batch}, "
          f"{device}, {args.threads} thread(s), amp={args.amp}")
    print(f"training step: {step * 1000:.1f} ms, peak memory {peak_memory_mib(device):.0f} MiB")
    print(f"{'sampler':<22}{'steps':>6}{'UNet calls':>12}{'images/s':>10}")
    system.eval()
    for name, make in (("DDIM", lambda n: DDIMSampler(steps=n, spacing="trailing", clip_denoised=False)),
                       ("DPM-Solver++ 2M", lambda n: DPMSolverSampler(steps=n, spacing="trailing",
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
