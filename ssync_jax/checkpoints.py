"""The layout of a workdir and of its checkpoints: the one place that reads and writes them, and
loads a trained model from any of them (`load_model`).

A workdir holds `config.json` (the resolved config, written once by main.py: `ssync_jax.run_record`), `checkpoints/`, TensorBoard
events, `eval_metrics.json` (the latest evaluation) and `eval_history.jsonl` (one line per
evaluation during training: the learning curve). A checkpoint at step k holds two items: `state` (params, optimizer
state, step, rng; every process writes its shards) and `data` (one small JSON per process: where
its training iterator stands). Restoring both resumes on exactly the batch the interrupted run would
have read next. A *params checkpoint* (`{"params": ...}`, e.g. the authors' weights converted by
`python -m ssync_jax.tools.import_torch_checkpoint`) holds params alone and no config.

Which checkpoints stay: the latest `max_to_keep`, plus, with `keep_best`, the `keep_best` ones
with the highest validation FG-ARI among those saved with metrics.

A *model directory* is a trained model in three small files anyone can load without the workdir
(`inference.load(DIR)`; the one shipped with the package is `SHIPPED_MODEL`): `params.safetensors`
(the params, one tensor per leaf, named by its path), `config.json` (the run's config) and
`model.json` (where it came from: step, metrics, the command that trained it).

    model, params, config, step = load_model("workdirs/synthetic")  # or a model directory, params checkpoint
"""

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import safetensors.numpy
from absl import logging
from flax import traverse_util

import grain
import jax
import ml_collections
import orbax.checkpoint as ocp
from etils import epath
from flax import linen as nn

from ssync_jax import errors, logs, paths, sharding
from ssync_jax.models import abstract_params, build_model
from ssync_jax.run_record import CHECKPOINTS_DIR as _CHECKPOINTS
from ssync_jax.run_record import CONFIG_FILE

STATE_ITEM = "state"
DATA_ITEM = "data"
BEST_METRIC = "video_fg_ari"
EVAL_JSON = "eval_metrics.json"
EVAL_HISTORY = "eval_history.jsonl"
MODEL_PARAMS = "params.safetensors"
MODEL_INFO = "model.json"
# The default's trained model, shipped inside the package (ssync_jax/pretrained/default).
SHIPPED_MODEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained", "default")


def checkpoint_dir(workdir: str) -> str:
    """The absolute checkpoint directory of a workdir (orbax rejects relative paths)."""
    return os.path.join(paths.absolute(workdir), _CHECKPOINTS)


def _reader(directory: str) -> ocp.CheckpointManager:
    """A read-only manager of another run's checkpoints, created without orbax's notes about being
    read-only (three warnings a library user would otherwise see on every load)."""
    with logs.libraries_quiet():
        return ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(read_only=True))


def create_manager(
    workdir: str,
    max_to_keep: int,
    keep_best: int = 0,
    asynchronous: bool = True,
    keep_steps: Sequence[int] = (),
) -> ocp.CheckpointManager:
    """A CheckpointManager for `workdir/checkpoints`.

    Args:
        workdir: the experiment directory (relative paths are made absolute).
        max_to_keep: how many of the latest checkpoints to keep.
        keep_best: also keep this many checkpoints with the best `video_fg_ari` (0: off).
        asynchronous: write in a background thread after the arrays are copied to host memory.
        keep_steps: checkpoints of these steps are never deleted (e.g. where other runs branch off).

    Returns:
        The manager; call `close()` (or `wait_until_finished()`) before the process exits.
    """
    policies: list[Any] = [ocp.checkpoint_managers.LatestN(n=max_to_keep)]
    if keep_steps:
        policies.append(ocp.checkpoint_managers.CustomSteps(steps=sorted(int(step) for step in keep_steps)))
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
    try:  # An earlier asynchronous write that failed surfaces here too.
        manager.save(step, args=ocp.args.Composite(**items), metrics=dict(metrics) if metrics else None, force=True)
    except Exception as error:  # Whatever the storage layer raises: the run cannot go on without its saves.
        raise _write_failure(manager, error) from error


def finish(manager: ocp.CheckpointManager) -> None:
    """Waits for the checkpoint being written, then closes the manager; a failed write as one error."""
    try:
        manager.wait_until_finished()
    except Exception as error:
        raise _write_failure(manager, error) from error
    finally:
        try:
            manager.close()
        except Exception:  # Already reported by wait_until_finished, or nothing left to close.
            pass


def _write_failure(manager: ocp.CheckpointManager, error: Exception) -> errors.CheckpointWriteError:
    text = " ".join(str(error).split())
    reason = "no space left on the device" if "No space left on device" in text else text[:200]
    steps = manager.all_steps(read=True)
    last = f"step {max(steps)}" if steps else "none"
    return errors.CheckpointWriteError(
        f"Could not write a checkpoint in {manager.directory}: {reason}. The last complete one is {last}; free "
        "space (or fix the folder) and rerun the same command to resume from it."
    )


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


def params_mismatch(directory: str, step: int, abstract_params: Any, shapes_only: bool = False) -> str | None:
    """The first parameter whose shape differs between a checkpoint and a model, or None.

    Read from the checkpoint's metadata alone (no array is read), so that a checkpoint of another
    model is named as such, not reported as a damaged one.

    Args:
        directory: a checkpoint directory (`checkpoint_dir(workdir)`).
        step: the checkpoint.
        abstract_params: the model's params as shapes.
        shapes_only: compare only the parameters both have: a parameter absent on one side is also
            what a checkpoint cut short looks like, so it alone does not prove another model.

    Returns:
        "params.<path> is <shape> in the checkpoint, <shape> in this model", or None (also when its
        metadata cannot be read: the restore then says what is wrong).
    """
    try:
        with ocp.StandardCheckpointer() as checkpointer:
            metadata = checkpointer.metadata(os.path.join(directory, str(step), STATE_ITEM))
        leaves = jax.tree.leaves(getattr(metadata, "item_metadata", metadata), is_leaf=lambda x: hasattr(x, "shape"))
    except Exception:  # Damaged metadata: `resume` reports it with the restore's own error.
        return None
    stored = {leaf.name: tuple(leaf.shape) for leaf in leaves if str(leaf.name).startswith("params.")}
    expected = {f"params.{name}": tuple(leaf.shape) for name, leaf in traverse_util.flatten_dict(abstract_params, sep=".").items()}
    names = set(stored) & set(expected) if shapes_only else set(stored) | set(expected)
    for name in sorted(names):
        if stored.get(name) != expected.get(name):
            return f"{name} is {stored.get(name, 'absent')} in the checkpoint, {expected.get(name, 'absent')} in this model"
    return None


UNREADABLE_PREFIX = "unreadable_"


def resume(manager: ocp.CheckpointManager, abstract_state: Any, data_iterator: grain.DatasetIterator | None) -> Any | None:
    """The latest checkpoint that reads back whole (and the data position saved with it), for a rerun.

    A checkpoint that cannot be read (a truncated or corrupted file, a write cut short by a full
    disk) is moved aside to `checkpoints/unreadable_<step>`, never deleted, and the step before it is
    tried; a warning line says which. Nothing is moved unless an earlier checkpoint does read back.

    Args:
        manager: from `create_manager`.
        abstract_state: the state's structure as `jax.ShapeDtypeStruct`s with shardings.
        data_iterator: the training iterator to reposition, or None to skip the data item.

    Returns:
        The restored state, or None when the workdir has no checkpoint.

    Raises:
        ValueError: no checkpoint reads back (one line naming the latest and why).
    """
    steps = sorted(manager.all_steps(), reverse=True)
    # Another model's checkpoint (a parameter of another shape) is refused as such, before any array is
    # read; one that merely lacks parameters may be damaged, and is tried below like any other.
    mismatch = params_mismatch(str(manager.directory), steps[0], abstract_state.params, shapes_only=True) if steps else None
    if mismatch:
        raise errors.ConfigError(
            f"{manager.directory}: its step-{steps[0]} checkpoint holds another model ({mismatch}); resume with the "
            "config it was trained with (its workdir's config.json), or train this one in a new workdir."
        )
    unreadable = []
    for step in steps:
        try:
            state = restore(manager, abstract_state, data_iterator, step)
        except Exception as error:  # Whatever the storage layer raises for a damaged checkpoint.
            unreadable.append((step, " ".join(str(error).split())[:300]))
            continue
        for bad, reason in unreadable:
            kept = os.path.join(str(manager.directory), f"{UNREADABLE_PREFIX}{bad}")
            os.replace(os.path.join(str(manager.directory), str(bad)), kept)
            logging.warning("Checkpoint %d cannot be read back (%s); kept as %s, resuming from step %d.", bad, reason, kept, step)
        if unreadable:
            manager.reload()
        return state
    if not steps:
        return None
    step, reason = unreadable[0]
    raise errors.ConfigError(
        f"No checkpoint in {manager.directory} reads back; the latest, step {step}: {reason}. If this run's config "
        "changed since it was saved, rerun with its config.json; else move the damaged steps away to start afresh."
    )


def restore_run(
    path: str, abstract_state: Any, data_iterator: grain.DatasetIterator | None, step: int | None = None
) -> tuple[Any, int]:
    """Another run's train state at `step` (and, given an iterator, its training data position).

    This is how a run starts from another's checkpoint (`config.init_from`): it continues from
    exactly where that run stood, with its parameters, optimizer state, step and RNG; the
    other run's directory is only read.

    Args:
        path: the other run's workdir.
        abstract_state: this run's state structure as `jax.ShapeDtypeStruct`s with shardings.
        data_iterator: this run's training iterator, moved to the other run's position; None
            leaves it at its start.
        step: which checkpoint; None for the latest.

    Returns:
        (the restored state, its step).

    Raises:
        FileNotFoundError: no such checkpoint (the message lists the steps there).
        ValueError: the checkpoint's arrays do not fit this run's model.
    """
    directory = checkpoint_dir(path)
    manager = _reader(directory)
    try:
        step = _existing_step(
            manager, step, f"config.init_from={path}: no {{wanted}} in {directory} (steps there: {{steps}}); set "
            "config.init_from_step to one of those steps."
        )
        try:
            state = restore(manager, abstract_state, data_iterator, step)
        except ValueError as error:
            mismatch = params_mismatch(directory, step, abstract_state.params)  # Names the parameter, if one.
            raise errors.ConfigError(
                f"config.init_from={path}: its step-{step} checkpoint does not fit this run's model ({mismatch or error}); "
                "start from a run of the same model settings, or use config.init_from_params_only with a "
                "params checkpoint of this model."
            ) from error
    finally:
        manager.close()
    return state, step


def check_source(path: str, step: int | None, key: str) -> None:
    """That another run's checkpoint named by config key `key` is there: a training workdir holding
    `step` (None: any), a model directory, or an orbax params checkpoint (then `step` must be None).

    Raises:
        FileNotFoundError, ValueError: one line naming `key`, what is there and the fix.
    """
    location = epath.Path(paths.absolute(path))
    if not location.exists():
        raise errors.InputNotFoundError(f"config.{key}={path}: nothing there; name a training workdir, a model "
                                        "directory or an orbax params checkpoint.")  # fmt: skip
    if is_model_dir(str(location)) or not is_workdir(str(location)):
        if step is not None:
            raise errors.ConfigError(f"config.{key}={path} holds a single set of params; leave its step unset.")
        return
    manager = _reader(checkpoint_dir(path))
    try:
        _existing_step(manager, step, f"config.{key}={path}: no {{wanted}} there (steps there: {{steps}}).")
    finally:
        manager.close()


def _existing_step(manager: ocp.CheckpointManager, step: int | None, message: str) -> int:
    """`step`, or the latest when None, if the manager holds it; else `message` (with {wanted} and
    {steps} filled in) as an InputNotFoundError."""
    steps = sorted(manager.all_steps())
    if not steps or (step is not None and step not in steps):
        wanted = "checkpoint" if step is None else f"checkpoint of step {step}"
        raise errors.InputNotFoundError(message.format(wanted=wanted, steps=steps))
    return steps[-1] if step is None else step


def write_evaluation(workdir: str, results: Mapping[str, float | int], step: int, history: bool) -> None:
    """Writes `{"step": step, **results}` to `eval_metrics.json` and, with `history`, appends it to
    `eval_history.jsonl` (process 0 only; each file replaced whole, never left half-written)."""
    if jax.process_index() != 0:
        return
    workdir = paths.absolute(workdir)
    record = {"step": step, **results}
    paths.write_json(os.path.join(workdir, EVAL_JSON), record)
    if history:
        file = epath.Path(os.path.join(workdir, EVAL_HISTORY))
        lines = file.read_text().splitlines() if file.exists() else []
        earlier = [line for line in lines if json.loads(line)["step"] < step]  # A resumed run redoes later steps.
        temporary = epath.Path(str(file) + ".tmp")
        temporary.write_text("".join(line + "\n" for line in [*earlier, json.dumps(record, sort_keys=True)]))
        temporary.replace(file)


def read_evaluations(workdir: str) -> list[dict[str, float]]:
    """The evaluations `write_evaluation` appended during training, in step order (the learning curve)."""
    file = epath.Path(paths.absolute(workdir)) / EVAL_HISTORY
    return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []


def read_config(workdir: str) -> ml_collections.ConfigDict:
    """The config main.py recorded in the workdir (`ssync_jax.run_record`)."""
    file = epath.Path(paths.absolute(workdir)) / CONFIG_FILE
    if not file.is_file():
        raise errors.InputNotFoundError(
            f"{workdir} has no {CONFIG_FILE} (main.py writes it); pass the --workdir of a python main.py run, or "
            "give the config of an imported params checkpoint."
        )
    return ml_collections.ConfigDict(json.loads(file.read_text()))


def is_workdir(path: str) -> bool:
    """Whether `path` is a training workdir (it holds `checkpoints/`), as opposed to a params checkpoint
    or a model directory (`is_model_dir`, which holds a `config.json` too).

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: `path` is a file, or one step directory inside a workdir's checkpoints.
    """
    location = epath.Path(paths.absolute(path))
    if not location.exists():
        raise errors.InputNotFoundError(
            f"No workdir or checkpoint at {path}; pass the --workdir of a training run (python main.py "
            "--config ... --workdir DIR) or an orbax params checkpoint directory."
        )
    if not location.is_dir():
        raise errors.ConfigError(
            f"{path} is a file, not a workdir or orbax checkpoint directory; convert the authors' PyTorch "
            "checkpoints first: python -m ssync_jax.tools.import_torch_checkpoint --ckpt FILE --config CONFIG --out DIR"
        )
    if (location / STATE_ITEM).is_dir():
        raise errors.ConfigError(
            f"{path} is one step of a workdir's checkpoints; pass the workdir itself (the folder holding "
            f"{_CHECKPOINTS}/) and the step: load(workdir, step=N), or --workdir W --step N."
        )
    if is_model_dir(str(location)):
        return False
    return (location / _CHECKPOINTS).is_dir() or (location / CONFIG_FILE).is_file()


def restore_params(path: str, abstract_params: Any, step: int | None = None) -> tuple[Any, int]:
    """Model params from a workdir's checkpoint (only the params are read) or from a params checkpoint.

    Args:
        path: a training workdir or a params checkpoint (see the module docstring); relative paths
            are made absolute.
        abstract_params: the params' structure as `jax.ShapeDtypeStruct`s with shardings.
        step: the workdir checkpoint; None for the latest. Params checkpoints have no steps.

    Returns:
        (params placed on the given shardings, their step: 0 for a params checkpoint).

    Raises:
        FileNotFoundError: no checkpoint there (or none of `step`).
        ValueError: `step` given for a params checkpoint, or `path` not a checkpoint at all.
    """
    path = paths.absolute(path)
    if not is_workdir(path):
        if step is not None:
            raise errors.ConfigError(f"{path} is a params checkpoint with a single step; leave the step unset.")
        with ocp.StandardCheckpointer() as checkpointer:
            try:
                return checkpointer.restore(path, {"params": abstract_params})["params"], 0
            except FileNotFoundError as error:
                raise errors.InputNotFoundError(
                    f"{path} is neither a training workdir nor an orbax params checkpoint ({error})"
                ) from error
    directory = checkpoint_dir(path)
    if not epath.Path(directory).is_dir():
        raise errors.InputNotFoundError(
            f"No checkpoint in {directory}; train first (python main.py --config ... --workdir {path}), point at "
            "a trained run's workdir, or evaluate an imported model with --config.eval.params_checkpoint=DIR."
        )
    manager = _reader(directory)
    try:
        step = _existing_step(
            manager, step, f"No {{wanted}} in {directory} (steps there: {{steps}}); pick one of those steps, or train "
            f"first (python main.py --config ... --workdir {path})."
        )
        item = {"params": abstract_params}
        restore = ocp.args.PyTreeRestore(
            item=item, restore_args=ocp.checkpoint_utils.construct_restore_args(item), partial_restore=True
        )
        restored = manager.restore(step, args=ocp.args.Composite(**{STATE_ITEM: restore}))
    finally:
        manager.close()
    return restored[STATE_ITEM]["params"], step


def read_params(path: str, step: int | None = None) -> dict:
    """Another run's params as it saved them, on the host, without building its model: for taking a
    part of them (`config.model.encoder.backbone_from`).

    Args:
        path: a training workdir (its checkpoint at `step`, None: the latest), a model directory or
            an orbax params checkpoint; relative paths are made absolute.
        step: the workdir checkpoint; model directories and params checkpoints have a single one.

    Returns:
        The params as nested dicts of numpy arrays.

    Raises:
        FileNotFoundError: nothing there, or no checkpoint (of `step`) in the workdir.
        ValueError: `step` given for a model directory or params checkpoint.
    """
    path = paths.absolute(path)
    if is_model_dir(path):
        if step is not None:
            raise errors.ConfigError(f"{path} is a model directory with a single step; leave the step unset.")
        return traverse_util.unflatten_dict(safetensors.numpy.load_file(os.path.join(path, MODEL_PARAMS)), sep="/")
    if not is_workdir(path):
        if step is not None:
            raise errors.ConfigError(f"{path} is a params checkpoint with a single step; leave the step unset.")
        with ocp.StandardCheckpointer() as checkpointer:
            try:
                return jax.device_get(checkpointer.restore(path)["params"])
            except (FileNotFoundError, KeyError) as error:
                raise errors.InputNotFoundError(
                    f"{path} is neither a training workdir, a model directory nor an orbax params checkpoint ({error})"
                ) from error
    directory = checkpoint_dir(path)
    if not epath.Path(directory).is_dir():
        raise errors.InputNotFoundError(f"No checkpoint in {directory}; point at a trained run's workdir.")
    manager = _reader(directory)
    try:
        step = _existing_step(manager, step, f"No {{wanted}} in {directory} (steps there: {{steps}}); pick one of those.")
        # No restore target: the arrays come back as saved, whatever model they belong to.
        restored = manager.restore(step, args=ocp.args.Composite(**{STATE_ITEM: ocp.args.StandardRestore()}))
    finally:
        manager.close()
    return jax.device_get(restored[STATE_ITEM]["params"])


def is_model_dir(path: str) -> bool:
    """Whether `path` is a model directory (`write_model_dir`)."""
    return os.path.isfile(os.path.join(path, MODEL_PARAMS)) and os.path.isfile(os.path.join(path, CONFIG_FILE))


def write_model_dir(out: str, config: ml_collections.ConfigDict, params: Any, info: Mapping[str, Any]) -> None:
    """Writes a model directory; refuses to overwrite one that exists.

    Args:
        out: the directory to create.
        config: the run's config.
        params: its params (arrays on any device).
        info: what `model.json` records (step, metrics, command, ...).
    """
    if os.path.exists(out) and os.listdir(out):
        raise errors.WouldOverwriteError(f"{out} exists and is not empty; choose a new --out or remove it first.")
    os.makedirs(out, exist_ok=True)
    flat = traverse_util.flatten_dict(jax.device_get(params), sep="/")
    safetensors.numpy.save_file({name: np.asarray(value) for name, value in flat.items()}, os.path.join(out, MODEL_PARAMS))
    paths.write_json(os.path.join(out, CONFIG_FILE), json.loads(config.to_json_best_effort()))
    paths.write_json(os.path.join(out, MODEL_INFO), dict(info))


def read_model_dir(path: str, abstract_params: Any) -> Any:
    """A model directory's params, checked against the model's and placed on their shardings."""
    flat = safetensors.numpy.load_file(os.path.join(path, MODEL_PARAMS))
    expected = traverse_util.flatten_dict(abstract_params, sep="/")
    if set(flat) != set(expected) or any(flat[k].shape != expected[k].shape for k in expected):
        raise errors.ConfigError(f"{path}: its params do not fit the model its config.json describes; the files disagree.")
    placed = {k: jax.device_put(flat[k].astype(expected[k].dtype), expected[k].sharding) for k in expected}
    return traverse_util.unflatten_dict(placed, sep="/")


def read_model_info(path: str) -> dict[str, Any]:
    """A model directory's `model.json`."""
    with open(os.path.join(path, MODEL_INFO)) as file:
        return json.load(file)


class LoadedModel(NamedTuple):
    """A trained model as `load_model` returns it.

    Attributes:
        model: the video model (`ssync_jax.models.build_model(config.model)`).
        params: its params, placed on the mesh as the model's shardings say.
        config: the experiment config it was trained with (or the one given instead).
        step: the checkpoint's step; 0 for a params checkpoint.
    """

    model: nn.Module
    params: Any
    config: ml_collections.ConfigDict
    step: int


def load_model(
    path: str | os.PathLike | None = None,
    config: ml_collections.ConfigDict | None = None,
    step: int | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> LoadedModel:
    """A trained model from a training workdir, a model directory or an orbax params checkpoint: the
    one loader (inference, evaluation, the tools and `python main.py --mode eval` all use it).

    Args:
        path: a training workdir, local or in a bucket (gs://...), holding `checkpoints/` and the
            `config.json` main.py writes; a model directory (`write_model_dir`); or an orbax
            `{"params": ...}` checkpoint such as `python -m ssync_jax.tools.import_torch_checkpoint`
            writes. None: the model shipped with the package (`SHIPPED_MODEL`). Relative paths are
            made absolute.
        config: the experiment config; required for a params checkpoint, else read from `config.json`.
        step: the workdir checkpoint; None for the latest. Model directories and params checkpoints
            have a single one.
        mesh: the mesh the params go to, as the model's shardings say; None: this process's first device.

    Returns:
        The `LoadedModel` (model, params, config, step).

    Raises:
        FileNotFoundError: `path` does not exist, holds no checkpoint (or not of `step`), or a
            workdir has no config.json and no `config` was given.
        ValueError: `path` is a file or one step directory of a workdir, a params checkpoint comes
            without `config`, or a model directory or params checkpoint with `step`.
    """
    path = SHIPPED_MODEL if path is None else paths.absolute(os.fspath(path))
    model_dir = is_model_dir(path)
    if model_dir and step is not None:
        raise errors.ConfigError(f"{path} is a model directory with a single step; leave the step unset.")
    if model_dir or is_workdir(path):
        config = read_config(path) if config is None else config
    elif config is None:
        raise errors.ConfigError(
            f"{path} is not a training workdir (it has no {CONFIG_FILE}); a params checkpoint holds "
            "no config; pass the config it was trained with, e.g. load(path, config=configs.movi_c.get_config())."
        )
    mesh = sharding.make_mesh(jax.local_devices()[:1]) if mesh is None else mesh
    model = build_model(config.model)
    shapes = abstract_params(model, config, mesh)
    if model_dir:
        return LoadedModel(model, read_model_dir(path, shapes), config, read_model_info(path)["step"])
    params, step = restore_params(path, shapes, step)
    return LoadedModel(model, params, config, step)
