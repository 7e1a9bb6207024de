"""Scenes shared by the generator's tests, rendered once per (spec, seed) for the whole session."""

import functools

import numpy as np

from ssync_jax.data.synthetic import SceneSpec, generate_video

STATIC = SceneSpec(height=48, width=64, num_frames=6, min_objects=3, max_objects=5)
LINEAR = SceneSpec(height=48, width=64, num_frames=6, min_objects=3, max_objects=5, camera_motion="linear")
# The same scenes as STATIC with MOVi-A-like plain colours.
PLAIN = SceneSpec(height=48, width=64, num_frames=6, min_objects=3, max_objects=5, texture="plain")


@functools.lru_cache(maxsize=None)
def video(spec: SceneSpec, seed: int) -> dict:
    return generate_video(spec, seed)


def decode(quantized: np.ndarray, value_range: np.ndarray) -> np.ndarray:
    """Kubric's uint16 decoding, written independently of the renderer's quantize."""
    low, high = value_range
    return quantized.astype(np.float64) / 65535 * (high - low) + low
