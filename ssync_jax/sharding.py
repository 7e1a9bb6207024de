"""Where sharding is decided: the device mesh, parameter placement and global batches.

One mesh axis, `data`, spans every device of every process. Batches are split over it; parameters
and optimizer state are replicated, or (`config.shard_params`) each large array is split over
`data` along its largest divisible axis, FSDP-style, for models that do not fit on one device.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"
# Arrays smaller than this stay replicated even with `shard_params`: splitting them saves little
# memory and costs an all-gather each.
_MIN_SHARDED_SIZE = 2**16


def initialize_distributed(
    coordinator_address: str | None, num_processes: int | None, process_id: int | None, auto: bool
) -> None:
    """Joins a multi-process job before anything touches a device.

    Args:
        coordinator_address: "host:port" of process 0; with the next two, an explicit cluster.
        num_processes: processes in the job.
        process_id: this process's index.
        auto: let JAX detect the cluster (TPU pods, SLURM, Open MPI) when no address is given.
    """
    if coordinator_address is not None:
        jax.distributed.initialize(coordinator_address, num_processes=num_processes, process_id=process_id)
    elif auto:
        jax.distributed.initialize()


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """All devices of all processes (or `devices`) on one `data` axis, in the order JAX enumerates them.

    Returns:
        A 1-D mesh with `Auto` axis types, so jit propagates shardings without explicit annotations.
    """
    devices = np.asarray(jax.devices() if devices is None else devices)
    return Mesh(devices, (DATA_AXIS,), axis_types=(AxisType.Auto,))


def replicated(mesh: Mesh) -> NamedSharding:
    """The same full copy on every device (scalars, small params, metrics)."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over `data`."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def _param_spec(shape: tuple[int, ...], num_shards: int) -> PartitionSpec:
    """Splits the largest axis divisible by `num_shards` of a large array; replicates the rest."""
    if num_shards == 1 or int(np.prod(shape, dtype=np.int64)) < _MIN_SHARDED_SIZE:
        return PartitionSpec()
    candidates = [axis for axis in np.argsort(shape)[::-1] if shape[axis] % num_shards == 0]
    if not candidates:
        return PartitionSpec()
    spec = [None] * len(shape)
    spec[int(candidates[0])] = DATA_AXIS
    return PartitionSpec(*spec)


def state_shardings(abstract_state: Any, mesh: Mesh, shard_params: bool) -> Any:
    """A sharding for every leaf of the (abstract) train state.

    Args:
        abstract_state: pytree of `jax.ShapeDtypeStruct` (from `jax.eval_shape`).
        mesh: the `data` mesh.
        shard_params: split large arrays over `data` instead of replicating them.

    Returns:
        A pytree of `NamedSharding` with the structure of `abstract_state`.
    """
    num_shards = mesh.shape[DATA_AXIS] if shard_params else 1
    return jax.tree.map(lambda leaf: NamedSharding(mesh, _param_spec(leaf.shape, num_shards)), abstract_state)


def with_shardings(abstract_state: Any, shardings: Any) -> Any:
    """`jax.ShapeDtypeStruct`s carrying their shardings: the restore target of a checkpoint."""
    return jax.tree.map(
        lambda leaf, s: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=s), abstract_state, shardings
    )


def global_batch(local_batch: Mapping[str, np.ndarray], mesh: Mesh, batch_axis: int = 0) -> dict[str, jax.Array]:
    """Assembles the global batch from every process's local piece.

    Args:
        local_batch: this process's numpy arrays (global batch / process count on `batch_axis`).
        mesh: the `data` mesh.
        batch_axis: the batch axis; 1 for several steps' batches stacked on a leading step axis.

    Returns:
        Global `jax.Array`s sharded over `data`, batch = sum of the local batches.

    Raises:
        ValueError: if the local batch does not divide evenly over this process's devices.
    """
    local_devices = jax.local_device_count()
    sharding = NamedSharding(mesh, PartitionSpec(*([None] * batch_axis), DATA_AXIS))
    out = {}
    for name, value in local_batch.items():
        if value.shape[batch_axis] % local_devices:
            raise ValueError(
                f"The per-process batch of {value.shape[batch_axis]} ('{name}') does not split over the "
                f"{local_devices} local devices; make the batch size in config.data a multiple of "
                f"{local_devices * jax.process_count()}."
            )
        out[name] = jax.make_array_from_process_local_data(sharding, value)
    return out
