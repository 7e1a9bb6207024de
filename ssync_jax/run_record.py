"""A workdir is the record of one run: its config is written once and no later command rewrites it.

    changes = run_record.check(workdir, config)   # before any work; refuses what would change the run
    run_record.write(workdir, config, changes)    # config.json the first time; accepted changes beside it

A rerun in a workdir that holds a checkpoint may change only `RESUMABLE_KEYS`: how often the loop
logs, evaluates, draws images and saves, where it stops, and profiling — nothing that changes the
model, the data, the objective or the optimiser. `num_train_steps` is not among them: the learning
rate decays to its final value at the last step and SSync switches on at a fraction of it, so a
longer run is another schedule; start it as a new workdir from this one (`--config.init_from`).
Accepted changes are appended to `config_changes.jsonl` beside `config.json`, never written over
it. A workdir without a checkpoint has nothing to protect: its config is (re)written.

An evaluation (`--mode eval`) writes its own settings to `eval_config.json` and may change anything
but the model. Keys the record lacks or has beyond the config (a workdir written by an older or
newer version of this code) are accepted and recorded too.
"""

import datetime
import json
import os
from collections.abc import Mapping
from typing import Any

import ml_collections
from etils import epath

from ssync_jax import errors, paths

CONFIG_FILE = "config.json"
CHECKPOINTS_DIR = "checkpoints"  # Where `ssync_jax.checkpoints` keeps them.
EVAL_CONFIG_FILE = "eval_config.json"  # The config of the last `--mode eval`, its overrides included.
CHANGES_FILE = "config_changes.jsonl"
# What a resumed run may change: cadences of logging, evaluation, images and checkpoints, where it
# stops, profiling.
RESUMABLE_KEYS = (
    "log_every_steps",
    "image_every_steps",
    "eval_every_steps",
    "checkpoint_every_steps",
    "keep_checkpoint_steps",
    "async_checkpointing",
    "stop_after_step",
    "num_profile_steps",
)
_MISSING = "(not set)"


def flat_config(config: ml_collections.ConfigDict | Mapping[str, Any]) -> dict[str, Any]:
    """{dotted key: value} of a config as its JSON record holds it (tuples as lists)."""
    tree = json.loads(config.to_json_best_effort()) if hasattr(config, "to_json_best_effort") else config

    def walk(node: Any, prefix: str) -> dict[str, Any]:
        if isinstance(node, Mapping):
            return {k: v for key, child in node.items() for k, v in walk(child, f"{prefix}{key}.").items()}
        return {prefix[:-1]: node}

    return walk(json.loads(json.dumps(tree)), "")


def differences(recorded: Mapping[str, Any], config: ml_collections.ConfigDict) -> dict[str, tuple[Any, Any]]:
    """{dotted key: (recorded value, new value)} where the config differs from the record."""
    before, after = flat_config(recorded), flat_config(config)
    return {
        key: (before.get(key, _MISSING), after.get(key, _MISSING))
        for key in sorted(set(before) | set(after))
        if before.get(key, _MISSING) != after.get(key, _MISSING)
    }


def has_checkpoint(workdir: str) -> bool:
    """Whether the workdir holds a checkpoint (a run has trained there)."""
    directory = epath.Path(workdir) / CHECKPOINTS_DIR
    return directory.is_dir() and any(child.name.isdigit() for child in directory.iterdir())


def read(workdir: str) -> dict[str, Any] | None:
    """The workdir's recorded config as JSON, or None when it has none."""
    file = epath.Path(paths.absolute(workdir)) / CONFIG_FILE
    return json.loads(file.read_text()) if file.is_file() else None


def check(workdir: str, config: ml_collections.ConfigDict, evaluation: bool = False) -> dict[str, tuple[Any, Any]]:
    """The config's accepted changes against the workdir's record; refuses any other.

    Args:
        workdir: the run's directory (local or gs://).
        config: the config this command would run with.
        evaluation: `--mode eval`: any key outside `model` may differ (it is recorded apart).

    Returns:
        {dotted key: (recorded, new)} of the changes to record (empty for a new workdir).

    Raises:
        ConfigError: one line naming the differing keys and the ways on.
    """
    recorded = read(workdir)
    if recorded is None:
        return {}
    changed = differences(recorded, config)
    before, after = flat_config(recorded), flat_config(config)
    # A key one side lacks comes from another version of the code, not from this command's flags.
    versions = {key for key in changed if key not in before or key not in after}
    if evaluation:
        refused = [key for key in changed if key.startswith("model.") and key not in versions]
    elif not has_checkpoint(paths.absolute(workdir)):
        return {}  # Nothing trained yet: the config is written afresh.
    else:
        refused = [key for key in changed if key not in RESUMABLE_KEYS and key not in versions]
    if refused:
        shown = ", ".join(f"{key} ({_short(changed[key][0])} -> {_short(changed[key][1])})" for key in refused[:4])
        more = f" and {len(refused) - 4} more" if len(refused) > 4 else ""
        raise errors.ConfigError(
            f"{workdir} is the record of a run with another config: {shown}{more} differ from its {CONFIG_FILE}. "
            f"Use a new --workdir, or start one from this run with --config.init_from={workdir}; a resume may "
            f"change only {', '.join(RESUMABLE_KEYS)}."
        )
    return changed


def write(workdir: str, config: ml_collections.ConfigDict, changes: Mapping[str, tuple[Any, Any]],
          evaluation: bool = False) -> str:  # fmt: skip
    """Records the config: `config.json` where there is none (or no checkpoint yet), an evaluation's in
    `eval_config.json`, accepted changes appended to `config_changes.jsonl`. Returns the file that
    describes this command's config. Call on process 0 only."""
    workdir = paths.absolute(workdir)
    record = os.path.join(workdir, CONFIG_FILE)
    content = json.loads(config.to_json_best_effort())
    if evaluation:
        if not epath.Path(record).exists():
            paths.write_json(record, content)
        resolved = os.path.join(workdir, EVAL_CONFIG_FILE)
        paths.write_json(resolved, content)
        return resolved
    if not epath.Path(record).exists() or not has_checkpoint(workdir):
        paths.write_json(record, content)
        return record
    if changes:
        line = {
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "changes": {key: {"was": was, "now": now} for key, (was, now) in changes.items()},
        }
        file = epath.Path(workdir) / CHANGES_FILE
        existing = file.read_text() if file.exists() else ""
        temporary = epath.Path(str(file) + ".tmp")
        temporary.write_text(existing + json.dumps(line, sort_keys=True) + "\n")
        temporary.replace(file)
    return record


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
