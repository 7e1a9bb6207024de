"""The experiment command line's own checks, before absl parses it and before JAX loads: --config
names a config file that loads (`path[:variant]`), --workdir is given, and every `--config.KEY=VALUE`
override names a field of that config — each mistake one line naming it and the fix (exit status 2).
"""

import difflib
import glob
import importlib.util
import os
import sys

from absl import flags
from ml_collections import config_dict


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, after our own checks of --config, --workdir and every `--config.KEY` override
    against the loaded config, each mistake one line (exit 2)."""
    if not _asks_for_help(argv):
        given = config_argument(argv)
        if given is None:
            usage_error(f"--config is required, e.g. --config configs/synthetic.py (the default); the configs: {_configs()}")
        if not any(a == "--workdir" or a.startswith("--workdir=") for a in argv):
            usage_error("--workdir is required: the directory for the run's config, checkpoints and logs")
        config_file, variant = given
        if not os.path.isfile(config_file):
            usage_error(f"--config {config_file}: no such file; the configs are {_configs()}")
        config = _load_config(config_file, variant)
        for key in _override_keys(argv):
            _check_override(config, key, config_file)
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:  # A value of the wrong type, an unknown flag: absl's own message.
        usage_error(" ".join(str(error).split()))


def _load_config(config_file: str, variant: str | None) -> config_dict.ConfigDict:
    """The config file's `get_config(variant)`, as ml_collections will load it; its exception as one line."""
    spec = importlib.util.spec_from_file_location("_checked_config", config_file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        return module.get_config(variant) if variant is not None else module.get_config()
    except Exception as error:  # The config file is the user's input: whatever it raises is theirs to fix.
        argument = config_file if variant is None else f"{config_file}:{variant}"
        usage_error(f"--config {argument}: {type(error).__name__}: {error}")


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
            usage_error(f"--config.{key}: {config_file} has no field {part!r} in {where}.{hint}")
        node, walked = node[part], [*walked, part]


def _asks_for_help(argv: list[str]) -> bool:
    return any(a in ("--help", "--helpshort", "--helpfull", "-h") for a in argv)


def _configs() -> str:
    """The experiment configs in configs/ (the files with a `get_config`)."""
    files = sorted(path for path in glob.glob("configs/*.py") if "def get_config" in open(path).read())
    return ", ".join(files) or "none found under configs/ (run from the repository root)"


def config_argument(argv: list[str]) -> tuple[str, str | None] | None:
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


def usage_error(message: str) -> None:
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(2)
