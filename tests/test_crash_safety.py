"""Crash-safety pieces in process: atomic checkpoint writes (disk full), the periodic last checkpoint, the
resumable train loader, validation before a max_steps stop, stop signals, and one generator per data root."""

import errno
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader

from cli_helpers import TINY
from sarexp.callbacks import rng_state
from sarexp.io import atomic, atomic_checkpoint
from sarexp.io.atomic_checkpoint import AtomicCheckpointIO
from sarexp.callbacks.final_validation import ValidateBeforeStop
from sarexp.callbacks.last_checkpoint import LastCheckpoint
from sarexp.callbacks.preemption import PreemptionCheckpoint
from sarexp.data.resumable import ResumableDataLoader
from sarexp.data.synthetic import staging
from sarexp.errors import Interrupted, StorageError
from sarexp.tasks.train import train


class _Regression(pl.LightningModule):
    """Linear regression on fixed data; optionally sends itself a signal during step `signal_at`."""

    def __init__(self, signal_at: int | None = None, signum: int = signal.SIGTERM) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)
        self.signal_at = signal_at
        self.signum = signum

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        if self.global_step == self.signal_at:
            os.kill(os.getpid(), self.signum)
        return self.layer(batch).pow(2).mean()

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("val/loss", self.layer(batch).pow(2).mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _trainer(callbacks: list, **kwargs) -> pl.Trainer:
    options = dict(logger=False, enable_checkpointing=True, enable_progress_bar=False, enable_model_summary=False,
                   plugins=[AtomicCheckpointIO()], num_sanity_val_steps=0)
    return pl.Trainer(callbacks=callbacks, **{**options, **kwargs})


def _data(n: int = 20) -> DataLoader:
    return DataLoader(torch.randn(n, 4, generator=torch.Generator().manual_seed(0)), batch_size=2)


def _failing_save(after: int):
    """torch.save that writes some bytes, then fails with ENOSPC, from the `after`-th call on."""
    real = torch.save
    calls = {"n": 0}

    def save(obj, handle, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= after:
            handle.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, handle, *args, **kwargs)

    return save


def test_disk_full_keeps_the_previous_checkpoint_and_says_so_in_one_line(tmp_path, monkeypatch):
    target = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"global_step": 1, "w": torch.ones(3)}, target)
    before = target.read_bytes()
    monkeypatch.setattr(atomic_checkpoint.torch, "save", _failing_save(after=1))
    with pytest.raises(StorageError) as raised:
        io.save_checkpoint({"global_step": 2, "w": torch.zeros(3)}, target)
    message = str(raised.value)
    assert "\n" not in message and "disk full" in message and str(target) in message
    assert target.read_bytes() == before
    assert [path.name for path in target.parent.iterdir()] == ["last.ckpt"]  # no temporary file left


def test_disk_full_during_fit_ends_with_storage_error_and_a_resumable_last_checkpoint(tmp_path, monkeypatch):
    last = tmp_path / "last.ckpt"
    monkeypatch.setattr(atomic_checkpoint.torch, "save", _failing_save(after=4))
    trainer = _trainer([LastCheckpoint(str(last), every_n_train_steps=1)], max_steps=8, limit_val_batches=0)
    with pytest.raises(StorageError):
        trainer.fit(_Regression(), _data())
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 3


def test_last_checkpoint_every_n_steps_and_every_t_minutes(tmp_path, monkeypatch):
    saved: list[int] = []
    real_save = LastCheckpoint.save
    monkeypatch.setattr(LastCheckpoint, "save",
                        lambda self, trainer: (saved.append(trainer.global_step), real_save(self, trainer)))
    by_steps = LastCheckpoint(str(tmp_path / "a.ckpt"), every_n_train_steps=3, train_time_interval=None,
                              save_on_validation_end=False)
    _trainer([by_steps], max_steps=8, limit_val_batches=0).fit(_Regression(), _data())
    assert saved == [3, 6, 8]  # and the final step
    saved.clear()
    by_time = LastCheckpoint(str(tmp_path / "b.ckpt"), train_time_interval=1e-9, save_on_validation_end=False)
    _trainer([by_time], max_steps=4, limit_val_batches=0).fit(_Regression(), _data())
    assert saved == [1, 2, 3, 4]


def test_resumable_loader_serves_the_remaining_batches_without_touching_the_rng():
    dataset = torch.arange(40)
    torch.manual_seed(1)
    loader = ResumableDataLoader(dataset, batch_size=4, shuffle=True)
    iterator = iter(loader)
    taken = [next(iterator) for _ in range(3)]
    state = loader.state_dict()
    remaining = list(iterator)
    assert len(taken) + len(remaining) == 10

    torch.manual_seed(99)  # another process, another RNG state
    resumed = ResumableDataLoader(dataset, batch_size=4, shuffle=True)
    resumed.load_state_dict(state)
    rng_before = torch.get_rng_state()
    served = list(resumed)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert [batch.tolist() for batch in served] == [batch.tolist() for batch in remaining]
    assert len(resumed) == 10  # Lightning counts the batches already trained itself


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    np.random.standard_normal()  # a cached Gaussian in NumPy's state
    torch.save(rng_state.capture(), tmp_path / "rng.pt")
    expected = (random.random(), np.random.standard_normal(), torch.rand(2))
    rng_state.restore(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), np.random.standard_normal()) == expected[:2]
    assert torch.equal(torch.rand(2), expected[2])


def test_a_max_steps_stop_inside_an_epoch_validates_first(tmp_path):
    def best_score(callbacks: list) -> object:
        checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val/loss")
        _trainer([*callbacks, checkpoint], max_steps=3).fit(_Regression(), _data(), _data(4))
        return checkpoint.best_model_score

    assert best_score([]) is None  # what Lightning does alone: no validation, nothing to return to a sweeper
    assert isinstance(float(best_score([ValidateBeforeStop()])), float)


def test_a_last_epoch_off_the_validation_interval_validates(tmp_path):
    def validated_epochs(callbacks: list) -> list[int]:
        checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val/loss", save_top_k=-1,
                                     filename="{epoch}")
        _trainer([*callbacks, checkpoint], max_epochs=7, check_val_every_n_epoch=3).fit(
            _Regression(), _data(8), _data(4))
        epochs = sorted(int(path.stem.split("=")[1]) for path in tmp_path.glob("epoch=*.ckpt"))
        for path in tmp_path.glob("epoch=*.ckpt"):
            path.unlink()
        return epochs

    assert validated_epochs([]) == [2, 5]  # Lightning alone: the last epoch (6) ends unvalidated
    assert validated_epochs([ValidateBeforeStop()]) == [2, 5, 6]


def test_a_max_time_stop_inside_an_epoch_validates_first(tmp_path):
    class Slow(_Regression):
        def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
            time.sleep(0.3)
            return super().training_step(batch, batch_idx)

    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val/loss")
    trainer = _trainer([ValidateBeforeStop(), checkpoint], max_time={"seconds": 1})
    trainer.fit(Slow(), _data(100), _data(4))
    assert 0 < trainer.global_step < 50  # stopped inside the first epoch
    assert checkpoint.best_model_score is not None


def test_train_task_returns_the_monitor_when_max_steps_ends_mid_epoch(compose_config):
    cfg = compose_config(["experiment=ssm4sar", *TINY, "trainer.max_steps=3", "trainer.limit_val_batches=1"])
    value = train(cfg, test=False)
    assert isinstance(value, float) and np.isfinite(value)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("ctrl_c_before", ["python", "ignored"])
def test_stop_signal_saves_at_the_next_step_and_raises_one_line(tmp_path, signum, ctrl_c_before):
    # a process started in the background by a non-interactive shell inherits SIGINT ignored; after fit,
    # Ctrl-C must do what it did before: KeyboardInterrupt with Python's handler, nothing when ignored
    before = signal.default_int_handler if ctrl_c_before == "python" else signal.SIG_IGN
    inherited = signal.signal(signal.SIGINT, before)
    try:
        last = tmp_path / "last.ckpt"
        trainer = _trainer([PreemptionCheckpoint(str(last))], max_steps=50, limit_val_batches=0)
        with pytest.raises(Interrupted) as raised:
            trainer.fit(_Regression(signal_at=4, signum=signum), _data(200))
        assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 5
        message = str(raised.value)
        assert "\n" not in message and signal.Signals(signum).name in message and "same command" in message
        if ctrl_c_before == "python":
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1)
        else:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)  # still alive, no exception
    finally:
        signal.signal(signal.SIGINT, inherited)


def _prepare(cfg, barrier, results) -> None:
    barrier.wait()
    datamodule = instantiate(cfg.data, _convert_="object")
    datamodule.prepare_data()
    datamodule.setup("fit")
    results.put((os.getpid(), len(datamodule.datasets["train"])))


def test_two_runs_on_one_empty_root_generate_once_and_both_see_the_whole_dataset(compose_config, tmp_path,
                                                                                 monkeypatch):
    cfg = compose_config(["experiment=pdm_sar_lowres", "data.image_size=8",
                          "data.generator.counts={train:10,val:2,test:2}", f"data.root={tmp_path / 'shared'}"])
    generated = tmp_path / "generated_by"
    real = staging._stage_and_publish

    def recording(root, fill):
        with open(generated, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        return real(root, fill)

    monkeypatch.setattr(staging, "_stage_and_publish", recording)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_prepare, args=(cfg, barrier, results)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    sizes = [results.get(timeout=5)[1] for _ in processes]
    assert len(generated.read_text().split()) == 1  # one generated, the other waited for it
    assert sizes[0] == sizes[1] > 0


def test_disk_full_while_writing_samples_keeps_the_previous_file(tmp_path, monkeypatch):
    from sarexp.tasks import generative

    target = tmp_path / "samples.npz"
    generative.write_npz_atomic(target, images=np.zeros(3))

    def full(handle, **arrays):
        handle.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(generative.np, "savez", full)
    with pytest.raises(StorageError, match="disk full"):
        generative.write_npz_atomic(target, images=np.ones(3))
    assert np.load(target)["images"].tolist() == [0.0, 0.0, 0.0]
    assert [path.name for path in tmp_path.iterdir()] == ["samples.npz"]


def test_disk_full_keeps_metrics_json_and_arad_cubes_intact(tmp_path, monkeypatch):
    """metrics.json and the HSI cube writer give one line on a full disk and keep the previous file."""
    from sarexp import rundir
    from sarexp.data import arad_files

    rundir.write_metrics(tmp_path, {"val/loss": 1.0})
    metrics_before = (tmp_path / "metrics.json").read_bytes()
    cube_path = tmp_path / "scene.mat"
    arad_files.write_cube(cube_path, np.ones((31, 4, 5), dtype=np.float32))
    cube_before = cube_path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(StorageError, match="metrics.json.*disk full"):
        rundir.write_metrics(tmp_path, {"val/loss": 2.0})
    monkeypatch.setattr(arad_files.os, "replace", full)
    with pytest.raises(StorageError, match="scene.mat.*disk full") as raised:
        arad_files.write_cube(cube_path, np.zeros((31, 4, 5), dtype=np.float32))
    assert "\n" not in str(raised.value)
    assert (tmp_path / "metrics.json").read_bytes() == metrics_before
    assert cube_path.read_bytes() == cube_before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["metrics.json", "scene.mat"]
