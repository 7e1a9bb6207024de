r"""Entry point: `python main.py --config configs/synthetic.py --workdir DIR`.

Parses the config (with `--config.a.b=value` overrides), writes the resolved config to
`DIR/config.json`, and runs the job:

    --mode train_and_eval   train (resuming from DIR's latest checkpoint) and evaluate periodically
    --mode train            train only
    --mode eval             evaluate DIR's latest checkpoint, writing DIR/eval_metrics.json

A mistake on the command line (a config file that does not exist, an unknown or misspelt
override, a value of the wrong type, a missing flag) stops with one line naming it and the fix,
before JAX loads.

Multi-process jobs: on TPU pods, SLURM or Open MPI pass `--distributed` (JAX finds its peers);
elsewhere give every process `--coordinator_address=HOST:PORT --num_processes=N --process_id=I`.
"""

import glob
import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. configs/synthetic.py (the default recipe) or configs/movi_c.py."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the config, checkpoints and logs.")
_MODE = flags.DEFINE_enum("mode", "train_and_eval", ["train_and_eval", "train", "eval"], "What to run.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Join a multi-process job JAX detects (TPU, SLURM, MPI).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (multi-process jobs).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the job (with --coordinator_address).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (with --coordinator_address).")
flags.mark_flags_as_required(["config", "workdir"])


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing with a one-line error (exit 2) for every mistake a user makes on the command line."""
    config_file = _config_file(argv)
    if config_file is None and not _asks_for_help(argv):
        _usage_error(f"--config is required, e.g. --config configs/synthetic.py (the default); the configs: {_configs()}")
    if not any(a == "--workdir" or a.startswith("--workdir=") for a in argv) and not _asks_for_help(argv):
        _usage_error("--workdir is required: the directory for the run's config, checkpoints and logs")
    if config_file is not None and not os.path.isfile(config_file):
        _usage_error(f"--config {config_file}: no such file; the configs are {_configs()}")
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:  # A missing flag, a value of the wrong type, the config file's own check.
        message = str(error).strip()
        if "Error whilst parsing config file" in message:  # get_config raised: keep its last line.
            message = f"--config {config_file}: {message.splitlines()[-1].split(': ', 1)[-1]}"
        _usage_error(message.replace("\n", " "))
    except (AttributeError, KeyError) as error:  # An override naming a field the config does not have.
        # ml_collections' message: the quoted field, then possibly a line with a near-miss suggestion.
        text = str(error).strip("'\"").replace("\\'", "'").replace("\\n", "\n")
        field, _, suggestion = text.partition("\n")
        field = field.strip("'")
        overrides = [a.split("=")[0] for a in argv if a.startswith("--config.")]
        override = next((o for o in overrides if o.split(".")[-1] == field), "--config." + field)
        _usage_error(f"{override}: {config_file} has no field {field!r}. {suggestion}".strip())


def _asks_for_help(argv: list[str]) -> bool:
    return any(a in ("--help", "--helpshort", "--helpfull", "-h") for a in argv)


def _configs() -> str:
    """The experiment configs in configs/ (the files with a `get_config`)."""
    files = sorted(path for path in glob.glob("configs/*.py") if "def get_config" in open(path).read())
    return ", ".join(files) or "none found under configs/ (run from the repository root)"


def _config_file(argv: list[str]) -> str | None:
    """The path given to --config (without a `:variant`), or None."""
    for i, argument in enumerate(argv):
        if argument == "--config" and i + 1 < len(argv):
            return argv[i + 1].split(":")[0]
        if argument.startswith("--config="):
            return argument.split("=", 1)[1].split(":")[0]
    return None


def _usage_error(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _usage_error(f"unexpected arguments {argv[1:]}; options are --flag=value, see --help")
    # Imported here so that `--help` and flag errors come back without loading JAX and TensorFlow.
    import jax

    from ssync_jax import checkpoints, logs, paths, sharding, train

    logs.quiet_libraries()
    sharding.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value, _DISTRIBUTED.value)
    config = _CONFIG.value
    workdir = paths.absolute(_WORKDIR.value)  # Local, or a bucket (gs://...) shared by all hosts.
    resolved = checkpoints.write_config(workdir, config, evaluation=_MODE.value == "eval")
    if jax.process_index() == 0:
        logging.info("Config %s; resolved in %s", _config_file(sys.argv), resolved)
    if _MODE.value == "eval":
        train.evaluate_checkpoint(config, workdir)
    else:
        train.train_and_evaluate(config, workdir, run_evaluation=_MODE.value == "train_and_eval")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
