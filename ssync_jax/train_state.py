"""The train state and the pure update: what a training step changes, how it is made, where it lives.

    layout = state_layout(model, config, mesh)                 # init, optimizer, shapes, shardings
    state = jax.jit(layout.init_state, out_shardings=layout.shardings)(jax.random.key(config.seed))
    step = jax.jit(make_train_step(model, layout.tx, layout.schedule, config), donate_argnums=0)
    state, scalars = step(state, batch)

The training loop (`ssync_jax.train`) drives these; evaluation and inference need only the
parameters' shapes (`ssync_jax.models.abstract_params`), which build no optimizer.
"""

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from ssync_jax import decoder_targets, sharding
from ssync_jax.models import init_params_fn, trainable_mask
from ssync_jax.objectives import total_loss

# The batch entries the train step reads: video or tokens, first-frame boxes for box-conditioned slots,
# and the per-pixel field a depth or flow target comes from.
BATCH_KEYS = ("video", "tokens", "boxes", *decoder_targets.side_fields())


@flax.struct.dataclass
class TrainState:
    """Everything a training step changes; what a checkpoint holds besides the data position.

    Attributes:
        step: updates taken, int32 scalar.
        params: the model parameters.
        opt_state: the optimizer's state.
        rng: raw uint32 PRNG key data [2]; each step folds in `step`.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array


def learning_rate_schedule(optimizer: ml_collections.ConfigDict, num_steps: int) -> optax.Schedule:
    """Linear warm-up from 0 to `learning_rate`, then exponential decay to `final_lr_fraction` x at the last step.

    Args:
        optimizer: `config.optimizer` (learning_rate, warmup_steps, final_lr_fraction).
        num_steps: total training steps.

    Returns:
        step -> learning rate.
    """
    warmup = min(optimizer.warmup_steps, num_steps)
    peak = optimizer.learning_rate
    return optax.join_schedules(
        [
            optax.linear_schedule(0.0, peak, warmup),
            optax.exponential_decay(peak, max(num_steps - warmup, 1), optimizer.final_lr_fraction),
        ],
        [warmup],
    )


def make_optimizer(
    config: ml_collections.ConfigDict, params: Any
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Adam with global-norm clipping on the trainable params; frozen ones (the backbone) never change.

    Args:
        config: the experiment config (`optimizer`, `num_train_steps`, `model`).
        params: the params or their abstract shapes (for the trainable mask).

    Returns:
        The optimizer and its learning-rate schedule.
    """
    schedule = learning_rate_schedule(config.optimizer, config.num_train_steps)
    adam = optax.chain(
        optax.clip_by_global_norm(config.optimizer.grad_clip_norm),
        optax.adam(schedule, b1=config.optimizer.b1, b2=config.optimizer.b2),
    )
    mask = trainable_mask(params, config.model)
    labels = jax.tree.map(lambda trainable: "trainable" if trainable else "frozen", mask)
    return optax.multi_transform({"trainable": adam, "frozen": optax.set_to_zero()}, labels), schedule


def _l2(tree: Any, mask: Any) -> jax.Array:
    """Global L2 norm over the leaves where `mask` is True."""
    squares = jax.tree.map(lambda x, keep: jnp.sum(jnp.square(x)) if keep else 0.0, tree, mask)
    return jnp.sqrt(sum(jax.tree.leaves(squares)))


def make_train_step(
    model, tx: optax.GradientTransformation, schedule: optax.Schedule, config: ml_collections.ConfigDict
) -> Callable:
    """The pure update `(state, batch) -> (state, scalars)`; jit it with the state donated.

    `batch` holds "video" [B, T, H, W, 3], or "tokens" [B, T, N, C] of the frozen backbone
    (`ssync_jax.data.precomputed`), which the model then skips.

    Args:
        model: the video model.
        tx: from `make_optimizer`.
        schedule: its learning-rate schedule (logged).
        config: the experiment config (`losses`, `ssync`, `num_train_steps`, `model`).

    Returns:
        The step function; `scalars` maps TensorBoard names to scalars: `loss/total`, `loss/<term>`
        (unweighted), the objective's statistics, `optim/learning_rate`, `optim/l2_grads`,
        `optim/l2_params`, `optim/l2_updates` (the last three over trainable params).
    """
    loss_fn = total_loss.build_loss_fn(config.losses, config.ssync, config.loss_group_size)
    num_steps = config.num_train_steps
    target_field = decoder_targets.get(model.target).field

    def train_step(state: TrainState, batch: Mapping[str, jax.Array]) -> tuple[TrainState, dict[str, jax.Array]]:
        rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

        def objective(params):
            outputs = model.apply(
                {"params": params},
                batch.get("video"),
                batch.get("boxes"),  # The slot initialiser's conditioning, if it takes one.
                tokens=batch.get("tokens"),
                field=batch.get(target_field) if target_field not in (None, "video") else None,
                rngs={"slots": rng},
            )
            total, terms, stats = loss_fn(outputs, state.step, num_steps)
            return total, (terms, stats)

        (total, (terms, stats)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        mask = trainable_mask(state.params, config.model)
        scalars = {
            "loss/total": total,
            **{f"loss/{name}": value for name, value in terms.items()},
            **stats,
            "optim/learning_rate": schedule(state.step),
            "optim/l2_grads": _l2(grads, mask),
            "optim/l2_params": _l2(params, mask),
            "optim/l2_updates": _l2(updates, mask),
        }
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), scalars

    return train_step


@flax.struct.dataclass
class ScalarSums:
    """The train step's scalars summed on the devices between two log steps, and the first bad step.

    Attributes:
        totals: {scalar name: float32 sum over the steps since the last reset}.
        count: int32, the steps summed.
        first_nonfinite: int32, the first step (after its update) whose scalars were not all
            finite, or -1.
    """

    totals: dict[str, jax.Array]
    count: jax.Array
    first_nonfinite: jax.Array

    @classmethod
    def zeros(cls, names: Any) -> "ScalarSums":
        """Sums of nothing for the scalar names `names`."""
        return cls({name: jnp.zeros((), jnp.float32) for name in names}, jnp.zeros((), jnp.int32), jnp.int32(-1))

    def averages(self) -> dict[str, float]:
        """{name: mean over the summed steps} on the host (one transfer)."""
        totals, count = jax.device_get((self.totals, self.count))
        return {name: float(total) / max(int(count), 1) for name, total in totals.items()}


def make_dispatch(train_step: Callable) -> Callable:
    """Several training steps in one dispatch: `(state, sums, batches) -> (state, sums, step)`.

    `batches` carries a leading axis of k steps (every entry [k, B, ...]); `train_step` runs on each
    in turn, each step's scalars added to `sums` (`ScalarSums`) and checked for non-finite
    values on the devices, so the host reads nothing until it logs. k = 1 is one step, bit for bit;
    k > 1 equals k single steps up to float32 rounding (XLA orders some sums differently in the
    larger program; tests/test_train.py bounds it).

    Args:
        train_step: from `make_train_step`.

    Returns:
        The dispatch function; jit it with the state and the sums donated. `step` is the step count
        after it, in a buffer of its own (never donated): what the host waits on.
    """

    def dispatch(
        state: TrainState, sums: ScalarSums, batches: Mapping[str, jax.Array]
    ) -> tuple[TrainState, ScalarSums, jax.Array]:
        def one_step(carry, batch):
            state, sums = carry
            state, scalars = train_step(state, batch)
            finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(value)) for value in scalars.values()]))
            sums = ScalarSums(
                totals={name: sums.totals[name] + scalars[name].astype(jnp.float32) for name in sums.totals},
                count=sums.count + 1,
                first_nonfinite=jnp.where((sums.first_nonfinite < 0) & ~finite, state.step, sums.first_nonfinite),
            )
            return (state, sums), None

        # k copies of the step in one program (compiling takes about k times as long), not a
        # `lax.scan`: XLA:CPU runs convolutions inside a loop many times slower than outside
        # (jax-ml/jax#12868, even a one-step scan; measured in docs/RESULTS.md §2.3).
        carry = (state, sums)
        for index in range(jax.tree.leaves(batches)[0].shape[0]):
            carry, _ = one_step(carry, jax.tree.map(lambda x: x[index], batches))
        state, sums = carry
        return state, sums, state.step + 0

    return dispatch


def make_initializer(
    model, config: ml_collections.ConfigDict
) -> tuple[Callable, optax.GradientTransformation, optax.Schedule]:
    """The train state's initialiser and the optimizer it is built with.

    Args:
        model: the video model.
        config: the experiment config (`data` for the input shape, `optimizer`, `model`).

    Returns:
        `init_state(rng) -> TrainState` (pure; jit it with the shardings), the optimizer, its schedule.
    """
    init_params = init_params_fn(model, config)
    tx, schedule = make_optimizer(config, jax.eval_shape(init_params, jax.random.key(0)))

    def init_state(rng: jax.Array) -> TrainState:
        params = init_params(rng)
        return TrainState(jnp.zeros((), jnp.int32), params, tx.init(params), jax.random.key_data(rng))

    return init_state, tx, schedule


class StateLayout(NamedTuple):
    """How a train state is made and where it lives.

    Attributes:
        init_state: `rng -> TrainState`, pure (jit it with `shardings`).
        tx: the optimizer.
        schedule: its learning-rate schedule.
        abstract: the state as `jax.ShapeDtypeStruct`s carrying their shardings (a restore target).
        shardings: a sharding for every leaf of the state.
    """

    init_state: Callable
    tx: optax.GradientTransformation
    schedule: optax.Schedule
    abstract: TrainState
    shardings: TrainState


def state_layout(model, config: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> StateLayout:
    """The train state's initialiser, optimizer, shapes and shardings on `mesh` (`config.shard_params`
    splits large params; `sharding.state_shardings` places them, as for evaluation and inference)."""
    init_state, tx, schedule = make_initializer(model, config)
    abstract = jax.eval_shape(init_state, jax.random.key(config.seed))
    shardings = sharding.state_shardings(abstract, mesh, config.shard_params)
    return StateLayout(init_state, tx, schedule, sharding.with_shardings(abstract, shardings), shardings)
