"""The run's log keeps our lines and real warnings, and drops the libraries' chatter."""

import io
import logging

import pytest

from ssync_jax import logs


def record(path: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("absl", level, path, 1, message, None, None)


@pytest.mark.parametrize(
    "path, level, message, kept",
    [
        ("/x/site-packages/orbax/checkpoint/manager.py", logging.INFO, "Saving checkpoint at step 100", False),
        ("/x/site-packages/orbax/checkpoint/manager.py", logging.WARNING, "read_only=True, setting create=False", False),
        ("/x/site-packages/jax/_src/xla_bridge.py", logging.INFO, "Unable to initialize backend 'tpu'", False),
        ("/x/site-packages/tensorflow_datasets/core/features/feature.py", logging.WARNING,
         "`TensorInfo.dtype` is deprecated. Please change your code", False),
        ("/x/site-packages/tensorflow_datasets/core/features/image_feature.py", logging.WARNING,
         "OpenCV is not installed. We recommend using OpenCV", False),
        ("/x/site-packages/clu/metric_writers/logging_writer.py", logging.INFO, "[Hyperparameters] {'seed': 0}", False),
        ("/x/site-packages/clu/metric_writers/logging_writer.py", logging.INFO, "[10] loss/total=1.5", True),
        ("/work/main/ssync_jax/train.py", logging.INFO, "Resumed from step 200", True),
        ("/work/main/ssync_jax/train.py", logging.WARNING, "SIGTERM received: saving a checkpoint", True),
        ("/x/site-packages/jax/_src/dispatch.py", logging.ERROR, "device lost", True),
    ],
)  # fmt: skip
def test_library_info_and_warnings_are_dropped_and_our_lines_and_all_errors_kept(path, level, message, kept):
    assert logs._LibraryInfoFilter().filter(record(path, level, message)) == kept


def test_log_libraries_lets_every_line_through(monkeypatch):
    from absl import logging as absl_logging

    handler = absl_logging.get_absl_handler()
    library_warning = record("/x/site-packages/orbax/checkpoint/manager.py", logging.WARNING, "read_only=True")
    logs.quiet_libraries()
    assert not handler.filter(library_warning)
    logs.quiet_libraries(show=True)
    assert handler.filter(library_warning)


def test_tensorflow_loads_without_its_start_up_lines_unless_asked_for():
    import subprocess
    import sys

    code = "import ssync_jax.data.movi"  # With `-c`, sys.argv holds the arguments after the code.
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "oneDNN" not in quiet.stderr and "absl::InitializeLog" not in quiet.stderr, quiet.stderr
    loud = subprocess.run([sys.executable, "-c", code, "--log_libraries"], capture_output=True, text=True, check=True)
    if not loud.stderr:  # TensorFlow turns oneDNN on, and says so, only on some CPUs (not on AVX2-only ones).
        pytest.skip("TensorFlow printed no start-up line on this CPU: there was nothing to keep out")
    assert "oneDNN custom operations" in loud.stderr  # The lines exist: they are kept out, not absent.


def test_stderr_drops_only_the_closed_event_loop_tracebacks_of_a_failed_write():
    stream = io.StringIO()
    filtered = logs._ClosedLoopTracebacks(stream)
    closed = (
        "Traceback (most recent call last):\n",
        '  File "asyncio/base_events.py", line 806, in call_soon_threadsafe\n    self._check_closed()\n',
        "RuntimeError: Event loop is closed\n",
    )
    for piece in (*closed, "Error: Could not write a checkpoint in w: no space left on the device.\n", "50%|#\r"):
        filtered.write(piece)
    other = ("Traceback (most recent call last):\n", '  File "x.py", line 1, in f\n', "ValueError: bad\n")
    for piece in (*closed, *other):
        filtered.write(piece)
    assert stream.getvalue() == (
        "Error: Could not write a checkpoint in w: no space left on the device.\n50%|#\r" + "".join(other)
    )
