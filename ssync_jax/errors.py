"""Mistakes a user can make and fix, as exception types the entry points recognise.

`main.py` and the command-line tools print a `UserError` as one line naming the input and the fix,
and exit with status 1, with no traceback; any other exception is a bug and keeps its traceback.
Each type also derives from the built-in exception it refines, so `except ValueError` still
catches a `ConfigError`.
"""


class UserError(Exception):
    """A mistake in what the user gave (config, flag, path, file); the message says how to fix it."""


class ConfigError(UserError, ValueError):
    """A config value, flag or argument that cannot work."""


class InputNotFoundError(UserError, FileNotFoundError):
    """A dataset, weights file, checkpoint, video or folder that is not where it was said to be."""


class WouldOverwriteError(UserError, FileExistsError):
    """An output that already exists and would be overwritten (nothing is ever overwritten)."""


class CheckpointWriteError(UserError, OSError):
    """A checkpoint that could not be written (a full disk, a folder gone): the earlier ones stay."""
