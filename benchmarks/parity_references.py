"""The original implementations, imported at run time from checkouts the user points to (`--reference NAME=PATH`;
never copied into sarexp), and the run-time shims they need on this machine:

- pdm (thomaskerdreux/PDM_SAR_InSAR_generation): `blobfile` (imported at module level, used only to save and
  list files) is a stand-in over `os`/`open` when the package is absent; no CUDA needed (its CONSTANTS pick
  the CPU).
- sarwmixmae (acaglayan/SAR-W-MixMAE, pinned to timm 0.5.4): timm 1.x changed `PatchMerging` (token layout
  (B, L, C) with an `input_resolution` → (B, H, W, C)) and made the window size of `window_partition` /
  `window_reverse` a tuple; while its model module is imported, timm's names are replaced by timm 0.5.4's
  behaviour (the same arithmetic). `torch.cuda.synchronize` in its engine is a no-op without CUDA.
- mstpp (caiyuanhao1998/MST-plus-plus): needs einops and, for its datasets, opencv (pip extra `parity`). On a
  CPU its network returns a channels-last tensor, on which its `Loss_MRAE` (`.view(-1)`) fails: the step makes
  the output contiguous first (one copy of the output). Its test_develop_code/utils.py imports `hdf5storage`
  (to save .mat results) and fvcore's `FlopCountAnalysis` (to count FLOPs), neither used by the forward
  timed here: empty stand-ins when the packages are absent.
"""

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from parity_support import Settings, Skip, reference_imports, shim

SUBDIRS = {"mstpp": "train_code", "mstpp_test": "test_develop_code", "pdm": "", "sarwmixmae": "",
           "sarwmixmae_data": "sarwmix"}
CHECKOUTS = {"mstpp_test": "mstpp", "sarwmixmae_data": "sarwmixmae"}
MODULES = {
    "mstpp": ("architecture", "utils", "hsi_dataset"),
    "mstpp_test": ("architecture", "utils", "hsi_dataset"),
    "pdm": ("improved_diffusion.unet", "improved_diffusion.script_util", "improved_diffusion.resample",
            "improved_diffusion.train_util", "improved_diffusion.datasets_hdf5", "improved_diffusion.datasets_image"),
    "sarwmixmae": ("models_mixmim", "engine_pretrain", "util.misc"),
    "sarwmixmae_data": ("bigearthnetv1",),
}


def _blobfile() -> Any:
    def listdir(path: str) -> list[str]:
        return os.listdir(path)

    return shim("blobfile", join=os.path.join, dirname=os.path.dirname, basename=os.path.basename,
                exists=os.path.exists, isdir=os.path.isdir, listdir=listdir, BlobFile=open)


@contextmanager
def reference_context(settings: Settings, name: str) -> Iterator[dict[str, Any]]:
    """The reference's modules (see MODULES) imported from its checkout; Skip when the checkout is absent."""
    root = settings.reference(CHECKOUTS.get(name, name))
    if root is None:
        raise Skip(f"no --reference {CHECKOUTS.get(name, name)}=PATH")
    fvcore = shim("fvcore", nn=shim("fvcore.nn", FlopCountAnalysis=None))
    shims = {"pdm": {"blobfile": _blobfile()},
             "mstpp_test": {"hdf5storage": shim("hdf5storage"), "fvcore": fvcore, "fvcore.nn": fvcore.nn}}.get(name, {})
    with reference_imports(root / SUBDIRS[name], shims), _timm_054(name == "sarwmixmae"):
        try:
            yield {module: importlib.import_module(module) for module in MODULES[name]}
        except ImportError as error:
            raise Skip(f"{name} checkout does not import here: {error}") from None


# --- PDM seed --------------------------------------------------------------------------------------------


def seed_unet_and_diffusion(settings: Settings, cfg: Any) -> tuple[nn.Module, Any, dict[str, Any]]:
    """The seed's UNetModel at the experiment's sizes and its (unspaced) process, as its train.py builds them."""
    with reference_context(settings, "pdm") as modules:
        unet, script_util = modules["improved_diffusion.unet"], modules["improved_diffusion.script_util"]
        model_cfg, diffusion_cfg = cfg.model, cfg.diffusion
        channels = int(model_cfg.in_channels)
        model = unet.UNetModel(
            in_channels=channels, num_model_channels=int(model_cfg.model_channels),
            out_channels=2 * channels if diffusion_cfg.learn_sigma else channels,
            num_res_blocks=int(model_cfg.num_res_blocks),
            attention_resolutions=[int(model_cfg.image_size) // int(r) for r in model_cfg.attention_resolutions],
            dropout=float(model_cfg.dropout), channel_mult=tuple(model_cfg.channel_mult),
            num_classes=int(model_cfg.num_classes) or None, num_heads=int(model_cfg.num_heads),
            num_heads_upsample=int(model_cfg.num_heads_upsample),
            use_scale_shift_norm=bool(model_cfg.use_scale_shift_norm)).to(settings.device)
        diffusion = script_util.create_gaussian_diffusion(
            steps=int(diffusion_cfg.steps), learn_sigma=bool(diffusion_cfg.learn_sigma),
            noise_schedule=str(diffusion_cfg.noise_schedule),
            loss_name="rescaled_mse" if float(diffusion_cfg.get("vlb_weight", 0.0)) else "mse",
            rescale_timesteps=True, timestep_respacing="")
    return model, diffusion, modules


# --- SAR-W-MixMAE ----------------------------------------------------------------------------------------


class PatchMerging054(nn.Module):
    """timm 0.5.4's PatchMerging: (B, H·W, C) tokens of `input_resolution` → (B, H·W/4, 2C)."""

    def __init__(self, input_resolution: tuple[int, int], dim: int, norm_layer: type = nn.LayerNorm) -> None:
        super().__init__()
        self.input_resolution, self.dim = input_resolution, dim
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = norm_layer(4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = self.input_resolution
        batch, _, channels = x.shape
        x = x.view(batch, height, width, channels)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(batch, -1, 4 * channels)))


@contextmanager
def _timm_054(active: bool) -> Iterator[None]:
    if not active:
        yield
        return
    swin = importlib.import_module("timm.models.swin_transformer")
    saved = {name: getattr(swin, name) for name in ("PatchMerging", "window_partition", "window_reverse")}

    def pair(size: Any) -> tuple[int, int]:
        return (size, size) if isinstance(size, int) else tuple(size)

    swin.PatchMerging = PatchMerging054
    swin.window_partition = lambda x, size: saved["window_partition"](x, pair(size))
    swin.window_reverse = lambda windows, size, h, w: saved["window_reverse"](windows, pair(size), h, w)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(swin, name, value)


def sarwmixmae_model(settings: Settings, cfg: Any) -> tuple[nn.Module, dict[str, Any]]:
    """SAR-W-MixMAE's MixMIM at the experiment's sizes; its engine and utilities."""
    import timm.optim

    with reference_context(settings, "sarwmixmae") as modules:
        model_cfg = cfg.model
        model = modules["models_mixmim"].MixMIM(
            img_size=int(model_cfg.img_size), patch_size=int(model_cfg.patch_size), in_chans=int(model_cfg.in_chans),
            embed_dim=int(model_cfg.embed_dim), depths=list(model_cfg.depths), num_heads=list(model_cfg.num_heads),
            window_size=list(model_cfg.window_sizes), mlp_ratio=float(model_cfg.mlp_ratio),
            qkv_bias=bool(model_cfg.qkv_bias), drop_path_rate=float(model_cfg.drop_path_rate),
            decoder_dim=int(model_cfg.decoder_dim), decoder_depth=int(model_cfg.decoder_depth),
            decoder_num_heads=int(model_cfg.decoder_num_heads),
            norm_pix_loss=bool(cfg.loss.norm_pix_loss)).to(settings.device)
    # main_pretrain.py's optim_factory.add_weight_decay is timm 1.x's param_groups_weight_decay
    modules["timm_optim"] = timm.optim
    return model, modules


