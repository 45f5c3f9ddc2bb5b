"""task=likelihood: the variational lower bound of a trained diffusion model on a data split, in bits per
dimension (the seed's model_likelihood.py; Ho et al. 2020 eq. 5, Nichol & Dhariwal 2021 §2).

bpd = Σ_t L_t + L_prior per image, averaged: L_0 is the discretized-Gaussian decoder NLL of 8-bit data (256
levels over [−1, 1]), L_t>0 the KL of the posterior to the model's step, L_prior the KL of q(x_T|x_0) to N(0, I).
`task.steps` evaluates the bound of the process respaced to fewer steps (faster; a bound of that shorter
process, whose variances follow its own β's). Writes metrics.json and the mean of each L_t to
`likelihood_terms.csv`.
"""

import logging

import torch
from omegaconf import DictConfig
from tqdm.auto import tqdm

from sarexp.diffusion.respace import spaced_timesteps
from sarexp.errors import ConfigError
from sarexp.rundir import write_metrics
from sarexp.systems.diffusion import conditioning_of, model_function
from sarexp.tasks.builders import build_datamodule
from sarexp.tasks.generative import start_generative_run
from sarexp.tasks.source_config import source_checkpoint

log = logging.getLogger(__name__)

SPLIT_STAGES = {"val": ("validate", "val_dataloader"), "test": ("test", "test_dataloader")}


def likelihood(
    cfg: DictConfig,
    split: str = "test",
    max_batches: int | None = None,
    steps: int | None = None,
    use_ema: bool = True,
    clip_denoised: bool = True,
    progress: bool = True,
    device: str = "auto",
) -> float:
    """Returns the mean bound in bits/dim over the split (or its first `max_batches` batches)."""
    checkpoint = source_checkpoint(cfg, "likelihood")
    if split not in SPLIT_STAGES:
        raise ConfigError(f"task.split={split!r}: use val or test")
    directory, _, system, net, target = start_generative_run(cfg, checkpoint, use_ema, device)
    diffusion = system.diffusion
    if steps is not None:
        diffusion = diffusion.respaced(spaced_timesteps(diffusion.alphas_cumprod, steps))

    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    stage, loader_name = SPLIT_STAGES[split]
    datamodule.setup(stage)
    loader = getattr(datamodule, loader_name)()

    totals, priors, terms = [], [], []
    for index, batch in enumerate(tqdm(loader, desc=f"VLB over {split}", disable=not progress)):
        if max_batches is not None and index >= max_batches:
            break
        batch = {key: value.to(target) for key, value in batch.items()}
        fn = model_function(net, conditioning_of(net, batch))
        bound = diffusion.bits_per_dim(fn, batch["image"], clip_denoised=clip_denoised)
        totals.append(bound["total_bpd"].cpu())
        priors.append(bound["prior_bpd"].cpu())
        terms.append(bound["vb"].cpu())
    if not totals:
        raise ConfigError(f"task.split={split}: no batches to evaluate")
    total, prior, vb = torch.cat(totals), torch.cat(priors), torch.cat(terms)
    bpd = float(total.mean())
    write_metrics(
        directory,
        {"likelihood/bpd": bpd, "likelihood/prior_bpd": float(prior.mean()),
         "likelihood/decoder_bpd": float(vb[:, 0].mean()), "likelihood/num_images": float(len(total)),
         "likelihood/steps": float(diffusion.num_timesteps)},
    )
    mean_terms = vb.mean(dim=0).numpy()
    rows = "\n".join(f"{int(t)},{value:.6g}" for t, value in zip(diffusion.timestep_map, mean_terms, strict=True))
    (directory / "likelihood_terms.csv").write_text("timestep,bits_per_dim\n" + rows + "\n")
    log.info("VLB over %d %s images: %.4f bits/dim (prior %.2e, decoder %.4f, %d steps)",
             len(total), split, bpd, float(prior.mean()), float(vb[:, 0].mean()), diffusion.num_timesteps)
    return bpd
