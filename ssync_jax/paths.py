"""Workdir paths that may be local or in a bucket (gs://...), as TPU pods need a shared workdir, and the
checks every command makes on its outputs before it does any work."""

import json
import os
from collections.abc import Sequence
from typing import Any

from etils import epath

from ssync_jax import errors


def expand(path: str) -> str:
    """`~` and `$VARIABLES` expanded in a local path, as a shell would; URLs such as `gs://...` unchanged."""
    return path if "://" in path else os.path.expandvars(os.path.expanduser(path))


def absolute(path: str) -> str:
    """Local paths expanded (`expand`) and made absolute (orbax needs them); URLs such as `gs://bucket/run` unchanged."""
    return path if "://" in path else os.path.abspath(expand(path))


# The config values that are paths (or, for the weights, a hub name): main.py expands them.
CONFIG_PATHS = (
    "data.data_dir", "data.precomputed_features", "init_from", "model.encoder.weights", "model.encoder.backbone_from",
    "eval.params_checkpoint",
)  # fmt: skip


def expand_config_paths(config) -> None:
    """Expands `~` and `$VARIABLES` in the config's path values (`CONFIG_PATHS`), in place."""
    for key in CONFIG_PATHS:
        *parents, name = key.split(".")
        node = config
        for parent in parents:
            node = node.get(parent) if node is not None else None
        if node is not None and isinstance(node.get(name), str):
            node[name] = expand(node[name])


def write_json(path: str, content: Any) -> None:
    """Writes `content` as indented JSON, replacing `path` only once it is complete."""
    temporary = epath.Path(path + ".tmp")
    temporary.parent.mkdir(parents=True, exist_ok=True)
    temporary.write_text(json.dumps(content, indent=2, sort_keys=True))
    temporary.replace(path)


def _nearest_existing(path: str) -> str:
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _check_creatable(path: str, flag: str, folder: bool) -> None:
    """That `path` (local; a folder, or a file) can be created: what exists of it, or above it, is a
    writable folder."""
    above = _nearest_existing(os.path.abspath(path) if folder else os.path.dirname(os.path.abspath(path)))
    if not os.path.isdir(above):
        raise errors.ConfigError(f"{flag} {path}: {above} is a file, not a folder; choose a path under a folder.")
    if not os.access(above, os.W_OK):
        raise errors.ConfigError(f"{flag} {path}: {above} is not writable; choose a folder you can write to.")


def check_output_folder(path: str, flag: str, files: Sequence[str] = ()) -> None:
    """Before any work: `path` is, or can be made, a folder, and holds none of `files` yet.

    Args:
        path: the output folder (`~` and variables expanded); a bucket URL is not checked.
        flag: the flag or argument that named it, for the message.
        files: the file names the command will write there, none of which may exist.

    Raises:
        ConfigError: a file stands where the folder or one above it should be, or it is not writable.
        WouldOverwriteError: one of `files` is already there.
    """
    if "://" in path:
        return
    path = expand(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise errors.ConfigError(f"{flag} {path} is a file; name a folder for the outputs.")
    _check_creatable(path, flag, folder=True)
    for name in files:
        if os.path.exists(os.path.join(path, name)):
            raise errors.WouldOverwriteError(
                f"{flag} {path} already holds {name}; choose another {flag} or move it away first."
            )


def check_new_file(path: str, flag: str) -> None:
    """Before any work: the file `path` does not exist yet and can be created."""
    if "://" in path:
        return
    path = expand(path)
    if os.path.exists(path):
        raise errors.WouldOverwriteError(f"{flag} {path} already exists; choose a new name or move it away first.")
    _check_creatable(path, flag, folder=False)


def check_new_folder(path: str, flag: str) -> None:
    """Before any work: `path` does not exist or is an empty folder, and can be created."""
    if "://" in path:
        return
    path = expand(path)
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise errors.WouldOverwriteError(f"{flag} {path} exists and is not an empty folder; choose a new one.")
    _check_creatable(path, flag, folder=True)
