"""The run's log keeps our lines and real warnings, and drops the libraries' chatter."""

import logging

import pytest

from ssync_jax import logs


def record(path: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("absl", level, path, 1, message, None, None)


@pytest.mark.parametrize(
    "path, level, message, kept",
    [
        ("/x/site-packages/orbax/checkpoint/manager.py", logging.INFO, "Saving checkpoint at step 100", False),
        ("/x/site-packages/orbax/checkpoint/manager.py", logging.WARNING, "Slow write to gs://b", True),
        ("/x/site-packages/tensorflow_datasets/core/features/feature.py", logging.WARNING,
         "`TensorInfo.dtype` is deprecated. Please change your code", False),
        ("/x/site-packages/tensorflow_datasets/core/features/image_feature.py", logging.WARNING,
         "OpenCV is not installed. We recommend using OpenCV", False),
        ("/x/site-packages/clu/metric_writers/logging_writer.py", logging.INFO, "[Hyperparameters] {'seed': 0}", False),
        ("/x/site-packages/clu/metric_writers/logging_writer.py", logging.INFO, "[10] loss/total=1.5", True),
        ("/work/main/ssync_jax/train.py", logging.INFO, "Resumed from step 200", True),
        ("/x/site-packages/jax/_src/dispatch.py", logging.ERROR, "device lost", True),
    ],
)  # fmt: skip
def test_library_chatter_is_dropped_and_progress_and_warnings_kept(path, level, message, kept):
    assert logs._LibraryInfoFilter().filter(record(path, level, message)) == kept
