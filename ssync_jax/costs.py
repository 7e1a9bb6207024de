"""What a training run costs, read off its compiled step: FLOPs, memory traffic, memory, and time.

    cost = step_cost(compiled_dispatch, state, steps_per_dispatch)
    for line in describe(cost, num_steps): logging.info(line)

XLA's cost analysis counts the FLOPs and bytes of every operation of the optimized program; a
dispatch of k steps is k copies of the step (`train_state.make_dispatch`), so one step is a k-th of
it. Memory: the parameters and the optimizer state as the train state holds them, and the compiled
program's own buffers (arguments, outputs and temporaries, less what the donated arguments lend
the outputs): an estimate of the step's peak, which the backend may exceed by its allocator's
slack.
"""

import dataclasses
from typing import Any

import jax
import numpy as np

# Dense bfloat16 peak TFLOP/s per chip, from the vendors' data sheets, for the estimates of
# `accelerator_hours` (H100: SXM; TPU v5e: "v5 lite").
PEAK_BF16_TFLOPS = {"A100": 312.0, "H100": 989.0, "TPU v4": 275.0, "TPU v5e": 197.0}
# The share of that peak the estimates assume a run sustains (its MFU).
ASSUMED_UTILISATION = 0.4


@dataclasses.dataclass(frozen=True)
class StepCost:
    """One training step's cost.

    Attributes:
        flops: floating-point operations of one step (XLA's cost analysis).
        bytes_accessed: bytes the step reads and writes (XLA's cost analysis).
        param_bytes: the parameters' bytes.
        optimizer_bytes: the optimizer state's bytes.
        buffer_bytes: the compiled dispatch's buffers: the peak estimate.
    """

    flops: float
    bytes_accessed: float
    param_bytes: int
    optimizer_bytes: int
    buffer_bytes: int


def _analysis(compiled) -> dict[str, float]:
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
    return dict(analysis or {})


def tree_bytes(tree: Any) -> int:
    """Bytes of the arrays (or shape structs) in `tree`."""
    return int(sum(np.prod(leaf.shape, dtype=np.int64) * np.dtype(leaf.dtype).itemsize for leaf in jax.tree.leaves(tree)))


def step_cost(compiled, state: Any, steps_per_dispatch: int = 1) -> StepCost:
    """The cost of one step of a compiled dispatch of `steps_per_dispatch` steps.

    Args:
        compiled: `jax.jit(...).lower(...).compile()` of the dispatch (or of a single step).
        state: the train state (arrays or `jax.ShapeDtypeStruct`s) with `params` and `opt_state`
            (anything else: no parameter or optimizer bytes, e.g. for a part of a model).
        steps_per_dispatch: the steps the compiled program takes.
    """
    analysis = _analysis(compiled)
    memory = compiled.memory_analysis()
    buffers = 0
    if memory is not None:
        buffers = (
            memory.argument_size_in_bytes
            + memory.output_size_in_bytes
            + memory.temp_size_in_bytes
            - memory.alias_size_in_bytes
        )
    return StepCost(
        flops=float(analysis.get("flops", float("nan"))) / steps_per_dispatch,
        bytes_accessed=float(analysis.get("bytes accessed", float("nan"))) / steps_per_dispatch,
        param_bytes=tree_bytes(getattr(state, "params", ())),
        optimizer_bytes=tree_bytes(getattr(state, "opt_state", ())),
        buffer_bytes=int(buffers),
    )


def accelerator_hours(flops_per_step: float, num_steps: int, peak_tflops: float) -> float:
    """Chip-hours of `num_steps` steps at `ASSUMED_UTILISATION` of a chip's peak: steps × FLOPs / (peak × u)."""
    return num_steps * flops_per_step / (peak_tflops * 1e12 * ASSUMED_UTILISATION) / 3600


def describe(cost: StepCost, devices: str) -> list[str]:
    """The cost lines a run prints before its first step."""
    return [
        f"One training step: {cost.flops / 1e9:.3g} GFLOP and {cost.bytes_accessed / 1e9:.3g} GB of memory "
        f"traffic (XLA's cost analysis of the compiled step, on {devices}).",
        f"Memory: parameters {cost.param_bytes / 2**20:.1f} MiB, optimizer state {cost.optimizer_bytes / 2**20:.1f} MiB; "
        f"the compiled step's buffers {cost.buffer_bytes / 2**20:.1f} MiB (its peak, estimated).",
    ]


def describe_speed(cost: StepCost, steps_per_second: float, remaining_steps: int) -> str:
    """The line a run prints once its speed is measured: steps/s, achieved FLOP/s and the time left."""
    seconds = int(remaining_steps / steps_per_second)
    left = f"{seconds // 3600} h {seconds % 3600 // 60:02d} min" if seconds >= 3600 else f"{seconds // 60} min {seconds % 60:02d} s"
    return (
        f"Measured {steps_per_second:.2f} steps/s = {cost.flops * steps_per_second / 1e9:.3g} GFLOP/s; "
        f"{remaining_steps} steps to go: {left}."
    )
