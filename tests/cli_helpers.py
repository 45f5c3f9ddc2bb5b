"""Run the real CLI in a subprocess, on a tiny synthetic dataset, for end-to-end tests."""

import json
import os
import subprocess
import sys
from pathlib import Path

TINY = [
    "data.simulator.n_azimuth=256",
    "data.simulator.n_range=32",
    "data.simulator.scenes={training:1,validation:1}",
    "data.simulator.chunks=[128,16]",
    "data.simulator.point_targets=2",
    "data.patch_length=64",
    "data.stride=64",
    "data.batch_size=8",
    "data.val_batch_size=32",
    "model.d_model=8",
    "model.num_layers=1",
    "model.hidden_state_size=8",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m sarexp ARGS` in `cwd`, with a clean environment for Hydra's full-error switch."""
    env = {key: value for key, value in os.environ.items() if key != "HYDRA_FULL_ERROR"}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "sarexp", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def read_metrics(run_dir: Path) -> dict[str, float]:
    return json.loads((run_dir / "metrics.json").read_text())


def logged_images(run_dir: Path) -> dict:
    """{tag: H×W×3 uint8 pixels of its last image} in the run's TensorBoard log (`logger=[…,tensorboard]`)."""
    import io

    import numpy as np
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    return {tag: np.asarray(Image.open(io.BytesIO(events.Images(tag)[-1].encoded_image_string)).convert("RGB"))
            for tag in events.Tags()["images"]}
