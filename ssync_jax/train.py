"""Training and evaluation loop: `train_and_evaluate(config, workdir)` reads top to bottom.

Sections: logging -> mesh -> input pipeline -> model & optimizer -> shard & transfer -> update
step -> checkpoint load -> evaluators -> loop. Sharding is decided in `ssync_jax.sharding`,
checkpoint contents in `ssync_jax.checkpoints`, TensorBoard contents in `ssync_jax.summaries`.

Step numbering: the scalars and checkpoint written "at step k" are those after k updates; the
objective's warm-up sees the number of updates taken before the current one.
"""

import collections
import functools
import json
import os
import signal
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import ml_collections
import numpy as np
from absl import logging
from clu import metric_writers, periodic_actions
from jax.experimental import multihost_utils

from ssync_jax import checkpoints, costs, decoder_targets, errors, evaluate, paths, rollout, sharding, summaries
from ssync_jax.data import pipeline, precomputed, training
from ssync_jax.models import BACKBONE_NAME, build_model, dinov2_weights, load_pretrained_backbone, precision, replace_backbone
from ssync_jax.objectives import total_loss
from ssync_jax.train_state import (
    BATCH_KEYS,
    ScalarSums,
    StateLayout,
    TrainState,
    make_dispatch,
    make_train_step,
    state_layout,
)


def make_image_step(model, config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> Callable:
    """`(params, video [B, T, H, W, 3]) -> maps` of the first example for `summaries.image_summaries`:
    one chunk through the rollout, then the slot argmaxes and (with SSync losses) the pseudo-labels,
    replicated on every device so that every process can read them."""
    preview = rollout.Rollout(model, config.data.chunk_length, config.seed)
    uses_ssync = total_loss.uses_ssync(config.losses)
    ssync_config = config.ssync.to_dict() if uses_ssync else None
    maps = jax.jit(
        functools.partial(summaries.first_example_maps, ssync_config=ssync_config),
        out_shardings=sharding.replicated(mesh),
    )

    def image_step(params, video: jax.Array, boxes: jax.Array | None = None) -> dict[str, Any]:
        first = (video[:1, : config.data.chunk_length], None if boxes is None else boxes[:1])
        ((_, outputs),) = preview.chunks(params, first[0], conditioning=first[1])
        return maps(outputs)

    return image_step


class _StopRequest:
    """Turns SIGTERM (preemption, `kill`) and a first Ctrl-C (SIGINT) into a request the loop honours
    after the current step: a checkpoint, then a clean stop. A second Ctrl-C stops at once
    (KeyboardInterrupt); the checkpoints already written stay as they are."""

    def __init__(self):
        self.requested = False
        self._previous = {}

    def _handle(self, signum, frame) -> None:
        del frame
        if signum == signal.SIGINT and self.requested:
            raise KeyboardInterrupt
        name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        logging.warning("%s: saving a checkpoint after this step, then stopping (Ctrl-C again stops at once).", name)
        self.requested = True

    def __enter__(self) -> "_StopRequest":
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


def _any_process(flag: bool) -> bool:
    """Whether `flag` is set in any process, so that all of them save and stop together."""
    if jax.process_count() == 1:
        return flag
    return bool(np.any(multihost_utils.process_allgather(np.int32(flag))))


def _check_finite(sums: ScalarSums, manager) -> None:
    """Raises FloatingPointError naming the first non-finite step and its non-finite averages."""
    step = int(sums.first_nonfinite)
    if step < 0:
        return
    bad = sorted(name for name, value in sums.averages().items() if not np.isfinite(value))
    manager.wait_until_finished()
    raise FloatingPointError(
        f"Non-finite {', '.join(bad) or 'scalars'} at step {step}; training stopped. The last good checkpoint "
        f"(step {manager.latest_step()}) is in {manager.directory}; lower config.optimizer."
        "learning_rate or check the input data, then rerun the same command to resume from it."
    )


def steps_in_dispatch(step: int, last_step: int, every: tuple[int, ...], on: tuple[int, ...], limit: int) -> int:
    """How many steps the next dispatch after `step` takes: `limit`, unless a step where the host
    has work (a multiple of one of `every`, one of `on`, `last_step`) comes sooner; then one, so
    that such steps end a dispatch and only two programs compile (`limit` steps and one).

    Args:
        step: the steps taken so far.
        last_step: where this run stops.
        every: periods of host work (logging, images, evaluation, checkpoints).
        on: single steps of host work (kept checkpoints).
        limit: `config.steps_per_dispatch`.
    """
    upcoming = [last_step, *(s for s in on if s > step), *((step // p + 1) * p for p in every if p > 0)]
    return limit if min(upcoming) - step >= limit else 1


# What the training loop tells an observer (`train_and_evaluate(loop_hook=...)`, e.g. the timer of
# benchmarks/loop_speed.py) as it passes each mark, with the mark's name and the steps of the
# dispatch: "start" (steps 0) where the loop's own work starts, before the first dispatch and again
# after any images, evaluation and checkpoint; then per dispatch "read" (its batches read from the
# pipeline and stacked), "transfer" (onto the devices), "dispatch" (its steps enqueued), "wait" (the
# dispatch before last finished) and "host" (hooks, checks, logging).
LoopHook = Callable[[str, int], None]


def _unobserved(mark: str, steps: int) -> None:
    """The loop's marks in a real run: nothing observes them."""


def _stacked(local_batches: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The model inputs of consecutive batches, stacked on a leading step axis [k, B, ...]."""
    return {key: np.stack([batch[key] for batch in local_batches]) for key in BATCH_KEYS if key in local_batches[0]}


def check_sources(config: ml_collections.ConfigDict, *, training: bool, fresh: bool, evaluating: bool) -> None:
    """Everything a run reads besides its workdir, checked before it writes anything there: the data
    splits, the pretrained weights, and the runs it starts from.

    Args:
        config: the experiment config.
        training: it trains (the training split, or the pre-extracted tokens).
        fresh: its workdir has no checkpoint yet (so `init_from` and the backbone's source are read).
        evaluating: it evaluates (the evaluation split; `eval.params_checkpoint` without training).

    Raises:
        UserError: one line naming what is missing and the fix.
    """
    data, encoder = config.data, config.model.encoder
    if training and data.precomputed_features:
        precomputed.read_metadata(data.precomputed_features)
    splits = [data.train_split] if training and not data.precomputed_features else []
    splits += [data.eval_split] if evaluating else []
    from ssync_jax.data import movi  # Imported here: TensorFlow's side, loaded only when data is read.

    for split in splits:
        movi.data_source(data.name, split, data.data_dir, fields=pipeline.source_fields(data.fields))
    if encoder.backbone == "dinov2" and encoder.weights and training and fresh and not config.init_from:
        dinov2_weights.locate(encoder.weights)
    if training and fresh and encoder.get("backbone_from"):
        checkpoints.check_source(encoder.backbone_from, encoder.get("backbone_from_step"), "model.encoder.backbone_from")
    if training and fresh and config.init_from:
        checkpoints.check_source(config.init_from, config.init_from_step, "init_from")
    if not training and config.eval.get("params_checkpoint"):
        checkpoints.check_source(config.eval.params_checkpoint, None, "eval.params_checkpoint")


def initial_state(config: ml_collections.ConfigDict, init_state: Callable, shardings: Any) -> TrainState:
    """A fresh state created on its shardings, with the pretrained backbone (if configured) put in:
    another run's (`config.model.encoder.backbone_from`) or DINOv2's weights."""
    encoder = config.model.encoder
    source = encoder.get("backbone_from")
    if source and encoder.backbone == "dinov2" and encoder.weights:
        raise errors.ConfigError(
            f"config.model.encoder.backbone_from={source} and encoder.weights={encoder.weights} both give the "
            "backbone; set one of them."
        )
    if not source and encoder.freeze_backbone and encoder.backbone != "dinov2":
        raise errors.ConfigError(
            f"config.model.encoder.freeze_backbone=True would keep a randomly initialised {encoder.backbone}; give "
            "it another run's trained one with --config.model.encoder.backbone_from=WORKDIR (and "
            "backbone_from_step=N), or set freeze_backbone=False."
        )
    state = jax.jit(init_state, out_shardings=shardings)(jax.random.key(config.seed))
    if source:
        step = encoder.get("backbone_from_step")
        saved = checkpoints.read_params(source, step)
        where = f"config.model.encoder.backbone_from={source}" + (f" (step {step})" if step is not None else "")
        if BACKBONE_NAME not in saved.get("encoder", {}):
            raise errors.ConfigError(f"{where}: its params have no encoder backbone; take a video model's run.")
        params = replace_backbone(jax.device_get(state.params), saved["encoder"][BACKBONE_NAME], where)
        logging.info("The backbone's params come from %s.", where)
    elif encoder.backbone == "dinov2" and encoder.weights:
        params = load_pretrained_backbone(jax.device_get(state.params), config.model)
    else:
        return state
    return state.replace(params=jax.device_put(params, shardings.params))


# The data settings that decide which batches a training iterator yields, beside the seed.
_DATA_STREAM_KEYS = (
    "name", "train_split", "image_size", "chunk_length", "normalization", "flip_prob", "bicubic", "fields",
    "global_batch_size", "num_workers", "num_boxes", "precomputed_features",
)  # fmt: skip


def same_data_stream(config: ml_collections.ConfigDict, other: ml_collections.ConfigDict) -> bool:
    """Whether two runs' training iterators yield the same batches (so a data position carries over)."""
    ours, theirs = (json.loads(c.to_json_best_effort()) for c in (config, other))
    return ours.get("seed") == theirs.get("seed") and all(
        ours["data"].get(key) == theirs.get("data", {}).get(key) for key in _DATA_STREAM_KEYS
    )


def _start_from(config: ml_collections.ConfigDict, layout: StateLayout, train_iterator) -> tuple[TrainState, str]:
    """The first state of a run that starts from another's checkpoint (`config.init_from`), and a log line.

    A training workdir gives its whole train state (params, optimizer state, step, RNG) and, when
    both runs read the same batches, its data position: the run continues exactly where the other
    stood. A params checkpoint, or `config.init_from_params_only`, gives the params alone.
    """
    source = config.init_from
    if not config.init_from_params_only and checkpoints.is_workdir(source):
        try:
            same_data = same_data_stream(config, checkpoints.read_config(source))
        except FileNotFoundError:  # Not a main.py run: its data stream is unknown.
            same_data = False
        iterator = train_iterator if same_data else None
        state, step = checkpoints.restore_run(source, layout.abstract, iterator, config.init_from_step)
        data = "its data position" if same_data else "the data from the start (the runs' data settings or seed differ)"
        return state, f"Started from {source} at step {step}: its params, optimizer state, step and RNG, and {data}."
    fresh = jax.jit(layout.init_state, out_shardings=layout.shardings)(jax.random.key(config.seed))
    params, step = checkpoints.restore_params(source, layout.abstract.params, config.init_from_step)
    return fresh.replace(params=params), f"Started from the params of {source} (step {step}); optimizer and step afresh."


def _check_inputs(config: ml_collections.ConfigDict, model) -> None:
    """The batch carries what the model reads: first-frame boxes for box-conditioned slots (frames
    only), the per-pixel field of a depth or flow target."""
    target_field = decoder_targets.get(model.target).field
    if target_field and target_field not in config.data.fields:
        raise errors.ConfigError(
            f"config.model.decoder.target={model.target!r} reconstructs the batch's "
            f"{target_field!r}: add it to config.data.fields."
        )
    if config.model.initializer.name != "box_conditioned":
        return
    if "boxes" not in config.data.fields:
        raise errors.ConfigError(
            "config.model.initializer.name='box_conditioned' needs first-frame boxes: add 'boxes' to "
            "config.data.fields and set config.data.num_boxes to config.model.num_slots - 1."
        )
    if config.data.precomputed_features:
        raise errors.ConfigError(
            "Box-conditioned slots need the frames' segmentations for their boxes, which pre-extracted tokens "
            "do not carry; unset config.data.precomputed_features."
        )


def train_and_evaluate(
    config: ml_collections.ConfigDict,
    workdir: str,
    *,
    run_evaluation: bool = True,
    loop_hook: LoopHook = _unobserved,
) -> TrainState:
    """Trains (resuming from the latest checkpoint in `workdir`) and evaluates periodically.

    Args:
        config: the experiment config (see configs/synthetic.py for every field).
        workdir: where checkpoints, TensorBoard events and `eval_metrics.json` go.
        run_evaluation: evaluate every `eval_every_steps` and at the end (False: `--mode train`).
        loop_hook: called at each mark of the loop (`LoopHook`); by default nothing observes them.

    Returns:
        The final train state.

    Raises:
        FloatingPointError: a loss term or norm became NaN/Inf (the last good checkpoint is kept).
    """
    # ----------------------------------------------------------------------------------------
    # Logging.
    workdir = paths.absolute(workdir)
    writer = metric_writers.create_default_writer(workdir, just_logging=jax.process_index() > 0)
    writer.write_hparams(summaries.hparams(config))
    logging.info("%d processes, %d devices: %s", jax.process_count(), jax.device_count(), jax.devices())

    # ----------------------------------------------------------------------------------------
    # Mesh.
    mesh = sharding.make_mesh()

    # ----------------------------------------------------------------------------------------
    # Input pipeline: each process reads its own shard (frames, or pre-extracted tokens); batches are
    # assembled globally below. Evaluation reads frames in either case.
    data = training.training_batches(config, mesh, images=bool(config.image_every_steps))
    train_iterator = data.batches

    # ----------------------------------------------------------------------------------------
    # Model & optimizer, and the state's shapes and shardings: it is created (or restored) on them.
    model = build_model(config.model)
    _check_inputs(config, model)
    if "bfloat16" in (config.model.dtype, config.model.encoder.backbone_dtype) and not precision.bfloat16_pays():
        logging.warning(
            "config.model.dtype / encoder.backbone_dtype is bfloat16, but this CPU has no native bfloat16 product "
            "(none of %s in its flags): XLA converts every bfloat16 product to float32, so the step is slower "
            "than in float32. Set both to float32 here.",
            ", ".join(precision.NATIVE_BFLOAT16_FLAGS),
        )
    layout = state_layout(model, config, mesh)
    shardings = layout.shardings
    replicated = sharding.replicated(mesh)

    # ----------------------------------------------------------------------------------------
    # Update step: one compilation, the old state's buffers reused for the new one.
    train_step_fn = make_train_step(model, layout.tx, layout.schedule, config)
    image_step = make_image_step(model, config, mesh)

    # ----------------------------------------------------------------------------------------
    # Checkpoint load: the train state and the data iterator's position, or a fresh start.
    manager = checkpoints.create_manager(
        workdir,
        config.max_checkpoints_to_keep,
        config.keep_best_checkpoints,
        config.async_checkpointing,
        config.keep_checkpoint_steps,
    )
    state = checkpoints.resume(manager, layout.abstract, train_iterator)
    if state is None and config.init_from:
        state, origin = _start_from(config, layout, train_iterator)
        logging.info("%s", origin)
    elif state is None:
        state = initial_state(config, layout.init_state, shardings)
    elif int(state.step) >= config.num_train_steps:
        logging.info(
            "This run is complete: its checkpoint in %s is at step %d of %d; the evaluation is in %s. Nothing "
            "to train. To train longer (another schedule), start a new workdir from it: --config.init_from=%s "
            "--config.num_train_steps=N; to evaluate again, add --mode eval.",
            manager.directory,
            int(state.step),
            config.num_train_steps,
            os.path.join(workdir, checkpoints.EVAL_JSON),
            workdir,
        )
    else:
        logging.info("Resumed from step %d in %s.", int(state.step), manager.directory)

    # ----------------------------------------------------------------------------------------
    # Evaluators.
    evaluator = evaluate.Evaluator(model, config, mesh)

    # ----------------------------------------------------------------------------------------
    # Loop.
    num_steps = config.num_train_steps
    last_step = num_steps if config.stop_after_step is None else min(config.stop_after_step, num_steps)
    hooks = []
    if jax.process_index() == 0:
        hooks.append(
            periodic_actions.ReportProgress(num_train_steps=num_steps, writer=writer, every_steps=config.log_every_steps)
        )
        if config.num_profile_steps:
            hooks.append(periodic_actions.Profile(num_profile_steps=config.num_profile_steps, logdir=workdir))
    # One dispatch runs `steps_per_dispatch` steps (fewer where the host has work: `steps_in_dispatch`),
    # their scalars summed and checked on the devices (`ScalarSums`): no device-to-host transfer on
    # a step that neither logs, evaluates nor saves. The host only waits for the dispatch before the
    # previous one, so the next batches are read and sent while the devices compute.
    dispatch = jax.jit(
        make_dispatch(train_step_fn), donate_argnums=(0, 1), out_shardings=(shardings, replicated, replicated)
    )
    every = (config.log_every_steps, config.image_every_steps, config.checkpoint_every_steps)
    every += (config.eval_every_steps,) if run_evaluation else ()
    sums, in_flight, step = None, collections.deque(), int(state.step)
    # Compiled once per dispatch length (at most two); the first one's cost is printed before it runs,
    # the measured speed once a whole log interval has been timed.
    compiled, cost, log_mark, speed_reported = {}, None, None, False
    try:
        with _StopRequest() as stop:
            loop_hook("start", 0)
            while step < last_step:
                count = steps_in_dispatch(step, last_step, every, tuple(config.keep_checkpoint_steps), config.steps_per_dispatch)
                with jax.profiler.StepTraceAnnotation("train", step_num=step + count):
                    local_batches = [next(train_iterator) for _ in range(count)]
                    stacked = _stacked(local_batches)
                    loop_hook("read", count)
                    batches = sharding.global_batch(stacked, mesh, batch_axis=1)
                    if sums is None:  # After every reset: the scalar names come from the step's shapes.
                        first = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), batches)
                        names = jax.eval_shape(train_step_fn, layout.abstract, first)[1]
                        sums = jax.device_put(ScalarSums.zeros(names), replicated)
                    loop_hook("transfer", count)
                    if count not in compiled:
                        compiled[count] = dispatch.lower(state, sums, batches).compile()
                        if cost is None:
                            cost = costs.step_cost(compiled[count], state, count)
                            if jax.process_index() == 0:
                                devices = f"{jax.device_count()} x {jax.devices()[0].device_kind}"
                                for line in costs.describe(cost, devices):
                                    logging.info("%s", line)
                    state, sums, done = compiled[count](state, sums, batches)
                    loop_hook("dispatch", count)
                step += count
                in_flight.append(done)
                if len(in_flight) > 2:
                    in_flight.popleft().block_until_ready()
                loop_hook("wait", count)
                for hook in hooks:
                    for hooked in range(step - count + 1, step + 1):  # clu's actions count every step.
                        hook(hooked)
                log_now = step % config.log_every_steps == 0 or step == last_step
                evaluate_now = run_evaluation and (step % config.eval_every_steps == 0 or step == num_steps)
                # One process stops on its own flag; several agree on theirs when they log (a collective).
                stop_now = stop.requested if jax.process_count() == 1 else log_now and _any_process(stop.requested)
                preempted = stop_now or manager.reached_preemption(step)
                save_now = (
                    evaluate_now
                    or preempted
                    or step == last_step
                    or step % config.checkpoint_every_steps == 0
                    or step in config.keep_checkpoint_steps
                )
                if log_now or evaluate_now or save_now:
                    _check_finite(sums, manager)  # Nothing non-finite is saved.
                if log_now:
                    writer.write_scalars(step, sums.averages())
                    sums = None
                loop_hook("host", count)
                if config.image_every_steps and step % config.image_every_steps == 0:
                    last_batch = jax.tree.map(lambda x: x[-1], batches)  # The dispatch's last step's batch.
                    video, local_video = data.frames_to_draw(last_batch, local_batches[-1])
                    maps = jax.device_get(image_step(state.params, video, last_batch.get("boxes")))
                    # The global batch's first example is process 0's first, the one the writer shows.
                    images = summaries.image_summaries(
                        local_video[0], maps["dec_ids"], maps["enc_ids"], maps.get("ssync")
                    )
                    writer.write_images(step, images)
                results = None
                if evaluate_now:
                    results = evaluator.evaluate(state.params, evaluate.evaluation_dataset(config))
                    writer.write_scalars(step, {f"eval/{name}": value for name, value in results.items()})
                    checkpoints.write_evaluation(workdir, results, step, history=True)
                if save_now:  # Evaluated steps are saved too, with their metrics, for keep-best.
                    checkpoints.save(manager, step, state, train_iterator, results)
                if preempted:
                    logging.warning("Stopped at step %d after a checkpoint; rerun the command to resume.", step)
                    break
                if log_now and jax.process_index() == 0:
                    now = time.perf_counter()
                    if log_mark is not None and not speed_reported and step < last_step:
                        rate = (step - log_mark[0]) / (now - log_mark[1])
                        logging.info("%s", costs.describe_speed(cost, rate, last_step - step))
                        speed_reported = True
                    log_mark = (step, now)
                loop_hook("start", 0)  # After any images, evaluation and checkpoint: the loop's own work again.
    finally:
        try:
            checkpoints.finish(manager)
        finally:  # Also when a checkpoint write failed: the logged scalars stay.
            writer.flush()
            close = getattr(train_iterator, "close", None)
            if close is not None:
                close()
    return state


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str, step: int | None = None) -> dict[str, float]:
    """Evaluates a checkpoint and writes `workdir/eval_metrics.json`.

    The params come from `config.eval.params_checkpoint` when set (an imported model, reported as
    step 0), else from the workdir's checkpoint at `step`.

    Args:
        config: the experiment config the checkpoint was trained with.
        workdir: holds `checkpoints/`; receives the JSON.
        step: which workdir checkpoint; None for the latest.

    Returns:
        The metrics (see `ssync_jax.evaluate`).

    Raises:
        FileNotFoundError: there is no checkpoint to evaluate.
    """
    workdir = paths.absolute(workdir)
    mesh = sharding.make_mesh()
    imported = config.eval.params_checkpoint
    model, params, _, step = checkpoints.load_model(imported or workdir, config, None if imported else step, mesh)
    results = evaluate.Evaluator(model, config, mesh).evaluate(params, evaluate.evaluation_dataset(config))
    checkpoints.write_evaluation(workdir, results, step, history=False)
    logging.info("Step %d: %s", step, results)
    return results
