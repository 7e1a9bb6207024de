"""Procedural MOVi-style scenes rendered offline (no Blender): physics, ray casting, exact flow.

`generate_video(SceneSpec(height=128, width=128), seed)` returns one example in Kubric MOVi's
feature layout (see generate.py).
"""

from ssync_jax.data.synthetic.generate import generate_video
from ssync_jax.data.synthetic.scene import SceneSpec

__all__ = ["SceneSpec", "generate_video"]
