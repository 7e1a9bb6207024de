"""ssync-jax: SSync (Selective Synergistic Learning, ECCV 2026) for slot-based video models in JAX/Flax."""

__version__ = "0.1.0"
