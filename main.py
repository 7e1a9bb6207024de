r"""Entry point: `python main.py --config configs/synthetic.py --workdir DIR`.

Parses the config (with `--config.a.b=value` overrides), checks it against DIR's record of its run
(`ssync_jax.run_record`: a resume may change only the loop's cadences) and everything the job reads
(data, weights, other runs), then records the resolved config in `DIR/config.json` and runs the job:

    --mode train_and_eval   train (resuming from DIR's latest checkpoint) and evaluate periodically
    --mode train            train only
    --mode eval             evaluate DIR's latest checkpoint, writing DIR/eval_metrics.json

A mistake on the command line (a config file that does not exist, an unknown or misspelt
override, a value of the wrong type, a missing flag, a config that would change the workdir's run)
stops with one line naming it and the fix, before JAX loads; missing data or weights stop with one
line before anything is written. Ctrl-C saves a checkpoint after the step in flight (a second one
stops at once).

Multi-process jobs: on TPU pods, SLURM or Open MPI pass `--distributed` (JAX finds its peers);
elsewhere give every process `--coordinator_address=HOST:PORT --num_processes=N --process_id=I`.
"""

import difflib
import glob
import importlib.util
import os
import sys

from ssync_jax import cli, logs  # First: they quiet TensorFlow's C++ logs before anything loads TensorFlow.

from absl import flags, logging  # noqa: E402
from ml_collections import config_dict, config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file, e.g. configs/synthetic.py (the default recipe) or configs/movi_c.py."
)
_WORKDIR = cli.DEFINE_path("workdir", None, "Directory for the config, checkpoints and logs.")
_MODE = flags.DEFINE_enum("mode", "train_and_eval", ["train_and_eval", "train", "eval"], "What to run.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Join a multi-process job JAX detects (TPU, SLURM, MPI).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0 (multi-process jobs).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the job (with --coordinator_address).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index (with --coordinator_address).")
flags.mark_flags_as_required(["config", "workdir"])


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, after our own checks of --config, --workdir and every `--config.KEY` override
    against the loaded config, each mistake one line (exit 2)."""
    if not _asks_for_help(argv):
        config_argument = _config_argument(argv)
        if config_argument is None:
            _usage_error(f"--config is required, e.g. --config configs/synthetic.py (the default); the configs: {_configs()}")
        if not any(a == "--workdir" or a.startswith("--workdir=") for a in argv):
            _usage_error("--workdir is required: the directory for the run's config, checkpoints and logs")
        config_file, variant = config_argument
        if not os.path.isfile(config_file):
            _usage_error(f"--config {config_file}: no such file; the configs are {_configs()}")
        config = _load_config(config_file, variant)
        for key in _override_keys(argv):
            _check_override(config, key, config_file)
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:  # A value of the wrong type, an unknown flag: absl's own message.
        _usage_error(" ".join(str(error).split()))


def _load_config(config_file: str, variant: str | None) -> config_dict.ConfigDict:
    """The config file's `get_config(variant)`, as ml_collections will load it; its exception as one line."""
    spec = importlib.util.spec_from_file_location("_checked_config", config_file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        return module.get_config(variant) if variant is not None else module.get_config()
    except Exception as error:  # The config file is the user's input: whatever it raises is theirs to fix.
        argument = config_file if variant is None else f"{config_file}:{variant}"
        _usage_error(f"--config {argument}: {type(error).__name__}: {error}")


def _override_keys(argv: list[str]) -> list[str]:
    """The dotted keys of the `--config.KEY=VALUE` (or `--config.KEY VALUE`) overrides."""
    return [a.split("=", 1)[0].removeprefix("--config.") for a in argv if a.startswith("--config.")]


def _check_override(config: config_dict.ConfigDict, key: str, config_file: str) -> None:
    """Exits with a one-line error when `key` (e.g. "model.num_slots") names no field of `config`."""
    node, walked = config, []
    for part in key.split("."):
        fields = list(node.keys()) if isinstance(node, config_dict.ConfigDict) else []
        if part not in fields:
            where = "config." + ".".join(walked) if walked else "the config"
            close = difflib.get_close_matches(part, fields, n=1)
            hint = f' Did you mean "{close[0]}"?' if close else f" Its fields: {', '.join(sorted(fields))}." if fields else ""
            _usage_error(f"--config.{key}: {config_file} has no field {part!r} in {where}.{hint}")
        node, walked = node[part], [*walked, part]


def _asks_for_help(argv: list[str]) -> bool:
    return any(a in ("--help", "--helpshort", "--helpfull", "-h") for a in argv)


def _configs() -> str:
    """The experiment configs in configs/ (the files with a `get_config`)."""
    files = sorted(path for path in glob.glob("configs/*.py") if "def get_config" in open(path).read())
    return ", ".join(files) or "none found under configs/ (run from the repository root)"


def _config_argument(argv: list[str]) -> tuple[str, str | None] | None:
    """(path, variant or None) given to --config (`path[:variant]`), or None."""
    for i, argument in enumerate(argv):
        value = None
        if argument == "--config" and i + 1 < len(argv):
            value = argv[i + 1]
        elif argument.startswith("--config="):
            value = argument.split("=", 1)[1]
        if value is not None:
            path, separator, variant = value.partition(":")
            return path, variant if separator else None
    return None


def _usage_error(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        _usage_error(f"unexpected arguments {argv[1:]}; options are --flag=value, see --help")
    from ssync_jax import paths, run_record

    config = _CONFIG.value
    paths.expand_config_paths(config)
    workdir = paths.absolute(_WORKDIR.value)  # Local, or a bucket (gs://...) shared by all hosts.
    evaluation = _MODE.value == "eval"
    changes = run_record.check(workdir, config, evaluation)  # Before JAX loads, before anything is written.
    # Imported here so that `--help` and flag errors come back without loading JAX and TensorFlow.
    logs.import_tensorflow_quietly()
    import jax

    from ssync_jax import sharding, train

    sharding.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value, _DISTRIBUTED.value)
    fresh = not evaluation and not run_record.has_checkpoint(workdir)
    train.check_sources(config, training=not evaluation, fresh=fresh, evaluating=_MODE.value != "train")
    resolved = run_record.write(workdir, config, changes, evaluation) if jax.process_index() == 0 else None
    if jax.process_index() == 0:
        logging.info("Config %s; resolved in %s", _config_argument(sys.argv)[0], resolved)
        if changes:
            logging.info("This resume changes %s (recorded in %s).", ", ".join(changes), run_record.CHANGES_FILE)
    if evaluation:
        train.evaluate_checkpoint(config, workdir)
    else:
        train.train_and_evaluate(config, workdir, run_evaluation=_MODE.value == "train_and_eval")


if __name__ == "__main__":
    cli.run(main, flags_parser=parse_flags)
