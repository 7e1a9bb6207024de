r"""How the SSync objective and the SRL dense-alignment baseline scale with patches per clip.

    python -m benchmarks.objective_scaling                       # batch 8, 4 frames, 8²…37² patches
    python -m benchmarks.objective_scaling --sides 8,16 --reps 2 # a quick look, from the repo root

For each patch grid (N = side², T·N patches per clip) both objectives are jit-compiled for the
forward and backward pass w.r.t. the encoder and decoder maps:
  SSync: ssync_targets (labels, merging, masks) + boundary and interior losses;
  SRL:   both dense-alignment directions over groups of 4 frames (quadratic in T·N).
Memory is XLA's analysis of the compiled program (temp + output bytes): deterministic, no
allocation needed. Time is the best wall time of --reps runs after a warm-up run.
Prints the table, the log-log growth exponent of each objective against T·N (SSync should stay
near 1, SRL near 2) and the SRL/SSync ratios at the largest grid; writes the table as CSV.
A plot would need matplotlib, which the pinned environment does not include.
"""

import argparse
import csv
import os
import pathlib
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ssync_jax.objectives import srl, ssync


def ssync_objective(grid_shape: tuple[int, int]) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """Both SSync losses from the maps, targets included, summed."""

    def objective(enc_logits: jax.Array, dec_logits: jax.Array) -> jax.Array:
        targets = ssync.ssync_targets(enc_logits, dec_logits, grid_shape)
        losses = ssync.ssync_losses(enc_logits, dec_logits, targets)
        return losses["boundary"] + losses["interior"]

    return objective


def srl_objective(enc_logits: jax.Array, dec_logits: jax.Array) -> jax.Array:
    """Both SRL dense-alignment directions, summed."""
    losses = srl.srl_losses(enc_logits, dec_logits, group_size=4)
    return losses["encoder"] + losses["decoder"]


def measure(
    objective: Callable[[jax.Array, jax.Array], jax.Array], maps: tuple[jax.Array, jax.Array], reps: int
) -> tuple[float, float]:
    """(seconds per run, compiled temp + output bytes) of the objective's value and gradients.

    The first run doubles as warm-up; if it took over a second, it is precise enough and is
    returned as is (SRL's largest grids take tens of seconds a run on 2 cores), otherwise the
    best of `reps` further runs: on a shared machine the minimum is the least disturbed figure.
    """
    step = jax.jit(jax.value_and_grad(objective, argnums=(0, 1)))
    compiled = step.lower(*maps).compile()
    memory = compiled.memory_analysis()
    peak_bytes = memory.temp_size_in_bytes + memory.output_size_in_bytes

    def timed_run() -> float:
        start = time.perf_counter()
        jax.block_until_ready(compiled(*maps))
        return time.perf_counter() - start

    first = timed_run()
    if first > 1.0:
        return first, float(peak_bytes)
    return min(timed_run() for _ in range(reps)), float(peak_bytes)


def growth_exponent(sizes: list[int], values: list[float]) -> float:
    """Slope of log(value) against log(size): 1 is linear, 2 quadratic."""
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=4, help="Must be a multiple of SRL's group of 4.")
    parser.add_argument("--slots", type=int, default=11)
    parser.add_argument("--sides", default="8,12,16,24,32,37", help="Patch grid sides, comma-separated.")
    parser.add_argument("--reps", type=int, default=10, help="Timed runs per grid (after warm-up).")
    parser.add_argument("--csv", type=pathlib.Path, default=pathlib.Path("docs/objective_scaling.csv"))
    args = parser.parse_args()
    sides = [int(side) for side in args.sides.split(",")]

    device = jax.devices()[0]
    print(f"device: {device.platform} ({device.device_kind}), {os.cpu_count()} host cores; "
          f"batch {args.batch}, {args.frames} frames, {args.slots} slots, fwd+bwd")
    header = ("side", "T*N", "ssync_ms", "srl_ms", "ssync_MB", "srl_MB", "time_ratio", "memory_ratio")
    print("{:>5} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}".format(*header))
    rows = []
    for side in sides:
        shape = (args.batch, args.frames, side * side, args.slots)
        keys = jax.random.split(jax.random.PRNGKey(side))
        maps = (jax.random.normal(keys[0], shape, jnp.float32), jax.random.normal(keys[1], shape, jnp.float32))
        ssync_seconds, ssync_bytes = measure(ssync_objective((side, side)), maps, args.reps)
        srl_seconds, srl_bytes = measure(srl_objective, maps, args.reps)
        row = (side, args.frames * side * side, 1e3 * ssync_seconds, 1e3 * srl_seconds,
               ssync_bytes / 2**20, srl_bytes / 2**20, srl_seconds / ssync_seconds, srl_bytes / ssync_bytes)
        rows.append(row)
        print("{:>5} {:>6} {:>10.2f} {:>10.1f} {:>10.2f} {:>10.1f} {:>9.1f}x {:>11.0f}x".format(*row))

    patches = [row[1] for row in rows]
    print("growth exponent vs T*N (all grids):")
    print(f"  SSync time {growth_exponent(patches, [r[2] for r in rows]):.2f}, "
          f"memory {growth_exponent(patches, [r[4] for r in rows]):.2f}")
    print(f"  SRL   time {growth_exponent(patches, [r[3] for r in rows]):.2f}, "
          f"memory {growth_exponent(patches, [r[5] for r in rows]):.2f}")
    largest = rows[-1]
    print(f"at {args.frames}x{largest[0]}x{largest[0]}: SRL/SSync time {largest[6]:.1f}x, memory {largest[7]:.0f}x")

    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([[f"{value:.6g}" for value in row] for row in rows])
    print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
