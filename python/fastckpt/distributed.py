"""One checkpoint saved by many processes: the little coordination ``Saver(process_group=...)`` needs, and
torch.distributed's, built in.

A save by a group writes one part per process (``<prefix>_temp/part-<rank>-of-<world>``, in parallel),
gathers every process's outcome, and then the first process merges the parts into one checkpoint (as
TensorFlow's ``MergeV2Checkpoints`` does), writes the state file and deletes old checkpoints; every process
gets the prefix, or the same error. All it asks of the processes' engine is a rank, a world size, a barrier
and an all-gather of small Python values: the ``Coordinator`` interface.

torch.distributed process groups (any backend; gloo needs no GPU) are taken as they are::

    torch.distributed.init_process_group("gloo")
    saver = fastckpt.Saver(process_group=torch.distributed.group.WORLD)
    saver.save({"emb": fastckpt.Slice(my_rows, full_shape, [first_row, 0]), **my_whole_tensors}, prefix)

Other engines plug in through a ``Coordinator`` of their own. With JAX's multi-process runtime
(``jax.distributed.initialize``), for example, over ``jax.experimental.multihost_utils``::

    import pickle
    import fastckpt, jax, numpy as np
    from jax.experimental import multihost_utils

    # Defined after jax.distributed.initialize(...): it reads the process's index and count.
    class JaxCoordinator:
        rank, world_size = jax.process_index(), jax.process_count()

        def barrier(self):
            multihost_utils.sync_global_devices("fastckpt")

        def all_gather(self, value):
            data = np.frombuffer(pickle.dumps(value), np.uint8)
            sizes = multihost_utils.process_allgather(np.array([data.size]))
            padded = np.zeros(int(sizes.max()), np.uint8)
            padded[: data.size] = data
            gathered = multihost_utils.process_allgather(padded)
            return [pickle.loads(row[: int(size)].tobytes()) for row, size in zip(gathered, sizes.ravel())]

    saver = fastckpt.Saver(process_group=JaxCoordinator())

A process that dies in a save makes the others' all-gather fail, and they raise
``fastckpt.errors.AbortedError`` naming the save: no index appears for it, the previous checkpoint stays the
latest, and the next save removes the parts it left. gloo sees a dead process's connections close at once; a
process that hangs instead is bounded by the group's timeout (``init_process_group(timeout=...)``; with JAX,
``jax.distributed.initialize``'s ``heartbeat_timeout_seconds`` and the like, and JAX's runtime may abort the
waiting process rather than raise).

With ``save_async``, the collectives run on the saver's background thread: give such a saver a group of its
own (``torch.distributed.new_group(backend="gloo")``), so that they never interleave with the training's.
"""

from __future__ import annotations

from typing import Any, List, Optional, Protocol, runtime_checkable

__all__ = ["Coordinator", "TorchCoordinator", "coordinator"]


@runtime_checkable
class Coordinator(Protocol):
    """What a Saver needs from the processes saving one checkpoint together. Every process calls each method
    at the same point of a save, in the same order.

    Attributes:
        rank: this process's number, from 0; process 0 merges the parts and writes the state file.
        world_size: how many processes save together.
    """

    rank: int
    world_size: int

    def barrier(self) -> None:
        """Returns once every process has called it."""
        ...  # pragma: no cover - an interface

    def all_gather(self, value: Any) -> List[Any]:
        """Every process's ``value`` (small, picklable), in rank order, once every process has given its own."""
        ...  # pragma: no cover - an interface


class TorchCoordinator:
    """A ``Coordinator`` over a torch.distributed process group (``None``: the default group)."""

    def __init__(self, group: Optional[Any] = None):
        import torch.distributed as dist

        if not dist.is_initialized():
            raise RuntimeError("torch.distributed is not initialized (torch.distributed.init_process_group)")
        self._dist = dist
        self._group = group
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)

    def barrier(self) -> None:
        self._dist.barrier(group=self._group)

    def all_gather(self, value: Any) -> List[Any]:
        gathered: List[Any] = [None] * self.world_size
        self._dist.all_gather_object(gathered, value, group=self._group)
        return gathered


def coordinator(process_group: Any) -> Coordinator:
    """The Coordinator for ``Saver(process_group=...)``: a torch.distributed process group, or a Coordinator."""
    if type(process_group).__module__.startswith("torch"):
        return TorchCoordinator(process_group)
    if isinstance(process_group, Coordinator):
        return process_group
    raise TypeError(
        "process_group must be a torch.distributed process group or a fastckpt.distributed.Coordinator "
        f"(rank, world_size, barrier(), all_gather(value)), not {type(process_group).__name__}"
    )
