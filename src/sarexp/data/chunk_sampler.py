"""Sample order for datasets made of contiguous blocks (zarr chunks): each block is read once per epoch, by one
DataLoader worker, and batches may mix a few blocks (SSM4SAR's scene columns)."""

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from sarexp.data.config_values import check_positive


def _deal(groups: list[np.ndarray], n_lanes: int) -> list[np.ndarray]:
    """Deal index groups to lanes, each to the lane with fewest samples so far, keeping their order."""
    lanes: list[list[np.ndarray]] = [[] for _ in range(n_lanes)]
    sizes = [0] * n_lanes
    for group in groups:
        lane = sizes.index(min(sizes))
        lanes[lane].append(group)
        sizes[lane] += len(group)
    return [np.concatenate(lane) if lane else np.empty(0, dtype=np.int64) for lane in lanes]


def _interleave(lanes: list[np.ndarray], batch_size: int) -> np.ndarray:
    """Put batch k of the result in lane k mod n_lanes while every lane has full batches left.

    Partial batches go last, so the batch boundaries the DataLoader cuts match the lanes' batches.
    """
    full = [lane[: len(lane) - len(lane) % batch_size].reshape(-1, batch_size) for lane in lanes]
    rests = [lane[len(lane) - len(lane) % batch_size :] for lane in lanes]
    rounds = max(len(batches) for batches in full)
    ordered = [batches[round_] for round_ in range(rounds) for batches in full if round_ < len(batches)]
    return np.concatenate(ordered + rests)


class ChunkAwareSampler(Sampler[int]):
    """Sample order that shuffles whole blocks, then samples within groups of ``mix_blocks`` blocks.

    Each block (a contiguous index range) is read once per epoch by one process: with ``num_workers`` > 0
    the DataLoader hands batch k to worker k mod num_workers, so blocks are dealt to one lane per worker
    and the lanes' batches interleaved (only the last batches, where lanes end unevenly, may cross over).
    ``mix_blocks`` > 1 mixes samples of several blocks per batch; the cache must hold that many blocks.
    Deterministic for a given seed and :meth:`set_epoch` (Lightning calls it every epoch).
    """

    def __init__(
        self,
        block_ranges: Sequence[tuple[int, int]],
        *,
        shuffle: bool = True,
        seed: int = 0,
        batch_size: int = 1,
        num_workers: int = 0,
        mix_blocks: int = 1,
    ) -> None:
        check_positive(batch_size=batch_size, mix_blocks=mix_blocks)
        self.block_ranges = list(block_ranges)
        self.shuffle = shuffle
        self.seed = seed
        self.batch_size = batch_size
        self.n_lanes = max(num_workers, 1)
        self.mix_blocks = mix_blocks
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order :meth:`__iter__` yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(stop - start for start, stop in self.block_ranges)

    def order(self) -> np.ndarray:
        """All sample indices of this epoch, in the order they will be served."""
        if not self.block_ranges:
            return np.empty(0, dtype=np.int64)
        rng = np.random.default_rng([self.seed, self.epoch])
        blocks = rng.permutation(len(self.block_ranges)) if self.shuffle else np.arange(len(self.block_ranges))
        groups = []
        for first in range(0, len(blocks), self.mix_blocks):
            ranges = [np.arange(*self.block_ranges[block]) for block in blocks[first : first + self.mix_blocks]]
            group = np.concatenate(ranges)
            groups.append(rng.permutation(group) if self.shuffle else group)
        return _interleave(_deal(groups, self.n_lanes), self.batch_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order().tolist())
