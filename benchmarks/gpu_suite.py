"""One command, one table: speed of every sarexp system on one GPU (≤ 8 min), or a tiny smoke run on CPU.

    python benchmarks/gpu_suite.py                 # CUDA found: the GPU sizes below
    python benchmarks/gpu_suite.py --cpu-smoke     # (automatic without CUDA) tiny sizes, seconds per case
    python benchmarks/gpu_suite.py --cases s4d_layer pdm_unet --compile-on-cpu

Cases are a registry (`@case(name, modules)`): one small function per system that returns table rows. A
case whose modules are not importable is listed as skipped, so a new system adds one function here.
`--budget-s` bounds the whole run: cases not started when it is spent are listed as skipped (scripts/gpu_check.sh
gives the suite what the GPU session has left). HSI runs the seed's setting (batch 20, 128-px patches) for
MST++ and the Sinkhorn-GAN; colorization the `_paper` LDM's training step and its img2img sampling (50 steps).
Training cases build the data module and the system
from the experiment's config through sarexp's own builders (`model.compile`, `trainer.precision` included),
then time Lightning training steps on a fixed batch taken from the real loader, so the step rate is what
the device consumes; the loader is timed alone over real batches, so a starving loader shows as
`loader/device` < 1. GPU busy: NVML utilisation sampled during the timed steps when pynvml is installed,
else the share of wall time the CUDA stream spent inside the timed steps (CUDA events; an upper bound).
"""

import argparse
import importlib.util
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_measure import Row, batch_items, compose, largest_fitting, timed, train_rate  # noqa: E402

CASES: dict[str, tuple[tuple[str, ...], Callable[["Scale"], list[Row]]]] = {}
COLUMNS = ("case", "variant", "batch", "ms/step", "items/s", "peak GiB", "GPU busy %", "loader items/s",
           "loader/device", "note")


def case(name: str, modules: tuple[str, ...]) -> Callable:
    """Register `function(scale) -> rows` under `name`; it runs only when all `modules` are importable."""
    def register(function: Callable[["Scale"], list[Row]]) -> Callable[["Scale"], list[Row]]:
        CASES[name] = (modules, function)
        return function
    return register


@dataclass
class Scale:
    """Sizes of one run: the GPU suite or the CPU smoke test."""

    device: str
    workdir: Path
    steps: int
    warmup: int
    compile: bool
    s4d_lengths: tuple[int, ...]
    s4d_shape: tuple[int, int, int]          # batch, d_model, state size
    ssm4sar: list[str]
    mixmae: list[str]
    mixmae_batch: int
    pdm: list[str]
    sampler_steps: dict[str, int]
    loader_batches: int
    hsi: list[str]                           # data size of the HSI cases (the seed's: 128-px patches)
    hsi_mstpp: list[str]
    hsi_gan: list[str]
    hsi_batch: int
    colorization: list[str]                  # data size of the colorization cases
    clip: list[str]                          # the stages that give the LDM its text encoder and VAE
    vae: list[str]
    ldm: list[str]
    ldm_batch: int
    img2img_steps: int


def gpu_scale(workdir: Path, steps: int) -> Scale:
    return Scale(
        device="cuda", workdir=workdir, steps=steps, warmup=3, compile=True,
        s4d_lengths=(1024, 2048, 4096, 8192, 10_000, 16_384, 32_768, 65_536), s4d_shape=(16, 32, 64),
        ssm4sar=["data.simulator.scenes={training:2,validation:1}"],
        mixmae=["model=mixmim_base", "data.simulator.patches={train:512,validation:8,test:8}"], mixmae_batch=256,
        pdm=["data.image_size=128", "model.model_channels=128", "model.num_res_blocks=3",
             "model.channel_mult=[1,1,2,3,4]", "model.attention_resolutions=[16,8]", "model.dropout=0.0",
             "data.generator.counts={train:8,val:2,test:2}", "data.batch_size=16"],
        sampler_steps={"DDPM respaced": 100, "DDIM": 50, "DPM-Solver++ 2M": 20}, loader_batches=8,
        hsi=["data.synthetic=true", "data.simulator.scenes={train:2,validation:1,test:1}", "data.num_workers=2"],
        hsi_mstpp=[], hsi_gan=[], hsi_batch=20,
        colorization=["data.simulator.scenes=4", "data.simulator.patches_per_scene=4"],
        clip=[], vae=[], ldm=[], ldm_batch=4, img2img_steps=50)


def cpu_scale(workdir: Path, compile_on_cpu: bool) -> Scale:
    return Scale(
        device="cpu", workdir=workdir, steps=2, warmup=1, compile=compile_on_cpu,
        s4d_lengths=(256, 10_000), s4d_shape=(1, 4, 8),
        ssm4sar=["data.simulator.n_azimuth=256", "data.simulator.n_range=32", "data.simulator.chunks=[128,16]",
                 "data.simulator.scenes={training:1,validation:1}", "data.simulator.point_targets=2",
                 "data.patch_length=64", "data.stride=64", "data.batch_size=4", "model.d_model=8",
                 "model.num_layers=1", "model.hidden_state_size=8"],
        mixmae=["data.simulator.patches={train:4,validation:2,test:2}"], mixmae_batch=2,
        pdm=["data.image_size=16", "model.model_channels=8", "data.generator.counts={train:1,val:1,test:1}",
             "data.batch_size=2", "diffusion.steps=50"],
        sampler_steps={"DDPM respaced": 2, "DDIM": 2, "DPM-Solver++ 2M": 2}, loader_batches=2,
        hsi=["data.synthetic=true", "data.simulator.scenes={train:1,validation:1,test:1}", "data.simulator.height=32",
             "data.simulator.width=40", "data.patch_size=16", "data.stride=16", "data.num_workers=0"],
        hsi_mstpp=["model.stage=1"],
        hsi_gan=["model.dim=8", "model.noise_embed_dim=8", "model.depths=[1,1,1]", "model.splits=[4,4,8]",
                 "system.discriminator.dim=8", "system.discriminator.stages=2", "system.adversarial.iters=4"],
        hsi_batch=2,
        colorization=["data.image_size=32", "data.simulator.scenes=4", "data.simulator.patches_per_scene=2"],
        clip=["model.embed_dim=8", "model.text.hidden_size=16", "model.text.num_hidden_layers=1",
              "model.text.num_attention_heads=2", "model.image.channels=[8,16]"],
        vae=["model.block_out_channels=[8,8,8,8]", "model.layers_per_block=1", "model.norm_num_groups=4"],
        ldm=["model.block_out_channels=[16,32]", "model.down_block_types=[CrossAttnDownBlock2D,DownBlock2D]",
             "model.up_block_types=[UpBlock2D,CrossAttnUpBlock2D]", "model.layers_per_block=1",
             "model.attention_head_dim=2", "model.cross_attention_dim=16", "model.norm_num_groups=8",
             "trainer.precision=bf16-mixed"],
        ldm_batch=2, img2img_steps=3)


# --- cases ---------------------------------------------------------------------------------------------


@case("s4d_layer", modules=("sarexp.models.s4d",))
def s4d_layer(scale: Scale) -> list[Row]:
    """One S4D layer forward+backward per length and kernel backend (keops where it compiles)."""
    from sarexp.models.keops_vandermonde import keops_available, keops_unavailable_reason
    from sarexp.models.s4d import S4DLayer

    batch, channels, state = scale.s4d_shape
    rows = []
    for backend in ("torch", "keops"):
        if backend == "keops" and not keops_available():
            rows.append({"variant": "keops", "note": f"skipped: {keops_unavailable_reason()}"})
            continue
        layer = S4DLayer(channels, state_size=state, kernel_backend=backend).to(scale.device)
        for length in scale.s4d_lengths:
            u = torch.randn(batch, channels, length, device=scale.device, requires_grad=True)

            def step() -> None:
                layer.zero_grad(set_to_none=True)
                layer(u).sum().backward()

            if scale.device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            seconds = timed(step, scale.device, max(1, scale.steps))
            rows.append({"variant": f"{backend} L={length}", "batch": batch, "ms/step": 1e3 * seconds,
                         "items/s": batch / seconds,
                         "peak GiB": torch.cuda.max_memory_allocated() / 2**30 if scale.device == "cuda" else None})
    return rows


@case("ssm4sar_train", modules=("sarexp.models.s4d", "sarexp.systems.regression"))
def ssm4sar_train(scale: Scale) -> list[Row]:
    row = train_rate(["experiment=ssm4sar", *scale.ssm4sar], scale, 16 if scale.device == "cuda" else 4)
    return [{"variant": "fp32", **row}]


@case("mixmae_pretrain", modules=("sarexp.models.mixmim.pretrain", "sarexp.systems.masked_pretraining"))
def mixmae_pretrain(scale: Scale) -> list[Row]:
    """SAR-W-MixMAE pretraining: fp32 / bf16-mixed, eager / torch.compile, at the seed's batch or less."""
    rows = []
    for precision in ("32-true", "bf16-mixed"):
        for compiled in (False, True):
            variant = f"{precision}{' compiled' if compiled else ''}"
            if compiled and not scale.compile:
                rows.append({"variant": variant, "note": "skipped on CPU (--compile-on-cpu)"})
                continue
            overrides = ["experiment=mixmae_benv1", *scale.mixmae, f"trainer.precision={precision}",
                         f"model.compile={str(compiled).lower()}"]
            row = largest_fitting(scale.mixmae_batch, lambda batch: train_rate(overrides, scale, batch))
            rows.append({"variant": variant, **row})
    return rows


@case("pdm_unet", modules=("sarexp.models.unet", "sarexp.systems.diffusion", "sarexp.diffusion.samplers"))
def pdm_unet(scale: Scale) -> list[Row]:
    """PDM UNet: a training step, then images/s of each sampler (random weights: speed only)."""
    from sarexp.diffusion.samplers import AncestralSampler, DDIMSampler, DPMSolverSampler
    from sarexp.systems.diffusion import conditioning_of, model_function
    from sarexp.tasks.builders import build_datamodule, build_system

    overrides = ["experiment=pdm_sar_lowres", *scale.pdm]
    rows = [{"variant": "train step", **train_rate(overrides, scale, 16 if scale.device == "cuda" else 2)}]
    cfg = compose(scale, overrides)
    datamodule, system = build_datamodule(cfg), build_system(cfg).to(scale.device).eval()
    datamodule.setup("fit")
    batch = {key: value.to(scale.device) for key, value in next(iter(datamodule.train_dataloader())).items()
             if isinstance(value, torch.Tensor)}
    net = system.net
    conditioning = conditioning_of(net, batch)
    count = batch_items(batch)
    shape = (count, net.in_channels, net.image_size, net.image_size)
    samplers = {"DDPM respaced": AncestralSampler, "DDIM": DDIMSampler, "DPM-Solver++ 2M": DPMSolverSampler}
    for name, sampler_class in samplers.items():
        sampler = sampler_class(steps=scale.sampler_steps[name])
        noise = torch.randn(shape, device=scale.device)
        with torch.no_grad():
            seconds = timed(lambda: sampler.sample(system.diffusion, model_function(net, conditioning), noise),
                            scale.device, 1)
        rows.append({"variant": f"sample {name} {scale.sampler_steps[name]} steps", "batch": count,
                     "ms/step": 1e3 * seconds / scale.sampler_steps[name], "items/s": count / seconds})
    return rows


@case("hsi_train", modules=("sarexp.models.mstpp", "sarexp.systems.gan", "sarexp.models.cswin_generator"))
def hsi_train(scale: Scale) -> list[Row]:
    """MST++ and the CSWin Sinkhorn-GAN at the seed's batch 20 of 128-px patches (the `_paper` presets)."""
    rows = []
    for experiment, extra, precisions in (("hsi_mstpp_paper", scale.hsi_mstpp, ("32-true", "bf16-mixed")),
                                          ("hsi_cswin_gan_paper", scale.hsi_gan, ("bf16-mixed", "32-true"))):
        for precision in precisions:
            overrides = [f"experiment={experiment}", *scale.hsi, *extra, f"trainer.precision={precision}"]
            row = largest_fitting(scale.hsi_batch, lambda batch: train_rate(overrides, scale, batch))
            rows.append({"variant": f"{experiment.removesuffix('_paper')} {precision}", **row})
    return rows


@case("colorization_ldm", modules=("sarexp.systems.latent_diffusion", "diffusers", "transformers"))
def colorization_ldm(scale: Scale) -> list[Row]:
    """The `_paper` LDM (random weights): a training step at its batch, then guided img2img at 50 DDIM steps.
    Its text encoder and VAE come from one-step runs of the `_paper` CLIP and VAE stages."""
    from sarexp.diffusion.samplers import DDIMSampler
    from sarexp.tasks.builders import build_system

    stages = [f"clip_checkpoint={stage_checkpoint(scale, 'colorization_clip_paper', scale.clip)}",
              f"vae_checkpoint={stage_checkpoint(scale, 'colorization_vae_paper', scale.vae)}"]
    overrides = ["experiment=colorization_ldm_paper", *scale.colorization, *stages, *scale.ldm]
    rows = [{"variant": "train step", **largest_fitting(scale.ldm_batch,
                                                        lambda batch: train_rate(overrides, scale, batch))}]
    cfg = compose(scale, overrides)
    system, size = build_system(cfg).to(scale.device).eval(), cfg.data.image_size
    condition = torch.rand(scale.ldm_batch, 1, size, size, device=scale.device) * 2 - 1
    prompts = ["Colorize the image, Region: arctic, Season: winter"] * scale.ldm_batch
    sampler = DDIMSampler(steps=scale.img2img_steps, spacing="trailing", clip_denoised=False)
    if scale.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with torch.autocast(scale.device, dtype=torch.bfloat16, enabled=scale.device == "cuda"):
        seconds = timed(lambda: system.colorize(condition, prompts, sampler, strength=0.8), scale.device, 1)
    run_steps = int(scale.img2img_steps * 0.8)
    precision = "bf16" if scale.device == "cuda" else "fp32"
    rows.append({"variant": f"img2img DDIM {scale.img2img_steps} steps (strength 0.8, guidance 7.5, {precision})",
                 "batch": scale.ldm_batch, "ms/step": 1e3 * seconds / run_steps, "items/s": scale.ldm_batch / seconds,
                 "peak GiB": torch.cuda.max_memory_allocated() / 2**30 if scale.device == "cuda" else None})
    return rows


def stage_checkpoint(scale: Scale, experiment: str, overrides: list[str]) -> Path:
    """last.ckpt of a one-step run of a colorization stage (its export is what the LDM loads)."""
    from sarexp.tasks.train import train

    run = scale.workdir / experiment
    cfg = compose(scale, [f"experiment={experiment}", *scale.colorization, *overrides, "trainer.max_steps=1",
                          "trainer.limit_val_batches=0", "trainer.num_sanity_val_steps=0",
                          f"trainer.accelerator={'gpu' if scale.device == 'cuda' else 'cpu'}", "launcher.devices=1",
                          "callbacks.last_checkpoint.every_n_train_steps=1", "callbacks.model_checkpoint=null",
                          "callbacks.progress_bar=null",
                          "callbacks.model_summary=null"], run_dir=run)
    train(cfg, test=False)
    return run / "checkpoints" / "last.ckpt"


# --- table ---------------------------------------------------------------------------------------------


def run_cases(names: list[str], scale: Scale, budget_s: float | None = None) -> list[Row]:
    rows, started_all = [], time.perf_counter()
    for name in names:
        modules, function = CASES[name]
        if budget_s is not None and time.perf_counter() - started_all >= budget_s:
            rows.append({"case": name, "note": f"skipped: --budget-s {budget_s:.0f} spent"})
            continue
        missing = [module for module in modules if not _importable(module)]
        if missing:
            rows.append({"case": name, "note": f"skipped: {', '.join(missing)} not importable"})
            continue
        started = time.perf_counter()
        try:
            produced = function(scale)
        except KeyboardInterrupt:  # a time limit (scripts/gpu_check.sh): keep the figures measured so far
            rows.append({"case": name, "note": "interrupted"})
            break
        except Exception as error:  # one failing case must not hide the others' figures
            first_line = (str(error).splitlines() or [""])[0][:80]
            produced = [{"note": f"failed: {type(error).__name__}: {first_line}"}]
        print(f"[{name}: {time.perf_counter() - started:.0f} s]", file=sys.stderr)
        rows.extend({"case": name, **row} for row in produced)
    return rows


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def format_table(rows: list[Row]) -> str:
    def cell(value: Any) -> str:
        if value is None:
            return ""
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(row.get(column)) for column in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU (default without CUDA)")
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per GPU measurement")
    parser.add_argument("--compile-on-cpu", action="store_true", help="also time torch.compile in the smoke run")
    parser.add_argument("--budget-s", type=float, default=None, help="start no case after this many seconds")
    parser.add_argument("--list", action="store_true", help="print the cases and exit")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    if args.list:
        print("\n".join(args.cases))
        return
    smoke = args.cpu_smoke or not torch.cuda.is_available()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="sarexp-gpu-suite-") as scratch:
        workdir = Path(scratch)
        scale = cpu_scale(workdir, args.compile_on_cpu) if smoke else gpu_scale(workdir, args.steps)
        started = time.perf_counter()
        rows = run_cases(args.cases, scale, args.budget_s)
    device = "CPU smoke" if smoke else torch.cuda.get_device_name()
    print(f"\nsarexp GPU suite — {device}, torch {torch.__version__}, {time.perf_counter() - started:.0f} s; "
          "GPU busy: NVML % if pynvml is installed, else ≤ CUDA-stream share of wall time")
    print(format_table(rows))


if __name__ == "__main__":
    main()
