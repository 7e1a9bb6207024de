"""The base loss of every slot model here: reconstruct the decoder's target (features or pixels)."""

import jax
import jax.numpy as jnp

from ssync_jax.objectives import registry


@registry.register("reconstruction")
def reconstruction_loss(reconstruction: jax.Array, target: jax.Array) -> jax.Array:
    """L_rec = mean over all elements of (x̂ − sg(x))².

    Args:
        reconstruction: `[B, T, N, D]` decoded patch features (or `[B, T, H, W, C]` pixels).
        target: the same shape; frozen backbone features or the input frames (no gradient).

    Returns:
        Scalar float32.

    Raises:
        ValueError: if the shapes differ.
    """
    if reconstruction.shape != target.shape:
        raise ValueError(
            f"reconstruction shape {reconstruction.shape} differs from target shape "
            f"{target.shape}; the decoder must predict the target's layout."
        )
    target = jax.lax.stop_gradient(target).astype(jnp.float32)
    return jnp.mean(jnp.square(reconstruction.astype(jnp.float32) - target))
