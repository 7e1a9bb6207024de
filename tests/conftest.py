"""Shared test setup: CPU-only JAX, quiet TensorFlow, parsed absl flags for grain workers."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow must never grab an accelerator during tests (tfds only uses it to encode/decode).
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

from absl import flags  # noqa: E402

# grain's multiprocessing workers read absl flags; under pytest nobody parses them.
flags.FLAGS.mark_as_parsed()


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def compilation_cache(tmp_path_factory):
    """Reuses compiled programs across the runs of one module (each run builds fresh jit functions).

    Use with `pytestmark = pytest.mark.usefixtures("compilation_cache")`.
    """
    import jax

    previous = jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    yield
    jax.config.update("jax_compilation_cache_dir", previous[0])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", previous[1])
