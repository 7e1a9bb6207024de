r"""Entry point: `python main.py --config configs/synthetic.py --workdir DIR`.

Parses the config (with `--config.a.b=value` overrides), checks it against DIR's record of its run
(`ssync_jax.run_record`: a resume may change only the loop's cadences) and everything the job reads
(data, weights, other runs), then records the resolved config in `DIR/config.json` and runs the job
(`ssync_jax.job`):

    --mode train_and_eval   train (resuming from DIR's latest checkpoint) and evaluate periodically
    --mode train            train only
    --mode eval             evaluate DIR's latest checkpoint, writing DIR/eval_metrics.json

A mistake on the command line stops with one line naming it and the fix, before JAX loads
(`ssync_jax.config_args`); missing data or weights stop with one line before anything is written.
Ctrl-C saves a checkpoint after the step in flight (a second one stops at once).

Multi-process jobs: on TPU pods, SLURM or Open MPI pass `--distributed` (JAX finds its peers);
elsewhere give every process `--coordinator_address=HOST:PORT --num_processes=N --process_id=I`.
"""

import sys

from ssync_jax import cli, config_args, job  # First: they quiet TensorFlow's C++ logs before anything loads it.

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. configs/synthetic.py (the default recipe) or configs/movi_c.py."
)
_WORKDIR = cli.DEFINE_path("workdir", None, "Directory for the config, checkpoints and logs.")
_MODE = flags.DEFINE_enum("mode", "train_and_eval", job.MODES, "What to run.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Join a multi-process job JAX detects (TPU, SLURM, MPI).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (multi-process jobs).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the job (with --coordinator_address).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (with --coordinator_address).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        config_args.usage_error(f"unexpected arguments {argv[1:]}; options are --flag=value, see --help")
    job.run(_CONFIG.value, _WORKDIR.value, _MODE.value, config_file=config_args.config_argument(sys.argv)[0],
            distributed=_DISTRIBUTED.value, coordinator_address=_COORDINATOR.value,
            num_processes=_NUM_PROCESSES.value, process_id=_PROCESS_ID.value)  # fmt: skip


if __name__ == "__main__":
    cli.run(main, flags_parser=config_args.parse_flags)
