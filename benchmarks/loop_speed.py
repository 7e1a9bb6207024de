r"""The training loop against its jitted step, on one config: how much of each step the loop costs.

    python -m benchmarks.loop_speed --config configs/synthetic.py --steps 1000 --steps_per_dispatch 1,10

For each `--steps_per_dispatch` value, the real loop (`ssync_jax.train.train_and_evaluate`: the
config's input pipeline, the transfer onto the devices, the dispatches, the summed scalars and
non-finite checks, logging every `log_every_steps`, the preemption check and clu's progress hook;
no evaluation and no images) trains `--steps` steps after `--warmup_steps` untimed ones
(compilation) in a temporary workdir, timed by part (`LoopTimer`, passed in as the loop's
`loop_hook`). Beside it, the jitted step alone (`benchmarks.train_speed`, on one fixed batch already
on the device) in the same process.
Printed: steps/s of both, their ratio (loop / step: 1 = the loop costs nothing), and where the
loop's time goes: "wait" is time the host spent waiting for the devices, the rest is the loop's own
(while a dispatch computes, the host reads and sends the next batches, so only waiting is free).
"""

from ssync_jax import cli  # First: it quiets TensorFlow before anything loads it.

import collections
import tempfile
import time

from absl import app, flags
from ml_collections import config_flags

from benchmarks import machine, train_speed
from ssync_jax import train

PARTS = ("read", "transfer", "dispatch", "wait", "host")


class LoopTimer:
    """Wall time of the training loop's parts: its `loop_hook` (`ssync_jax.train.LoopHook`).

    Attributes:
        seconds: {part: seconds} after the first `warmup_steps` steps (compilation), by the mark
            that ends each part: "read" (the next batches from the pipeline, stacked), "transfer"
            (onto the devices), "dispatch" (enqueuing the jitted steps), "wait" (for the steps in
            flight), "host" (hooks, checks, logging); images, evaluation and checkpoints excluded.
        steps: the steps timed.
        warmup_steps: steps not timed at the start.
    """

    def __init__(self, warmup_steps: int = 0):
        self.seconds = collections.defaultdict(float)
        self.steps = 0
        self.warmup_steps = warmup_steps
        self._seen = 0
        self._last = None

    def __call__(self, mark: str, steps: int) -> None:
        """The loop passed `mark` in a dispatch of `steps` steps: the part it ends is timed ("start" ends none)."""
        now = time.perf_counter()
        timed = self._seen >= self.warmup_steps
        if mark != "start" and timed:
            self.seconds[mark] += now - self._last
        self._last = now
        if mark == "wait":  # The dispatch's steps have finished.
            if timed:
                self.steps += steps
            self._seen += steps


def loop_speed(config, steps: int, warmup_steps: int, steps_per_dispatch: int) -> tuple[float, LoopTimer]:
    """(steps/s of the loop after the warm-up, its timer) for `config` with `steps_per_dispatch`."""
    config = config.copy_and_resolve_references()
    config.steps_per_dispatch = steps_per_dispatch
    config.num_train_steps = warmup_steps + steps
    config.image_every_steps = 0
    config.checkpoint_every_steps = config.num_train_steps  # One save, at the end, outside the timing.
    timer = LoopTimer(warmup_steps)
    with tempfile.TemporaryDirectory() as workdir:
        train.train_and_evaluate(config, workdir, run_evaluation=False, loop_hook=timer)
    return timer.steps / sum(timer.seconds.values()), timer


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    config = options.config
    print(
        f"{machine.describe()}; {config.data.name}, batch {config.data.global_batch_size} x "
        f"{config.data.chunk_length} x {config.data.image_size[0]}x{config.data.image_size[1]}; "
        f"{options.steps} steps timed after {options.warmup_steps}"
    )
    alone = train_speed.measure(config, "config", None, options.steps)["steps_per_second"]
    print(f"jitted step alone: {alone:.2f} steps/s")
    print("| steps per dispatch | loop steps/s | step alone steps/s | loop / step | " + " | ".join(f"{p} %" for p in PARTS) + " |")
    print("|---:|---:|---:|---:|" + "---:|" * len(PARTS))
    for count in options.steps_per_dispatch:
        rate, timer = loop_speed(config, options.steps, options.warmup_steps, int(count))
        total = sum(timer.seconds.values())
        shares = " | ".join(f"{100 * timer.seconds[p] / total:.1f}" for p in PARTS)
        print(f"| {count} | {rate:.2f} | {alone:.2f} | {rate / alone:.2f} | {shares} |")


if __name__ == "__main__":
    config_flags.DEFINE_config_file("config", "configs/synthetic.py", "Experiment config.")
    flags.DEFINE_integer("steps", 1000, "Timed steps per setting.", lower_bound=1)
    flags.DEFINE_integer("warmup_steps", 200, "Untimed steps first (compilation, first epoch's decoding).", lower_bound=0)
    flags.DEFINE_list("steps_per_dispatch", ["1", "10"], "Values of config.steps_per_dispatch to time.")
    cli.run(main)
