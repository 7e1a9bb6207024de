"""Workdir paths that may be local or in a bucket (gs://...), as TPU pods need a shared workdir."""

import json
import os
from typing import Any

from etils import epath


def absolute(path: str) -> str:
    """Local paths made absolute (orbax needs them); URLs such as `gs://bucket/run` unchanged."""
    return path if "://" in path else os.path.abspath(path)


def write_json(path: str, content: Any) -> None:
    """Writes `content` as indented JSON, replacing `path` only once it is complete."""
    temporary = epath.Path(path + ".tmp")
    temporary.parent.mkdir(parents=True, exist_ok=True)
    temporary.write_text(json.dumps(content, indent=2, sort_keys=True))
    temporary.replace(path)
