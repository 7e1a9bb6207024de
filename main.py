r"""Entry point: `python main.py --config configs/synthetic.py --workdir DIR`.

Parses the config (with `--config.a.b=value` overrides; an unknown key fails, naming it), writes
the resolved config to `DIR/config.json`, and runs the job:

    --mode train_and_eval   train (resuming from DIR's latest checkpoint) and evaluate periodically
    --mode train            train only
    --mode eval             evaluate DIR's latest checkpoint, writing DIR/eval_metrics.json

Multi-process jobs: on TPU pods, SLURM or Open MPI pass `--distributed` (JAX finds its peers);
elsewhere give every process `--coordinator_address=HOST:PORT --num_processes=N --process_id=I`.
"""

import json
import os

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", "configs/synthetic.py", "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the config, checkpoints and logs.")
_MODE = flags.DEFINE_enum("mode", "train_and_eval", ["train_and_eval", "train", "eval"], "What to run.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Join a multi-process job JAX detects (TPU, SLURM, MPI).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (multi-process jobs).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the job (with --coordinator_address).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (with --coordinator_address).")
flags.mark_flags_as_required(["workdir"])


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    # Imported here so that `--help` and flag errors come back without loading JAX and TensorFlow.
    import jax

    from ssync_jax import paths, sharding, train

    sharding.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value, _DISTRIBUTED.value)
    config = _CONFIG.value
    workdir = paths.absolute(_WORKDIR.value)  # Local, or a bucket (gs://...) shared by all hosts.
    if jax.process_index() == 0:
        paths.write_json(os.path.join(workdir, "config.json"), json.loads(config.to_json_best_effort()))
    logging.info("Config:\n%s", config)
    if _MODE.value == "eval":
        train.evaluate_checkpoint(config, workdir)
    else:
        train.train_and_evaluate(config, workdir, run_evaluation=_MODE.value == "train_and_eval")


if __name__ == "__main__":
    app.run(main)
