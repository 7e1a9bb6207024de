"""What a run's log shows: our progress lines and errors, not the libraries' chatter.

orbax logs a dozen INFO lines and several warnings per checkpoint (read-only managers, metadata
stores), JAX announces the backends it did not find, TFDS repeats deprecation warnings about its
own internals, and clu writes the whole flattened config as one hparams line; they bury the lines a
user reads (steps, losses, evaluations, checkpoints). By default the libraries' INFO and WARNING
lines are dropped and their errors kept; `--log_libraries` (`ssync_jax.cli`) shows them all.
"""

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator

from absl import logging as absl_logging

# Packages whose INFO and WARNING lines are dropped; matched on the source file's path.
QUIET_PACKAGES = ("orbax", "etils", "grain", "tensorflow", "tensorflow_datasets", "jax", "jaxlib", "absl", "flax")
# Lines dropped whatever their source: not actionable here (we decode with PIL on purpose; the
# config is in the workdir's config.json and TensorBoard's HParams).
_DROPPED = ("OpenCV is not installed", "[Hyperparameters]")


# orbax's background threads log every failed write with its traceback (three lines of them for one
# full disk); the loop reports a failed checkpoint itself, in one line (`ssync_jax.checkpoints.save`).
_ORBAX_WRITE_FAILURES = (
    "_SignalingThread.run() raised an exception",
    "or the Commit callback in background save thread",
    "Save Finalize thread (save_finalize) failed",
)


class _LibraryInfoFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if any(text in record.getMessage() for text in _ORBAX_WRITE_FAILURES):
            return False
        if record.levelno >= logging.ERROR:
            return True
        if any(text in record.getMessage() for text in _DROPPED):
            return False
        path = record.pathname.replace("\\", "/")
        return not any(f"/{package}/" in path for package in QUIET_PACKAGES)


_FILTER = _LibraryInfoFilter()
_SHOW_ALL = False  # Set by `quiet_libraries(show=True)` (--log_libraries).


def quiet_libraries(show: bool = False) -> None:
    """Keeps the libraries' INFO and WARNING lines (and TensorFlow's deprecation warnings) out of the
    log; `show=True` lets everything through."""
    global _SHOW_ALL
    _SHOW_ALL = show
    handler = absl_logging.get_absl_handler()
    if show:
        handler.removeFilter(_FILTER)
        return
    handler.addFilter(_FILTER)
    drop_closed_loop_tracebacks()
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    # A failed asynchronous checkpoint write leaves futures whose errors asyncio repeats at exit.
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    logging.getLogger("concurrent.futures").setLevel(logging.CRITICAL)  # Their done-callbacks, likewise.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="tensorflow")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="tensorflow_datasets")


@contextlib.contextmanager
def libraries_quiet() -> Iterator[None]:
    """Within the block, the libraries' INFO and WARNING lines are dropped whatever the caller set up:
    what the package's functions do around a library call that chatters (orbax's read-only notes),
    so that a user's script sees none of it."""
    logger = logging.getLogger("absl")
    if _SHOW_ALL:  # --log_libraries
        yield
        return
    logger.addFilter(_FILTER)
    try:
        yield
    finally:
        logger.removeFilter(_FILTER)


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow with its C++ start-up lines (oneDNN, CPU features, absl's pre-init warning)
    kept off stderr: they are printed before any log level applies. With --log_libraries, or if the
    import fails, they are shown."""
    if "tensorflow" in sys.modules or "--log_libraries" in sys.argv:
        import tensorflow  # noqa: F401

        return
    stderr = sys.stderr.fileno()
    saved = os.dup(stderr)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), stderr)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, stderr)
            sink.seek(0)
            sys.stderr.buffer.write(sink.read())
            raise
        finally:
            os.dup2(saved, stderr)
            os.close(saved)


class _ClosedLoopTracebacks:
    """sys.stderr, less the tracebacks tensorstore's callbacks print (without a header, one per pending
    write) when a checkpoint write fails after orbax's event loop has closed: "RuntimeError: Event loop
    is closed", hundreds of lines that bury the one line the loop prints for the failure. Every other
    write passes through at once."""

    _HEADER = "Traceback (most recent call last):"

    def __init__(self, stream):
        self._stream = stream
        self._block: list[str] | None = None

    def write(self, text: str) -> int:
        if self._block is None and not text.startswith(self._HEADER):
            return self._stream.write(text)
        self._block = [*(self._block or []), text]
        lines = "".join(self._block).splitlines(keepends=True)
        last = next((line for line in lines[1:] if line.endswith("\n") and not line[:1].isspace()), None)
        if last is not None:  # The exception line ends the traceback.
            block, self._block = "".join(self._block), None
            if "Event loop is closed" not in last:
                self._stream.write(block)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def drop_closed_loop_tracebacks() -> None:
    """Filters sys.stderr as `_ClosedLoopTracebacks` says (idempotent)."""
    if not isinstance(sys.stderr, _ClosedLoopTracebacks):
        sys.stderr = _ClosedLoopTracebacks(sys.stderr)
