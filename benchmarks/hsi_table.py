"""RGB → hyperspectral results in MST++'s table format, on the validation split of an ARAD-1K root.

    python benchmarks/hsi_table.py [--root DIR] [--crop-border 16] [--run NAME=RUN_DIR[:PREFIX]] ...

Rows: the per-pixel linear least-squares baseline (an affine map with a bias, fitted in closed form on the
whole images of the training split, see sarexp.models.linear_spectral), then one row per trained run: the
network of RUN_DIR/.hydra/config.yaml with the weights of its best checkpoint (state-dict entries under
PREFIX, default ``net.``; e.g. ``ema_generator.`` for a GAN's EMA generator). Whole validation images go
through each model; MRAE, RMSE, PSNR and SAM are per image on the centre crop and averaged
(sarexp.metrics.spectral); "÷ linear" is a row's MRAE over the least-squares map's. G-MACs at 1×3×256×256
come from torch.utils.flop_counter. Without --root the default synthetic data (conf/data/arad1k.yaml) is
generated into a temporary directory.
"""

import argparse
import copy
import tempfile
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch.utils.flop_counter import FlopCounterMode

from sarexp.config.locate import config_dir
from sarexp.config.model_options import network_node
from sarexp.data.arad import ARADDataModule
from sarexp.metrics.spectral import spectral_metrics, whole_image_forward
from sarexp.models.linear_spectral import LinearSpectralMap


def data_module(root: Path) -> ARADDataModule:
    cfg = OmegaConf.load(config_dir() / "data" / "arad1k.yaml")
    simulator = OmegaConf.to_container(cfg.simulator)
    module = ARADDataModule(str(root), synthetic=True, patch_size=int(cfg.patch_size), simulator=simulator)
    module.prepare_data()
    module.setup("fit")
    return module


def trained_model(spec: str) -> tuple[str, torch.nn.Module]:
    name, _, rest = spec.partition("=")
    run_dir, _, prefix = rest.partition(":")
    run = Path(run_dir)
    cfg = OmegaConf.load(run / ".hydra" / "config.yaml")
    model = instantiate(network_node(cfg.model), _convert_="object")  # without sarexp's model.compile
    checkpoints = sorted((run / "checkpoints").glob("best*.ckpt")) or [run / "checkpoints" / "last.ckpt"]
    state = torch.load(checkpoints[-1], map_location="cpu", weights_only=True)["state_dict"]
    prefix = prefix or "net."
    model.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
    return name, model.eval()


def giga_macs(model: torch.nn.Module) -> float:
    meta = copy.deepcopy(model).to("meta")
    with FlopCounterMode(display=False) as counter:
        meta(torch.zeros(1, 3, 256, 256, device="meta"))
    return counter.get_total_flops() / 2e9


@torch.no_grad()
def evaluate(model: torch.nn.Module, module: ARADDataModule, crop_border: int, tile: int | None) -> dict[str, float]:
    metrics = spectral_metrics(crop_border)
    for batch in module.val_dataloader():
        preds = whole_image_forward(model, batch["rgb"], tile)
        for metric in metrics.values():
            metric.update(preds, batch["hsi"])
    return {name: float(metric.compute()) for name, metric in metrics.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=None, help="ARAD-1K root (default: synthetic, generated)")
    parser.add_argument("--crop-border", type=int, default=16, help="MST++: 128 on 482×512")
    parser.add_argument("--tile", type=int, default=None, help="evaluate in overlapping tiles of this size")
    parser.add_argument("--run", action="append", default=[], help="NAME=RUN_DIR[:STATE_DICT_PREFIX]")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        module = data_module(args.root or Path(scratch) / "arad1k")
        train = module.datasets["train"].store
        baseline = LinearSpectralMap(3, module.bands).fit(
            (torch.from_numpy(rgb)[None], torch.from_numpy(hsi)[None]) for rgb, hsi in map(train.scene, range(len(train))))
        rows = [("Linear least squares", baseline.eval())] + [trained_model(spec) for spec in args.run]
        print(f"validation: {len(module.datasets['validation'])} images, centre crop border {args.crop_border}")
        print(f"| {'Method':<22} | Params (M) | G-MACs@256 | MRAE   | ÷ linear | RMSE   | PSNR  | SAM (rad) |")
        print(f"|{'-' * 24}|------------|------------|--------|----------|--------|-------|-----------|")
        linear_mrae = None  # the first row's
        for name, model in rows:
            scores = evaluate(model, module, args.crop_border, args.tile)
            if linear_mrae is None:
                linear_mrae = scores["mrae"]
            params = sum(p.numel() for p in model.parameters()) / 1e6
            print(f"| {name:<22} | {params:10.6f} | {giga_macs(model):10.2f} | {scores['mrae']:.4f} | "
                  f"{scores['mrae'] / linear_mrae:8.3f} | {scores['rmse']:.4f} | {scores['psnr']:5.2f} | "
                  f"{scores['sam']:9.4f} |")


if __name__ == "__main__":
    main()
