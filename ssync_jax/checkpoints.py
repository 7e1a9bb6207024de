"""orbax checkpoints of the train state together with the grain iterator's position.

A checkpoint at step k holds two items: `state` (params, optimizer state, step, rng; every process
writes its shards) and `data` (one small JSON per process: where its training iterator stands).
Restoring both resumes on exactly the batch the interrupted run would have read next.

Which checkpoints stay: the latest `max_to_keep`, plus, with `keep_best`, the `keep_best` ones
with the highest validation FG-ARI among those saved with metrics.
"""

import os
from collections.abc import Mapping
from typing import Any

import grain
import orbax.checkpoint as ocp
from etils import epath

from ssync_jax import paths

STATE_ITEM = "state"
DATA_ITEM = "data"
BEST_METRIC = "video_fg_ari"


def checkpoint_dir(workdir: str) -> str:
    """The absolute checkpoint directory of a workdir (orbax rejects relative paths)."""
    return os.path.join(paths.absolute(workdir), "checkpoints")


def create_manager(
    workdir: str, max_to_keep: int, keep_best: int = 0, asynchronous: bool = True
) -> ocp.CheckpointManager:
    """A CheckpointManager for `workdir/checkpoints`.

    Args:
        workdir: the experiment directory (relative paths are made absolute).
        max_to_keep: how many of the latest checkpoints to keep.
        keep_best: also keep this many checkpoints with the best `video_fg_ari` (0: off).
        asynchronous: write in a background thread after the arrays are copied to host memory.

    Returns:
        The manager; call `close()` (or `wait_until_finished()`) before the process exits.
    """
    policies: list[Any] = [ocp.checkpoint_managers.LatestN(n=max_to_keep)]
    if keep_best:
        policies.append(
            ocp.checkpoint_managers.BestN(
                get_metric_fn=lambda metrics: metrics[BEST_METRIC],
                reverse=False,
                n=keep_best,
                keep_checkpoints_without_metrics=False,
            )
        )
    options = ocp.CheckpointManagerOptions(
        preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
        enable_async_checkpointing=asynchronous,
        create=True,
    )
    return ocp.CheckpointManager(checkpoint_dir(workdir), options=options)


def save(
    manager: ocp.CheckpointManager,
    step: int,
    state: Any,
    data_iterator: grain.DatasetIterator | None,
    metrics: Mapping[str, float] | None = None,
) -> None:
    """Saves the train state and the iterator position at `step` (async when the manager is).

    Returns once the arrays are on the host, so the caller may donate `state` right after.

    Args:
        manager: from `create_manager`.
        step: the number of training steps taken.
        state: the train state pytree.
        data_iterator: the training iterator (None in evaluation-only jobs).
        metrics: validation metrics at this step, for keep-best.
    """
    items = {STATE_ITEM: ocp.args.StandardSave(state)}
    if data_iterator is not None:
        items[DATA_ITEM] = grain.checkpoint.CheckpointSave(data_iterator)
    manager.save(step, args=ocp.args.Composite(**items), metrics=dict(metrics) if metrics else None, force=True)


def restore(
    manager: ocp.CheckpointManager,
    abstract_state: Any,
    data_iterator: grain.DatasetIterator | None,
    step: int | None = None,
) -> Any | None:
    """Restores the train state (and moves `data_iterator` to its saved position).

    Args:
        manager: from `create_manager`.
        abstract_state: the state's structure as `jax.ShapeDtypeStruct`s with shardings.
        data_iterator: the training iterator to reposition, or None to skip the data item.
        step: which checkpoint; None for the latest.

    Returns:
        The restored state, or None when there is no checkpoint.
    """
    step = manager.latest_step() if step is None else step
    if step is None:
        return None
    items = {STATE_ITEM: ocp.args.StandardRestore(abstract_state)}
    if data_iterator is not None:
        items[DATA_ITEM] = grain.checkpoint.CheckpointRestore(data_iterator)
    restored = manager.restore(step, args=ocp.args.Composite(**items))
    return restored[STATE_ITEM]


def restore_params(path: str, abstract_params: Any) -> Any:
    """Model params from an orbax `{"params": ...}` checkpoint, e.g. the authors' weights converted by
    `python -m ssync_jax.tools.import_torch_checkpoint`.

    Args:
        path: the checkpoint directory (relative paths are made absolute).
        abstract_params: the params' structure as `jax.ShapeDtypeStruct`s with shardings.

    Returns:
        The params, placed on the given shardings.

    Raises:
        FileNotFoundError: `path` is not a directory.
    """
    path = paths.absolute(path)
    if not epath.Path(path).is_dir():
        raise FileNotFoundError(
            f"No params checkpoint at {path} (config.eval.params_checkpoint); convert the authors' weights "
            "first: python -m ssync_jax.tools.import_torch_checkpoint --ckpt FILE --config CONFIG --out DIR"
        )
    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(path, {"params": abstract_params})["params"]
