"""Shared test setup: CPU-only JAX, quiet TensorFlow, parsed absl flags for grain workers."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow must never grab an accelerator during tests (tfds only uses it to encode/decode).
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

from absl import flags  # noqa: E402

# grain's multiprocessing workers read absl flags; under pytest nobody parses them.
flags.FLAGS.mark_as_parsed()
