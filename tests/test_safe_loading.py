"""Every entry point that takes a checkpoint or weights path refuses a file whose unpickling would run code:
nothing runs (no marker file appears) and the error is one line naming the key and the path. sarexp's own
checkpoints and plain state dicts (torch.save or safetensors) still load."""

import os
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from cli_helpers import TINY, run_cli
from sarexp.io.checkpoint_io import load_weights_file
from sarexp.errors import ConfigError


class _Payload:
    """Unpickling this calls os.system, which creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def malicious_file(path: Path, marker: Path, zip_format: bool = True) -> Path:
    payload = {"state_dict": {"net.weight": torch.zeros(2)}, "hyper_parameters": _Payload(marker)}
    torch.save(payload, path, _use_new_zipfile_serialization=zip_format)
    return path


def assert_refused(error: pytest.ExceptionInfo, key: str, path: Path, marker: Path) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{key}={path}: refused to load")
    assert "system" in message
    assert not marker.exists()


@pytest.fixture
def evil(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "MARKER"
    return malicious_file(tmp_path / "downloaded.ckpt", marker), marker


def test_shared_loader_refuses_code_in_zip_and_legacy_files(tmp_path, evil):
    path, marker = evil
    with pytest.raises(ConfigError) as error:
        load_weights_file(path, "ckpt_path")
    assert_refused(error, "ckpt_path", path, marker)
    legacy = malicious_file(tmp_path / "legacy.pth", marker, zip_format=False)  # no pre-flight scan possible
    with pytest.raises(ConfigError) as error:
        load_weights_file(legacy, "model.pretrained")
    assert_refused(error, "model.pretrained", legacy, marker)


def test_truncated_and_missing_files_are_one_line(tmp_path):
    whole = tmp_path / "whole.ckpt"
    torch.save({"state_dict": {"w": torch.arange(1000.0)}}, whole)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    for path, expected in ((truncated, "truncated or corrupt"), (tmp_path / "absent.ckpt", "no such file")):
        with pytest.raises(ConfigError, match=expected) as error:
            load_weights_file(path, "ckpt_path")
        assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_plain_state_dicts_and_safetensors_load(tmp_path):
    from safetensors.torch import save_file

    weights = {"layer.weight": torch.randn(3, 2)}
    save_file(weights, tmp_path / "w.safetensors")
    torch.save({"model": weights, "epoch": 3, "note": "upstream"}, tmp_path / "w.pth")
    assert torch.equal(load_weights_file(tmp_path / "w.safetensors", "k")["layer.weight"], weights["layer.weight"])
    assert torch.equal(load_weights_file(tmp_path / "w.pth", "k")["model"]["layer.weight"], weights["layer.weight"])
    (tmp_path / "bad.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1")
    with pytest.raises(ConfigError, match="bad.safetensors"):
        load_weights_file(tmp_path / "bad.safetensors", "k")


def test_checkpoint_path_preflight_covers_train_eval_predict_sample_likelihood(evil):
    """`required_checkpoint` (eval, predict, sample, likelihood) and `start_checkpoint` (train) check the file
    before any data or model is built."""
    from sarexp.rundir import start_checkpoint
    from sarexp.tasks.checkpoints import required_checkpoint

    path, marker = evil
    for task in ("eval", "predict", "sample", "likelihood"):
        with pytest.raises(ConfigError) as error:
            required_checkpoint(str(path), task)
        assert_refused(error, "ckpt_path", path, marker)
    with pytest.raises(ConfigError) as error:
        start_checkpoint(path.parent / "fresh_run", str(path), resume=True)
    assert_refused(error, "ckpt_path", path, marker)


def test_diffusion_loader_is_weights_only(evil):
    from sarexp.tasks import generative

    path, marker = evil
    with pytest.raises(ConfigError) as error:
        generative.load_weights_file(path, "ckpt_path")  # what load_diffusion_system calls
    assert_refused(error, "ckpt_path", path, marker)
    assert "weights_only=False" not in Path(generative.__file__).read_text()


def test_lightning_is_given_weights_only(tmp_path):
    """Past the pre-flight scan (a legacy-format file cannot be scanned), Lightning itself loads weights only
    and `loading` turns its refusal into the same line."""
    from lightning.pytorch import LightningModule, Trainer

    from sarexp.tasks.checkpoints import loading

    class Tiny(LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, batch_index):
            return self.layer(batch).sum()

        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.randn(4, 2), batch_size=2)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    marker = tmp_path / "MARKER"
    path = malicious_file(tmp_path / "legacy.ckpt", marker, zip_format=False)
    trainer = Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=tmp_path)
    with pytest.raises(ConfigError) as error, loading(path):
        trainer.fit(Tiny(), ckpt_path=path, weights_only=True)
    assert_refused(error, "ckpt_path", path, marker)


def test_feature_extractor_and_inception_weights(tmp_path, evil):
    from sarexp.models.inception import InceptionFeatures
    from sarexp.tasks.feature_extractors import extractor_from_checkpoint

    path, marker = evil
    run = tmp_path / "extractor_run"
    (run / "checkpoints").mkdir(parents=True)
    (run / ".hydra").mkdir()
    OmegaConf.save({"model": {"_target_": "sarexp.models.feature_cnn.FeatureCNN", "in_channels": 1,
                              "num_classes": 2, "widths": [4], "feature_dim": 4}}, run / ".hydra" / "config.yaml")
    checkpoint = malicious_file(run / "checkpoints" / "last.ckpt", marker)
    with pytest.raises(ConfigError) as error:
        extractor_from_checkpoint(checkpoint)
    assert_refused(error, "task.extractor_checkpoint", checkpoint, marker)
    with pytest.raises(ConfigError) as error:
        InceptionFeatures(str(path))
    assert_refused(error, "task.inception_weights", path, marker)

    OmegaConf.save({"model": {"_target_": "os.system", "command": f"touch {marker}"}}, run / ".hydra" / "config.yaml")
    torch.save({"state_dict": {}}, checkpoint)
    with pytest.raises(ConfigError, match="model._target_=os.system is not a trusted target") as error:
        extractor_from_checkpoint(checkpoint)
    assert "\n" not in str(error.value) and not marker.exists()


def test_model_pretrained(evil):
    from sarexp.models.mixmim.pretrained import read_state_dict

    path, marker = evil
    with pytest.raises(ConfigError) as error:
        read_state_dict(str(path))
    assert_refused(error, "model.pretrained", path, marker)


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    ["experiment=ssm4sar", *TINY],
    ["experiment=pdm_sar_lowres", "task=sample"],
])
def test_cli_refuses_a_malicious_checkpoint_in_one_line(tmp_path, evil, overrides):
    path, marker = evil
    result = run_cli([*overrides, f"ckpt_path={path}", f"data.root={tmp_path / 'data'}",
                      f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, timeout=180)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: ckpt_path={path}: refused to load: the file holds Python objects that could run code "
                      f"when unpickled (it names posix.system); sarexp loads weights only: re-save it as a plain state "
                      f"dict (torch.save(model.state_dict(), PATH)) or as .safetensors, from a source you trust"]
    assert "Traceback" not in result.stderr
    assert not marker.exists()
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())



def test_numpy_arrays_are_data_but_object_arrays_still_refused(tmp_path):
    """A resumable checkpoint may hold NumPy's RNG state (an ndarray): allowed deliberately; an object array
    pickles its objects, whose globals stay refused."""
    import random

    import numpy as np

    state = {"numpy": np.random.get_state(), "python": random.getstate(), "torch": torch.get_rng_state()}
    torch.save({"state_dict": {}, "rng": state}, tmp_path / "rng.ckpt")
    loaded = load_weights_file(tmp_path / "rng.ckpt", "ckpt_path")["rng"]
    assert np.array_equal(loaded["numpy"][1], state["numpy"][1]) and loaded["python"] == state["python"]
    marker = tmp_path / "MARKER"
    torch.save({"array": np.array([_Payload(marker)], dtype=object)}, tmp_path / "objects.ckpt")
    with pytest.raises(ConfigError) as error:
        load_weights_file(tmp_path / "objects.ckpt", "ckpt_path")
    assert_refused(error, "ckpt_path", tmp_path / "objects.ckpt", marker)
