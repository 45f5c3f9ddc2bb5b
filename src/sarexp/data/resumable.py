"""A training DataLoader that Lightning can checkpoint in the middle of an epoch and resume exactly.

Lightning saves the ``state_dict()`` of every train loader that has one in each checkpoint and hands it back
through ``load_state_dict()`` before it iterates again, but only when it creates the train loader after
restoring the checkpoint; :func:`restore_positions` covers the case where it created it before. The state is
the epoch's batch order seed (the torch RNG state from which the sampler's permutation and the workers' base
seed were drawn), the sampler epoch and how many batches the training loop has taken. Resuming inside an
epoch re-draws the same order from that seed, without touching the global RNG, and serves only the batches
not yet trained on; no sample is read to skip the others.

The order of an epoch is drawn when its first batch is fetched, not at ``iter()``: Lightning calls ``iter()``
at different moments in a fresh and in a resumed process (while setting up the optimizers, or after the
checkpoint is restored), while the first batch comes at the same point of training in both. So the first
epoch after a checkpoint written at the end of an epoch draws its order from the global RNG as restored
from that checkpoint, exactly as the uninterrupted run drew it, and advances it the same way.

Exact only for datasets whose ``__getitem__`` draws no global randomness (sarexp's readers draw none:
augmentation happens on the batch, in the training process, from RNG states the checkpoint restores).
"""

from collections.abc import Iterator, Sized
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset


class _Plan:
    """The epoch's batches (or indices) in order; iteration starts at ``start``, ``len`` is the whole epoch
    (Lightning counts the batches already trained on itself)."""

    def __init__(self, items: list[Any], start: int) -> None:
        self.items = items
        self.start = start

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items[self.start :])


class _Counting:
    """The loader's iterator for one epoch: starts the epoch at the first ``next()`` and counts the batches
    handed out; other attributes are those of the DataLoader's iterator once it exists."""

    def __init__(self, owner: "ResumableDataLoader") -> None:
        self._owner = owner
        self._iterator: Iterator[Any] | None = None

    def __iter__(self) -> "_Counting":
        return self

    def __next__(self) -> Any:
        if self._iterator is None:
            self._iterator = self._owner._start_epoch()
        batch = next(self._iterator)
        self._owner._served += 1
        return batch

    def __len__(self) -> int:
        return len(self._owner)

    def __getattr__(self, name: str) -> Any:
        iterator = self.__dict__.get("_iterator")
        if iterator is None:
            raise AttributeError(name)
        return getattr(iterator, name)


class ResumableDataLoader(DataLoader):
    """DataLoader with ``state_dict``/``load_state_dict`` for exact mid-epoch resumption (any sampler)."""

    _plan: _Plan | None = None
    _pending: dict[str, Any] | None = None
    _epoch_rng: torch.Tensor | None = None
    _served: int = 0

    @property
    def _index_sampler(self) -> Any:  # read by DataLoader iterators and len()
        return self._plan if self._plan is not None else super()._index_sampler

    def __iter__(self) -> _Counting:
        return _Counting(self)

    def _start_epoch(self) -> Iterator[Any]:
        """Draw the epoch's order (from the saved seed when resuming inside an epoch, else from the global
        RNG) and the DataLoader's iterator over the batches still to serve."""
        pending, self._pending = self._pending, None
        sampler = super()._index_sampler
        inside = pending is not None and pending["served"] < pending["length"]
        epoch = pending.get("epoch") if pending is not None else None
        if epoch is not None and not inside:
            epoch += 1  # the checkpoint was written after its epoch's last batch
        if epoch is not None and hasattr(_sampler_with_epoch(sampler), "set_epoch"):
            _sampler_with_epoch(sampler).set_epoch(epoch)
        with torch.random.fork_rng(devices=[], enabled=inside):
            if inside:
                torch.set_rng_state(pending["epoch_rng"])
            self._epoch_rng = torch.get_rng_state()
            self._plan = _Plan(list(sampler), pending["served"] if inside else 0)
            self._served = self._plan.start
            return super().__iter__()  # draws the workers' base seed

    def state_dict(self) -> dict[str, Any]:
        sampler = _sampler_with_epoch(super()._index_sampler)
        epoch = getattr(sampler, "epoch", None)
        return {
            "served": self._served,
            "length": len(self._plan) if self._plan is not None else 0,
            "epoch": epoch if isinstance(epoch, int) else None,
            "epoch_rng": self._epoch_rng if self._epoch_rng is not None else torch.get_rng_state(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = dict(state_dict)


def restore_positions(trainer: pl.Trainer) -> None:
    """Hand the train loaders the positions of the checkpoint being resumed if Lightning has not, and restart
    their iteration from there. Call it once training starts, before the first batch.

    Lightning (2.6) keeps the loader states of a checkpoint in ``FitLoop._combined_loader_states_to_load`` and
    gives them to the loaders in ``FitLoop.setup_data()`` only when that method creates the train loader after
    the checkpoint was restored, and while the loop counts as restarting. ``trainer.estimated_stepping_batches``
    (every sarexp system's ``configure_optimizers`` reads it for its LR schedule) calls ``setup_data()`` earlier,
    from ``strategy.setup()``, before ``restore_training_state()``, whenever ``trainer.max_epochs`` is not -1:
    the loader and its iterator are created then, and the later ``setup_data()`` returns early because the
    loader exists, so the saved states were never applied and the resumed run started a fresh epoch order. The same happens when a checkpoint was
    written after its epoch had fully ended (the loop then does not count as restarting).
    """
    fit_loop = trainer.fit_loop
    states = fit_loop._combined_loader_states_to_load
    if not states or fit_loop._combined_loader is None or fit_loop._data_fetcher is None:
        return
    fit_loop._combined_loader._load_state_dicts(states)
    fit_loop._combined_loader_states_to_load = []
    iter(fit_loop._data_fetcher)  # what setup_data() does after loading states: new iterators from the positions


def _sampler_with_epoch(index_sampler: Any) -> Any:
    """The sampler that knows the epoch: the batch sampler's sampler, or the sampler itself."""
    inner = getattr(index_sampler, "sampler", None)
    return inner if isinstance(inner, Sized) or hasattr(inner, "set_epoch") else index_sampler


def split_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    train: bool,
    num_workers: int,
    pin_memory: bool,
    persistent_workers: bool = True,
    **options: Any,
) -> DataLoader:
    """The loader of one split for a datamodule: the training loader shuffles (unless `options` bring a
    sampler) and resumes mid-epoch; evaluation loaders are plain DataLoaders in dataset order."""
    if "sampler" not in options:
        options["shuffle"] = train
    loader = ResumableDataLoader if train else DataLoader
    return loader(dataset, batch_size=batch_size, num_workers=num_workers, pin_memory=pin_memory,
                  persistent_workers=persistent_workers and num_workers > 0, **options)
