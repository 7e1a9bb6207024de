r"""How the SSync objective and the SRL dense-alignment baseline scale with patches per clip.

    python -m benchmarks.objective_scaling                       # batch 8, 4 frames, 8²…37² patches
    python -m benchmarks.objective_scaling --sides 8,16 --reps 2 # a quick look, from the repo root
    python -m benchmarks.objective_scaling --from_csv docs/objective_scaling.csv   # re-plot only

For each patch grid (N = side², T·N patches per clip) both objectives are jit-compiled for the
forward and backward pass w.r.t. the encoder and decoder maps:
  SSync: pseudo_labels (labels, merging, masks) + boundary and interior losses;
  SRL:   both dense-alignment directions over groups of 4 frames (quadratic in T·N).
Memory is XLA's analysis of the compiled program (temp + output bytes): deterministic, no
allocation needed. Time is the best wall time of --reps runs after a warm-up run.
Prints the table, the log-log growth exponent of each objective against T·N (SSync should stay
near 1, SRL near 2) and the SRL/SSync ratios at the largest grid; writes the table as CSV (with
the batch, frames, slots and machine on each row) and a two-panel log-log PNG of time and memory
against T·N with the fitted exponents in the legends.
"""

import csv
import dataclasses
import pathlib
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from benchmarks import machine
from ssync_jax.objectives import srl, ssync


def ssync_objective(grid_shape: tuple[int, int]) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """Both SSync losses from the maps, pseudo-labels included, summed."""

    def objective(enc_logits: jax.Array, dec_logits: jax.Array) -> jax.Array:
        labels = ssync.pseudo_labels(enc_logits, dec_logits, grid_shape)
        losses = ssync.ssync_losses(enc_logits, dec_logits, labels)
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


@dataclasses.dataclass(frozen=True)
class ScalingRow:
    """Both objectives' cost at one patch grid.

    Attributes:
        side: patch grid side (N = side² patches per frame).
        patches: T·N patches per clip.
        ssync_ms, srl_ms: milliseconds per fwd+bwd run.
        ssync_mb, srl_mb: compiled temp + output MiB.
    """

    side: int
    patches: int
    ssync_ms: float
    srl_ms: float
    ssync_mb: float
    srl_mb: float

    @property
    def time_ratio(self) -> float:
        """SRL time / SSync time."""
        return self.srl_ms / self.ssync_ms

    @property
    def memory_ratio(self) -> float:
        """SRL memory / SSync memory."""
        return self.srl_mb / self.ssync_mb


@dataclasses.dataclass(frozen=True)
class Setting:
    """What every row of a table shares: the map shapes besides the grid, and where it was measured.

    Attributes:
        batch: clips per batch.
        frames: T, frames per clip.
        slots: slots per frame.
        machine: `benchmarks.machine.describe()` of the measuring machine.
    """

    batch: int
    frames: int
    slots: int
    machine: str


HEADER = ("side", "T*N", "ssync_ms", "srl_ms", "ssync_MB", "srl_MB", "time_ratio", "memory_ratio")
SETTING_COLUMNS = ("batch", "frames", "slots", "machine")


def growth_exponent(sizes: list[int], values: list[float]) -> float:
    """Slope of log(value) against log(size): 1 is linear, 2 quadratic."""
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


def growth_exponents(rows: list[ScalingRow]) -> dict[str, float]:
    """Growth exponent against T·N of each column: keys ssync_ms, srl_ms, ssync_mb, srl_mb."""
    patches = [row.patches for row in rows]
    return {
        column: growth_exponent(patches, [getattr(row, column) for row in rows])
        for column in ("ssync_ms", "srl_ms", "ssync_mb", "srl_mb")
    }


def write_csv(rows: list[ScalingRow], setting: Setting, path: pathlib.Path) -> None:
    """The table with the setting repeated on every row, so the file alone can be re-plotted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER + SETTING_COLUMNS)
        for row in rows:
            values = (row.side, row.patches, row.ssync_ms, row.srl_ms, row.ssync_mb, row.srl_mb,
                      row.time_ratio, row.memory_ratio)
            shared = [str(getattr(setting, column)) for column in SETTING_COLUMNS]
            writer.writerow([f"{value:.6g}" for value in values] + shared)


def read_csv(path: pathlib.Path) -> tuple[list[ScalingRow], Setting]:
    """Reads a table written by `write_csv`.

    Args:
        path: the CSV file.

    Returns:
        (rows, setting).
    """
    with path.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    missing = [column for column in HEADER + SETTING_COLUMNS if records and column not in records[0]]
    if not records or missing:
        raise ValueError(
            f"{path} has no rows or lacks columns {missing}; re-measure with "
            f"`python -m benchmarks.objective_scaling --csv {path}`."
        )
    rows = [
        ScalingRow(int(record["side"]), int(record["T*N"]), float(record["ssync_ms"]), float(record["srl_ms"]),
                   float(record["ssync_MB"]), float(record["srl_MB"]))
        for record in records
    ]
    first = records[0]
    return rows, Setting(int(first["batch"]), int(first["frames"]), int(first["slots"]), first["machine"])


def plot(rows: list[ScalingRow], setting: Setting, path: pathlib.Path) -> dict[str, float]:
    """Two log-log panels, time and peak memory against T·N, SSync and SRL with fitted exponents.

    Args:
        rows: the measured grids.
        setting: their shared shapes and machine, for the title.
        path: the PNG to write.

    Returns:
        The exponents shown in the legends (`growth_exponents(rows)`).
    """
    exponents = growth_exponents(rows)
    patches = [row.patches for row in rows]
    figure = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, 2)
    panel_units = (("ms", "time per fwd+bwd run (ms)"), ("mb", "peak memory (MiB)"))
    for axes, (unit, label) in zip(panels, panel_units):
        for name, title, marker in (("ssync", "SSync", "o"), ("srl", "SRL dense alignment", "s")):
            column = f"{name}_{unit}"
            values = [getattr(row, column) for row in rows]
            axes.plot(patches, values, marker=marker, label=rf"{title}: $\propto (TN)^{{{exponents[column]:.2f}}}$")
        axes.set_xscale("log")
        axes.set_yscale("log")
        # Ticks at the measured grids: log-scale minor labels collide over this narrow range.
        axes.set_xticks(patches, labels=[f"{row.patches}\n({row.side}²)" for row in rows])
        axes.xaxis.set_minor_formatter(NullFormatter())
        axes.set_xlabel("patches per clip T·N (patch grid)")
        axes.set_ylabel(label)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
    figure.suptitle(
        f"SSync vs SRL objective, fwd+bwd: batch {setting.batch}, {setting.frames} frames, {setting.slots} slots\n"
        f"{setting.machine}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return exponents


def _measure_rows(sides: list[int], batch: int, frames: int, slots: int, reps: int) -> list[ScalingRow]:
    """Measures both objectives at every grid, printing each row as it comes."""
    print("{:>5} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}".format(*HEADER))
    rows = []
    for side in sides:
        shape = (batch, frames, side * side, slots)
        keys = jax.random.split(jax.random.PRNGKey(side))
        maps = (jax.random.normal(keys[0], shape, jnp.float32), jax.random.normal(keys[1], shape, jnp.float32))
        ssync_seconds, ssync_bytes = measure(ssync_objective((side, side)), maps, reps)
        srl_seconds, srl_bytes = measure(srl_objective, maps, reps)
        row = ScalingRow(side, frames * side * side, 1e3 * ssync_seconds, 1e3 * srl_seconds,
                         ssync_bytes / 2**20, srl_bytes / 2**20)
        rows.append(row)
        print("{:>5} {:>6} {:>10.2f} {:>10.1f} {:>10.2f} {:>10.1f} {:>9.1f}x {:>11.0f}x".format(
            row.side, row.patches, row.ssync_ms, row.srl_ms, row.ssync_mb, row.srl_mb,
            row.time_ratio, row.memory_ratio), flush=True)
    return rows


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    if options.from_csv:
        rows, setting = read_csv(pathlib.Path(options.from_csv))
        print(f"{options.from_csv}: {len(rows)} grids measured on {setting.machine}")
    else:
        setting = Setting(options.batch, options.frames, options.slots, machine.describe())
        print(f"{setting.machine}; batch {options.batch}, {options.frames} frames, {options.slots} slots, fwd+bwd")
        rows = _measure_rows([int(side) for side in options.sides], options.batch, options.frames, options.slots,
                             options.reps)

    exponents = growth_exponents(rows)
    print("growth exponent vs T*N (all grids):")
    print(f"  SSync time {exponents['ssync_ms']:.2f}, memory {exponents['ssync_mb']:.2f}")
    print(f"  SRL   time {exponents['srl_ms']:.2f}, memory {exponents['srl_mb']:.2f}")
    largest = rows[-1]
    print(f"at {setting.frames}x{largest.side}x{largest.side}: SRL/SSync time {largest.time_ratio:.1f}x, "
          f"memory {largest.memory_ratio:.0f}x")

    if not options.from_csv:
        write_csv(rows, setting, pathlib.Path(options.csv))
        print(f"wrote {options.csv}")
    plot(rows, setting, pathlib.Path(options.plot))
    print(f"wrote {options.plot}")


if __name__ == "__main__":
    # Defined here, not at import, so that importing this module beside other CLIs' flags cannot clash.
    flags.DEFINE_integer("batch", 8, "Clips per batch.")
    flags.DEFINE_integer("frames", 4, "Frames per clip; must be a multiple of SRL's group of 4.")
    flags.DEFINE_integer("slots", 11, "Slots per frame.")
    flags.DEFINE_list("sides", ["8", "12", "16", "24", "32", "37"], "Patch grid sides, comma-separated.")
    flags.DEFINE_integer("reps", 10, "Timed runs per grid (after warm-up).")
    flags.DEFINE_string("csv", "docs/objective_scaling.csv", "The table to write.")
    flags.DEFINE_string("plot", "docs/objective_scaling.png", "The plot to write.")
    flags.DEFINE_string("from_csv", None, "Re-plot this table instead of measuring (measurement flags are ignored).")
    app.run(main)
