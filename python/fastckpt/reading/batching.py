"""The batching rule of reads and writes that hold one batch in memory, not the model: ``fastckpt.convert``'s
tensors and ``fastckpt.torch``'s loads onto a device.

>>> list(batches(["a", "b", "c", "d"], [3, 3, 5, 1], limit=6))
[['a', 'b'], ['c', 'd']]
"""

from __future__ import annotations

from typing import Iterator, List, Sequence, TypeVar

__all__ = ["batches"]

T = TypeVar("T")


def batches(items: Sequence[T], sizes: Sequence[int], limit: int) -> Iterator[List[T]]:
    """``items`` in consecutive batches whose ``sizes`` add up to at most ``limit`` (an item larger than that
    alone): what is read or written at once, so that memory holds one batch, not the model."""
    batch: List[T] = []
    total = 0
    for item, size in zip(items, sizes):
        if batch and total + size > limit:
            yield batch
            batch, total = [], 0
        batch.append(item)
        total += size
    if batch:
        yield batch
