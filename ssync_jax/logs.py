"""What a run's log shows: our progress lines and the warnings that matter, not the libraries' chatter.

orbax logs a dozen INFO lines per checkpoint, TFDS repeats deprecation warnings about its own
internals, and clu writes the whole flattened config as one hparams line; they bury the lines a user
reads (steps, losses, evaluations, checkpoints). Other warnings and every error still show.
"""

import logging
import warnings

from absl import logging as absl_logging

# Packages whose INFO (and DEBUG) lines and deprecation warnings are dropped; matched on the source
# file's path.
QUIET_PACKAGES = ("orbax", "etils", "grain", "tensorflow", "tensorflow_datasets", "jax")
# Lines dropped whatever their level: not actionable here (we decode with PIL on purpose; the
# config is in the workdir's config.json and TensorBoard's HParams).
_DROPPED = ("OpenCV is not installed", "[Hyperparameters]")


class _LibraryInfoFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(text in message for text in _DROPPED):
            return False
        if record.levelno >= logging.ERROR:
            return True
        path = record.pathname.replace("\\", "/")
        if not any(f"/{package}/" in path for package in QUIET_PACKAGES):
            return True
        return record.levelno >= logging.WARNING and "deprecated" not in message.lower()


def quiet_libraries() -> None:
    """Keeps the libraries' INFO lines and TensorFlow's deprecation warnings out of the log."""
    absl_logging.get_absl_handler().addFilter(_LibraryInfoFilter())
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="tensorflow")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="tensorflow_datasets")
