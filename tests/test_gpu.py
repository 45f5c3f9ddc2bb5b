"""`pytest -m gpu`: the first GPU session's checks in one command (scripts/gpu_check.sh runs it, then the speed
suite, and writes one report). Tiny sizes (tests/experiment_sizes.py), in this process, on one GPU unless said:

- every experiment: training steps, one validation and one test batch, in fp32, in bf16-mixed and in the preset's
  own precision where that is a third one (16-mixed);
- `model.compile=true` for one experiment per system;
- a 2-process DDP job (NCCL) over every experiment, replicas compared, GAN gradients against one process
  (needs two visible GPUs);
- the S4D keops kernel on the device against the torch one;
- the generative tasks (`sample`, `likelihood`, `colorize`) and every experiment's `predict`;
- a checkpoint written on the device resumed on the CPU, and that one resumed on the device again.

Without CUDA these are skipped. `SAREXP_GPU_DEVICE=cpu pytest -m gpu` runs the same bodies on the CPU (the DDP
job with gloo), to try this code before a GPU session has to (minutes; run it under the heavy-job lock).
"""

import functools
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import DictConfig

from cli_helpers import read_metrics
from ddp_launch import launch
from experiment_sizes import QUIET, TINY, ordered, shipped_experiments
from inprocess import compose_run, prepared_stages, run_task

DEVICE = os.environ.get("SAREXP_GPU_DEVICE") or ("cuda" if torch.cuda.is_available() else None)
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(
    DEVICE is None, reason="no CUDA device; SAREXP_GPU_DEVICE=cpu runs these bodies on the CPU")]
ACCELERATOR = "gpu" if DEVICE == "cuda" else "cpu"
ON_DEVICE = ["trainer=default", f"trainer.accelerator={ACCELERATOR}", "launcher.devices=1"]
STEPS = ["trainer.max_steps=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
         "trainer.num_sanity_val_steps=0"]
EXPERIMENTS = ordered(shipped_experiments())
COMPILED = ["ssm4sar", "mixmae_benv1", "pdm_sar_lowres", "hsi_mstpp", "colorization_ldm"]  # one per system


@functools.cache
def _composed(experiment: str) -> DictConfig:
    return compose_run(Path("/nonexistent"), Path("/nonexistent/run"), [f"experiment={experiment}"])


def _precisions(experiment: str) -> list[str]:
    """fp32, bf16-mixed and the preset's own (16-mixed); composing is paid only where these tests run."""
    shipped = [str(_composed(experiment).trainer.precision)] if DEVICE else []
    return list(dict.fromkeys(["32-true", "bf16-mixed", *shipped]))


CASES = [(experiment, precision) for experiment in EXPERIMENTS for precision in _precisions(experiment)]
# experiments whose data module takes whole scenes for task=predict
PREDICTING = [name for name in EXPERIMENTS if DEVICE and "predict_inputs" in _composed(name).data]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gpu")


def _train(root: Path, run_name: str, experiment: str, extra: list[str], tested: bool = True) -> Path:
    """Train `experiment` on the device into root/runs/<run_name>; check the device, precision and metrics."""
    run_dir = root / "runs" / run_name
    probe = run_dir / "device.json"
    overrides = [f"experiment={experiment}", *TINY[experiment], *QUIET, *ON_DEVICE, *STEPS,
                 *prepared_stages(root, experiment, [*ON_DEVICE, *STEPS]), *extra,
                 "+callbacks.device_probe._target_=ddp_checks.DeviceRecorder", f"+callbacks.device_probe.path={probe}"]
    run_task(compose_run(root, run_dir, overrides))
    assert json.loads(probe.read_text())["device"] == DEVICE
    metrics = read_metrics(run_dir)
    assert all(math.isfinite(value) for value in metrics.values()), metrics
    assert any(key.startswith("test/" if tested else "train/") for key in metrics), sorted(metrics)
    return run_dir


def _run_name(experiment: str, precision: str) -> str:
    """fp32 runs are named after the experiment: the LDM finds its stages there (`prepared_stages`)."""
    return experiment if precision == "32-true" else f"{experiment}-{precision}"


def _trained(root: Path, experiment: str) -> Path:
    """The fp32 run of `experiment` (trained here when its test did not run first)."""
    run_dir = root / "runs" / experiment
    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        _train(root, experiment, experiment, ["trainer.precision=32-true"])
    return run_dir


@pytest.mark.parametrize(("experiment", "precision"), CASES, ids=[f"{e}-{p}" for e, p in CASES])
def test_experiment_trains_validates_and_tests(root, experiment, precision):
    run_dir = _train(root, _run_name(experiment, precision), experiment, [f"trainer.precision={precision}"])
    expected = "bf16-mixed" if DEVICE == "cpu" and precision == "16-mixed" else precision  # Lightning's CPU fp16
    assert json.loads((run_dir / "device.json").read_text())["precision"] == expected


def test_ddp_job_keeps_replicas_identical_and_gan_gradients_exact(root):
    if DEVICE == "cuda" and torch.cuda.device_count() < 2:
        pytest.skip("DDP needs two visible GPUs")
    from test_ddp_experiments import DDP_CPU, ONE_BATCH, PER_RANK, _gan_samples, _reference_gradients
    from test_ddp_experiments import _relative_difference

    job = root / "ddp"
    job.mkdir()
    on_device = [option.replace("=cpu", f"={ACCELERATOR}") for option in DDP_CPU]
    plan = {"root": str(job), "experiments": shipped_experiments(), "common": [*on_device, *STEPS],
            "gan_gradients": {"samples": str(_gan_samples(job)), "batch_size": PER_RANK, "modes": ["global"],
                              "overrides": [*on_device, *ONE_BATCH]}}
    result = launch(plan, job, world_size=2, timeout=240)
    assert result.ok, result.tail()
    for experiment in shipped_experiments():
        report = json.loads((job / "reports" / f"{experiment}.json").read_text())
        assert report["differing"] == [], (experiment, report["differing"][:5])
    reference = _reference_gradients(job)  # one process, on the CPU
    gathered = torch.load(job / "gradients_global.pt", map_location="cpu", weights_only=True)
    for step in (0, 1):
        assert _relative_difference(gathered[step], reference[step]) < 1e-4


def test_keops_kernel_matches_torch_on_the_device():
    """The S4D kernel through pykeops (its CUDA code on a GPU) against the torch path: values and gradients."""
    from sarexp.models.keops_vandermonde import keops_unavailable_reason
    from sarexp.models.s4d import S4DKernel

    torch.manual_seed(0)
    torch_kernel = S4DKernel(8, 64, init="lin", backend="torch").to(DEVICE)
    keops_kernel = S4DKernel(8, 64, init="lin", backend="keops").to(DEVICE)
    keops_kernel.load_state_dict(torch_kernel.state_dict())
    assert keops_kernel._use_keops(), f"pykeops unusable: {keops_unavailable_reason()}"
    length = 4096
    weights = torch.randn(8, length, device=DEVICE)
    results = []
    for kernel in (torch_kernel, keops_kernel):
        k = kernel(length)
        assert k.device.type == DEVICE
        grads = torch.autograd.grad((k * weights).sum(), list(kernel.parameters()))
        results.append((k.detach().cpu(), [grad.cpu() for grad in grads]))
    (k_torch, g_torch), (k_keops, g_keops) = results
    torch.testing.assert_close(k_keops, k_torch, rtol=1e-4, atol=1e-4 * k_torch.abs().max())
    for a, b in zip(g_keops, g_torch, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3 * b.abs().max())


def _task(root: Path, experiment: str, name: str, overrides: list[str]) -> Path:
    run_dir = root / "runs" / name
    ckpt = _trained(root, experiment) / "checkpoints" / "last.ckpt"
    stages = prepared_stages(root, experiment, [*ON_DEVICE, *STEPS])
    run_task(compose_run(root, run_dir, [f"experiment={experiment}", *TINY[experiment], *QUIET, *ON_DEVICE, *stages,
                                         f"ckpt_path={ckpt}", *overrides]))
    return run_dir


@pytest.mark.parametrize("experiment", ["pdm_sar_lowres", "pdm_sar_superres"])
def test_sample_task(root, experiment):
    extra = []
    if experiment == "pdm_sar_superres":  # conditioned on the low-resolution model's samples
        low = _task(root, "pdm_sar_lowres", "sample-lowres-for-superres", SAMPLE)
        extra = [f"task.low_res_path={low / 'samples.npz'}"]
    run_dir = _task(root, experiment, f"sample-{experiment}", [*SAMPLE, *extra])
    images = np.load(run_dir / "samples.npz")["images"]
    assert images.shape[0] == 2 and np.isfinite(images).all()


SAMPLE = ["task=sample", "task.num_samples=2", "task.batch_size=2", "sampler=ddim", "sampler.steps=3",
          "task.device=auto", "task.progress=false"]


def test_likelihood_task(root):
    run_dir = _task(root, "pdm_sar_lowres", "likelihood", ["task=likelihood", "task.max_batches=1", "task.steps=4",
                                                          "task.device=auto", "task.progress=false"])
    metrics = read_metrics(run_dir)
    assert metrics and all(math.isfinite(value) for value in metrics.values())


def test_colorize_task(root):
    sar = sorted((root / "data").rglob("s1_*/*.png"))[0]
    output = root / "colorized.png"
    _task(root, "colorization_ldm", "colorize", ["task=colorize", f"task.input_image={sar}", "task.region=arctic",
                                                  "task.season=winter", f"task.output_path={output}",
                                                  "task.num_inference_steps=4", "task.device=auto"])
    assert output.is_file()


@pytest.mark.parametrize("experiment", PREDICTING)
def test_predict_task(root, experiment):
    run_dir = _task(root, experiment, f"predict-{experiment}", ["task=predict", "trainer.limit_predict_batches=2"])
    assert any(path.is_file() for path in (run_dir / "predictions").rglob("*"))


@pytest.mark.parametrize("experiment", ["pdm_sar_lowres", "hsi_cswin_gan"])
def test_a_device_checkpoint_resumes_on_the_cpu_and_back(root, experiment):
    run_dir = root / "runs" / f"resume-{experiment}"
    for steps, accelerator in ((2, ACCELERATOR), (4, "cpu"), (6, ACCELERATOR)):
        overrides = [f"experiment={experiment}", *TINY[experiment], *QUIET, "trainer=default", "launcher.devices=1",
                     f"trainer.accelerator={accelerator}", f"trainer.max_steps={steps}", "trainer.limit_val_batches=1",
                     "trainer.limit_test_batches=1", "trainer.num_sanity_val_steps=0"]
        run_task(compose_run(root, run_dir, overrides))
        state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        assert state["global_step"] == steps, accelerator
        assert all(math.isfinite(value) for value in read_metrics(run_dir).values())


# last: compiling takes the longest (30 to 130 s each on two CPU cores); the time limit cuts these first
@pytest.mark.parametrize("experiment", COMPILED)
def test_compiled_network_trains(root, experiment):
    """Training steps only: validation and test would compile their no-grad graphs on top."""
    _train(root, f"{experiment}-compiled", experiment, ["model.compile=true", "trainer.precision=bf16-mixed",
                                                        "trainer.limit_val_batches=0", "task.test=false"],
           tested=False)
