"""Whole-scene prediction on the CPU (issue 18, item 8): tiles/s and peak RSS of `task=predict` per system for a
2048² and an 8192² scene (goal: the larger within 1.2× the peak RSS of the smaller), and the seam table of the
colorization (joint MultiDiffusion against independent windows; goal ≤ 1.1 joint).

    python benchmarks/scene_predict.py --out /tmp/scenes [--systems hsi mixmae colorization] [--sizes 2048 8192]
    python benchmarks/scene_predict.py --out /tmp/scenes --seams-only
    python benchmarks/scene_predict.py --out /tmp/scenes --systems colorization --sizes 2048 8192 \
        --extra scene.predictor.num_inference_steps=2   # one denoising step: the 8192² scene in ~8 min

Each system is trained for a few steps through the CLI on its synthetic data (tiny sizes; reused when the run
folder exists): prediction speed and memory do not depend on how good the weights are. Each prediction is the
real CLI, `task=predict ckpt_path=… data.predict_inputs=[scene.tif]`, in a child process; its peak RSS is the
child's own (os.wait4), its tiles/s the engine's log line. Scenes are written window by window with rasterio
(tiled DEFLATE GeoTIFFs, UTM 32N): VH/VV σ⁰ in dB for MixMAE and the colorization, 8-bit RGB for HSI.

Seams: on a scene that is one block (1024², VAE tiles of 512 with diffusers' tiling), the colorized image's mean
absolute difference between neighbouring pixels across the borders of the independent windows (every
data.image_size pixels), over the same inside the windows, both directions pooled; 1 means the borders are
invisible in the gradient. The control column measures the same at lines half a window off the borders: what a
ratio of an image without seams looks like for this VAE (its 8-pixel latent grid shows in a briefly trained one).
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from sarexp.io.raster import north_up

QUIET = ["callbacks.progress_bar=null", "callbacks.model_summary=null"]
TRAINING = {
    "hsi": [["experiment=hsi_mstpp", "model.stage=1", "data.simulator.scenes={train:2,validation:1,test:1}",
             "data.simulator.height=32", "data.simulator.width=32", "data.patch_size=16", "trainer.max_steps=2",
             "trainer.val_check_interval=2", "system.metrics.crop_border=2"]],
    "mixmae": [["experiment=mixmae_benv1_ft", "data.simulator.patches={train:16,validation:8,test:8}",
                "data.batch_size=8", "trainer.max_steps=2", "trainer.limit_val_batches=1",
                "trainer.limit_test_batches=1"]],
    "colorization": [
        ["experiment=colorization_clip", "trainer.max_steps=2", "model.text.hidden_size=32",
         "model.text.num_hidden_layers=1"],
        ["experiment=colorization_vae", "trainer.max_steps=20", "model.block_out_channels=[8,8,8,8]",
         "model.norm_num_groups=4"],
        ["experiment=colorization_ldm", "trainer.max_steps=20", "model.cross_attention_dim=32",
         "model.block_out_channels=[16,32]", "model.norm_num_groups=8", "model.attention_head_dim=2"],
    ],
}
IMAGE_SIZE = 32  # colorization: pixels per window (data.image_size), the period of the independent windows
COLORIZATION_DATA = [f"data.image_size={IMAGE_SIZE}", "data.simulator.scenes=24", "data.simulator.patches_per_scene=2",
                     "data.batch_size=8", "data.val_batch_size=8"]
PREDICT = {
    "hsi": ["experiment=hsi_mstpp"],
    "mixmae": ["experiment=mixmae_benv1_ft"],
    "colorization": ["experiment=colorization_ldm", "scene.predictor.num_inference_steps=4",
                     "scene.predictor.strength=0.5"],
}


def sarexp(args: list[str], cwd: Path, log: Path) -> tuple[float, float]:
    """Run `python -m sarexp ARGS`; (wall seconds, peak RSS in MiB of that process)."""
    started = time.perf_counter()
    with open(log, "w") as handle:
        child = subprocess.Popen([sys.executable, "-m", "sarexp", *args, *QUIET], cwd=cwd, stdout=handle,
                                 stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "1"})
        _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: python -m sarexp {' '.join(args)}; see {log}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024.0


def train(system: str, out: Path) -> Path:
    """The checkpoint of a few training steps of `system` (reused when present)."""
    data = [f"data.root={out / 'data' / system}"] + (COLORIZATION_DATA if system == "colorization" else [])
    stages = []
    for stage in TRAINING[system]:
        name = stage[0].split("=")[1]
        run = out / "runs" / name
        extra = []
        if name == "colorization_ldm":
            extra = [f"clip_checkpoint={out / 'runs/colorization_clip/checkpoints/last.ckpt'}",
                     f"vae_checkpoint={out / 'runs/colorization_vae/checkpoints/last.ckpt'}"]
        if not (run / "checkpoints" / "last.ckpt").is_file():
            print(f"training {name} …", flush=True)
            sarexp([*stage, *data, *extra, f"hydra.run.dir={run}"], out, out / f"train_{name}.log")
        stages.append(run)
    return stages[-1] / "checkpoints" / "last.ckpt"


def write_scene(path: Path, kind: str, size: int, seed: int = 0) -> Path:
    """A size² scene written in 1024-row strips: 'sar' VH/VV dB (float32), 'rgb' 8-bit."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    count, dtype = (2, "float32") if kind == "sar" else (3, "uint8")
    profile = {"driver": "GTiff", "height": size, "width": size, "count": count, "dtype": dtype, "crs": "EPSG:32632",
               "transform": north_up(500000.0, 5000000.0, 10.0), "tiled": True, "compress": "deflate",
               "blockxsize": 256, "blockysize": 256, "bigtiff": "if_safer"}
    with rasterio.open(path, "w", **profile) as dataset:
        if kind == "sar":
            dataset.descriptions = ("VH", "VV")
        for top in range(0, size, 1024):
            rows, cols = np.mgrid[top:min(top + 1024, size), 0:size].astype(np.float32)
            field = np.sin(rows / 97.0) * np.cos(cols / 61.0) + 0.5 * np.sin((rows + cols) / 23.0)
            if kind == "sar":
                speckle = 10 * np.log10(rng.gamma(4.4, 1 / 4.4, (2, *field.shape)))
                strip = np.stack([-19 + 4 * field, -12.6 + 4 * field]) + speckle
            else:
                strip = np.stack([120 + 60 * field * k for k in (1.0, -0.8, 0.5)]) + rng.normal(0, 6, (3, *field.shape))
                strip = np.clip(strip, 0, 255)
            dataset.write(strip.astype(dtype), window=Window(0, top, size, strip.shape[1]))
    return path


def predict(system: str, checkpoint: Path, scene: Path, out: Path, extra: list[str]) -> dict[str, float]:
    run = out / "predict" / f"{system}_{scene.stem}{'_'.join([''] + [e.split('=')[-1] for e in extra])}"
    seconds, rss = sarexp(["task=predict", f"ckpt_path={checkpoint}", f"data.predict_inputs=[{scene}]",
                           f"hydra.run.dir={run}", "scene.progress=false", *PREDICT[system], *extra], out,
                          out / f"{run.name}.log")
    text = (out / f"{run.name}.log").read_text()
    match = re.search(r"(\d+) tiles in \d+ block\(s\), ([\d.]+) s, ([\d.]+) tiles/s", text)
    tiles, tile_seconds, speed = (float(match.group(i)) for i in (1, 2, 3)) if match else (float("nan"),) * 3
    return {"seconds": seconds, "rss": rss, "tiles": tiles, "tile_seconds": tile_seconds, "tiles_per_s": speed,
            "output": run / "predictions" / f"{scene.stem}.tif"}


def seam_ratio(path: Path, period: int, offset: int = 0) -> float:
    """Mean |difference of neighbours| across the lines at `offset` + multiples of `period` over that elsewhere."""
    with rasterio.open(path) as dataset:
        image = dataset.read().astype(np.float64)
    across, inside = [], []
    for axis in (1, 2):
        gradient = np.abs(np.diff(image, axis=axis))  # gradient[i] is between pixels i and i+1
        positions = np.arange(gradient.shape[axis]) + 1
        border = (positions - offset) % period == 0
        across.append(np.compress(border, gradient, axis=axis).ravel())
        inside.append(np.compress(~border, gradient, axis=axis).ravel())
    return float(np.concatenate(across).mean() / np.concatenate(inside).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--systems", nargs="+", default=["hsi", "mixmae", "colorization"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[2048, 8192])
    parser.add_argument("--seams-only", action="store_true")
    parser.add_argument("--extra", nargs="*", default=[], help="overrides for every prediction, e.g. "
                        "scene.predictor.num_inference_steps=2")
    parser.add_argument("--seam-size", type=int, default=1024)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.seams_only:
        print("| system | scene | tiles | tiles/s | prediction s | wall s | peak RSS MiB |")
        print("|---|---|---|---|---|---|---|")
        for system in args.systems:
            checkpoint = train(system, args.out)
            rss = []
            for size in args.sizes:
                scene = write_scene(args.out / "scenes" / f"{'rgb' if system == 'hsi' else 'sar'}_{size}.tif",
                                    "rgb" if system == "hsi" else "sar", size)
                result = predict(system, checkpoint, scene, args.out, args.extra)
                rss.append(result["rss"])
                print(f"| {system} | {size}² | {result['tiles']:.0f} | {result['tiles_per_s']:.2f} | "
                      f"{result['tile_seconds']:.0f} | {result['seconds']:.0f} | {result['rss']:.0f} |", flush=True)
            ratio = rss[-1] / rss[0]
            print(f"|   | RSS ratio {args.sizes[-1]}² / {args.sizes[0]}² = {ratio:.2f} | | | | | |", flush=True)
    if "colorization" in args.systems:
        checkpoint = train("colorization", args.out)
        scene = write_scene(args.out / "scenes" / f"sar_{args.seam_size}.tif", "sar", args.seam_size, seed=1)
        one_block = [f"scene.block_size={args.seam_size}"]
        print(f"\n| colorization, {args.seam_size}² | seam ratio at the window borders | control: lines half a window "
              "off the borders |\n|---|---|---|")
        for name, extra in (("joint (MultiDiffusion)", []), ("independent windows", ["scene.predictor.joint=false"])):
            output = predict("colorization", checkpoint, scene, args.out, [*one_block, *extra])["output"]
            control = seam_ratio(output, IMAGE_SIZE, IMAGE_SIZE // 2)
            print(f"| {name} | {seam_ratio(output, IMAGE_SIZE):.3f} | {control:.3f} |", flush=True)


if __name__ == "__main__":
    main()
