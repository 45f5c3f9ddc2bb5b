"""`model.compile=true` compiles every system's network once, in the builder; `trainer.precision=bf16-mixed`
trains every system (CPU autocast)."""

import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cli_helpers import TINY, read_metrics, run_cli
from tiny_experiments import upstream_checkpoints
from sarexp.config.validation import validate_config
from sarexp.errors import ConfigError
from sarexp.tasks.builders import build_system

SYSTEMS = ["ssm4sar", "mixmae_benv1", "mixmae_benv1_ft", "pdm_sar_lowres"]


def _compiled(module: torch.nn.Module) -> bool:
    return getattr(module, "_compiled_call_impl", None) is not None


@pytest.mark.parametrize("experiment", SYSTEMS)
def test_model_compile_compiles_the_network_and_keeps_the_checkpoint_keys(compose_config, experiment):
    plain = build_system(compose_config([f"experiment={experiment}"]))
    cfg = compose_config([f"experiment={experiment}", "model.compile=true"])
    validate_config(cfg)  # `compile` is sarexp's key, not an argument of the network
    compiled = build_system(cfg)
    assert _compiled(compiled.net) and not _compiled(plain.net)
    assert list(compiled.state_dict()) == list(plain.state_dict())  # no `_orig_mod.` prefixes


def test_model_compile_must_be_a_boolean(compose_config):
    with pytest.raises(ConfigError, match="model.compile"):
        validate_config(compose_config(["experiment=ssm4sar", "model.compile=maybe"]))


@pytest.mark.slow
def test_a_compiled_network_computes_what_the_eager_one_does(compose_config):
    overrides = ["experiment=ssm4sar", "model.d_model=4", "model.num_layers=1", "model.hidden_state_size=4"]
    torch.manual_seed(0)
    eager = build_system(compose_config(overrides))
    torch.manual_seed(0)
    compiled = build_system(compose_config([*overrides, "model.compile=true"]))
    inputs = torch.randn(2, 3, 32)
    expected, result = eager.net(inputs), compiled.net(inputs)
    torch.testing.assert_close(result, expected, rtol=1e-4, atol=1e-5)
    result.square().mean().backward()
    expected.square().mean().backward()
    for (name, got), (_, want) in zip(compiled.net.named_parameters(), eager.net.named_parameters()):
        torch.testing.assert_close(got.grad, want.grad, rtol=1e-3, atol=1e-5, msg=name)


QUIET = ["callbacks.progress_bar=null", "callbacks.model_summary=null", "trainer.precision=bf16-mixed",
         "trainer.max_steps=2", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
         "trainer.limit_test_batches=1", "logger=[csv,tensorboard]"]
FIGURES = {"ssm4sar": ["samples/validation"], "mixmae_benv1": ["samples/validation"], "mixmae_benv1_ft": [],
           "pdm_sar_lowres": ["samples/diffusion"], "colorization_ldm": []}  # drawn from bf16 outputs at validation
BF16_RUNS = {
    "ssm4sar": ["experiment=ssm4sar", *TINY],
    "mixmae_benv1": ["experiment=mixmae_benv1", "data.simulator.patches={train:16,validation:8,test:8}",
                     "data.batch_size=8", "data.val_batch_size=8"],
    "mixmae_benv1_ft": ["experiment=mixmae_benv1_ft", "data.simulator.patches={train:16,validation:8,test:8}",
                        "data.batch_size=8", "data.val_batch_size=8"],
    "pdm_sar_lowres": ["experiment=pdm_sar_lowres", "data.image_size=16",
                       "data.generator.counts={train:4,val:2,test:2}", "data.batch_size=8", "data.val_batch_size=12",
                       "model.model_channels=8", "diffusion.steps=50",
                       "callbacks.diffusion_samples.sampler.steps=3", "trainer.val_check_interval=2"],
    # on the default data, which the upstream stages' checkpoints (made in the test) generated
    "colorization_ldm": ["experiment=colorization_ldm", "data.batch_size=4", "data.val_batch_size=4"],
}


@pytest.mark.slow
@pytest.mark.parametrize("experiment", list(BF16_RUNS))
def test_every_system_trains_in_bf16_mixed(tmp_path, compose_config, experiment):
    run_dir = tmp_path / "run"
    upstream = upstream_checkpoints(compose_config, experiment, tmp_path)  # the LDM's frozen text encoder and VAE
    result = run_cli([*BF16_RUNS[experiment], *upstream, *QUIET, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "bfloat16 Automatic Mixed Precision" in result.stdout + result.stderr
    metrics = read_metrics(run_dir)
    assert math.isfinite(metrics["train/loss"]) and math.isfinite(metrics["test/loss"])
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert events.Tags()["images"] == FIGURES[experiment]
