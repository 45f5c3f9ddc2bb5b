"""hsi_mstpp end to end in subprocesses: train → test metrics → predict ARAD-format cubes, GeoTIFFs and quicklooks;
a scene prediction killed with SIGKILL resumes to the identical file."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cli_helpers import read_metrics, run_cli
from scene_helpers import write_scene
from sarexp.data.arad_files import read_cube

pytestmark = pytest.mark.slow

TINY_HSI = [
    "experiment=hsi_mstpp",
    "data.simulator.height=16",
    "data.simulator.width=24",
    "data.simulator.scenes={train:2,validation:1,test:1}",
    "data.patch_size=8",
    "data.batch_size=4",
    "model.stage=1",
    "system.metrics.crop_border=2",
    "trainer.max_steps=2",
    "trainer.val_check_interval=2",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    workdir = tmp_path_factory.mktemp("hsi")
    run_dir = workdir / "run"
    result = run_cli([*TINY_HSI, f"hydra.run.dir={run_dir}"], cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, run_dir


def test_training_writes_protocol_metrics_and_sample_plots(trained: tuple[Path, Path]) -> None:
    _, run_dir = trained
    metrics = read_metrics(run_dir)
    for name in ("mrae", "rmse", "psnr", "sam"):
        assert f"test/{name}" in metrics and f"val/{name}" in metrics
    assert metrics["test/mrae"] > 0 and metrics["test/psnr"] > 0
    assert list((run_dir / "samples").glob("*.png"))


def test_predict_writes_cubes_the_reader_reads_and_quicklooks(trained: tuple[Path, Path]) -> None:
    workdir, run_dir = trained
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    for inputs, name in (([], "ARAD_1K_0004"), ([f"data.predict_inputs=[{workdir}/data/arad1k/Train_RGB/ARAD_1K_0003.jpg]"],
                                                "ARAD_1K_0003")):
        out = workdir / f"predict_{name}"
        result = run_cli([*TINY_HSI, "task=predict", f"ckpt_path={checkpoint}", f"hydra.run.dir={out}", *inputs],
                         cwd=workdir)
        assert result.returncode == 0, result.stderr[-3000:]
        cube = read_cube(out / "predictions" / f"{name}.mat")
        assert cube.shape == (31, 16, 24)
        assert (out / "predictions" / f"{name}.png").stat().st_size > 10_000



def test_a_killed_scene_prediction_resumes_to_the_identical_geotiff(trained: tuple[Path, Path]) -> None:
    """SIGKILL while blocks are being written, then the same command: the same COG as an uninterrupted run."""
    workdir, run_dir = trained
    rng = np.random.default_rng(0)
    scene = write_scene(workdir / "ortho.tif", rng.integers(0, 255, (3, 192, 192), dtype=np.uint8), compress="lzw")
    command = [*TINY_HSI, "task=predict", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
               f"data.predict_inputs=[{scene}]", "scene.block_size=48", "scene.block_overlap=8", "scene.progress=false"]
    whole = workdir / "scene_whole"
    assert run_cli([*command, f"hydra.run.dir={whole}"], cwd=workdir).returncode == 0
    killed = workdir / "scene_killed"
    env = {key: value for key, value in os.environ.items() if key != "HYDRA_FULL_ERROR"}
    child = subprocess.Popen([sys.executable, "-m", "sarexp", *command, f"hydra.run.dir={killed}"], cwd=workdir,
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = killed / "predictions" / ".ortho.partial"
    deadline = time.monotonic() + 120
    while len(list(partial.glob("block_*.npy"))) < 3 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    done = len(list(partial.glob("block_*.npy")))
    assert 3 <= done < 25 and not (killed / "predictions" / "ortho.tif").exists()
    resumed = run_cli([*command, f"hydra.run.dir={killed}"], cwd=workdir)
    assert resumed.returncode == 0 and f"continuing with {done} finished block(s)" in resumed.stdout + resumed.stderr
    assert (killed / "predictions" / "ortho.tif").read_bytes() == (whole / "predictions" / "ortho.tif").read_bytes()
