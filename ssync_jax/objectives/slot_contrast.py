"""SlotContrast's temporal slot-slot contrastive loss (Manasyan et al., CVPR 2025).

Each slot must recognise itself across consecutive frames among all slots of the other frame
(of every video in the batch with `batch_contrast`), which keeps slot identities stable in time.
"""

import jax
import jax.numpy as jnp

from ssync_jax.objectives import registry


def l2_normalize(x: jax.Array, epsilon: float = 1e-12) -> jax.Array:
    """x / max(‖x‖₂, ε) along the last axis, with a finite gradient at x = 0."""
    squared_norm = jnp.sum(jnp.square(x), axis=-1, keepdims=True)
    return x * jax.lax.rsqrt(jnp.maximum(squared_norm, epsilon**2))


@registry.register("slot_contrast")
def slot_contrast_loss(
    slots: jax.Array, temperature: float = 0.1, batch_contrast: bool = True
) -> jax.Array:
    """L = −mean_{t,b,s} log softmax_{(b',s')}(⟨ẑ_{t+1,b,s}, ẑ_{t,b',s'}⟩ / τ)_{(b,s)}, ẑ = z/‖z‖.

    Slot s of video b and its successor in the next frame form the positive pair; the other
    slots of all videos in the batch (`batch_contrast`), or of the same video only, are the
    negatives. The direction follows the SlotContrast code the SSync authors use: its
    cross-entropy normalises the [G, S_t, S_t+1] similarities over the frame-t axis, so each slot
    at t+1 must pick its predecessor among the slots at t. Averaged over the (T−1)·B·S anchors.

    Args:
        slots: `[B, T, S, D]` slots per frame.
        temperature: τ.
        batch_contrast: draw negatives from the whole batch rather than from the anchor's video.

    Returns:
        Scalar float32.
    """
    batch, frames, num_slots, dim = slots.shape
    if frames < 2:
        raise ValueError(
            f"slot_contrast_loss needs at least 2 frames, got slots of shape {slots.shape}."
        )
    if isinstance(temperature, (int, float)) and temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}.")
    unit = l2_normalize(slots.astype(jnp.float32))  # [B, T, S, D]
    anchors = unit[:, 1:]  # [B, T-1, S, D]
    candidates = unit[:, :-1]  # [B, T-1, S, D]
    if batch_contrast:
        # One contrast group per frame pair holding every video's slots, ordered (b, s).
        group = (frames - 1, batch * num_slots, dim)
        anchors = jnp.swapaxes(anchors, 0, 1).reshape(group)  # [T-1, B*S, D]
        candidates = jnp.swapaxes(candidates, 0, 1).reshape(group)  # [T-1, B*S, D]
    else:
        group = (batch * (frames - 1), num_slots, dim)
        anchors = anchors.reshape(group)  # [B*(T-1), S, D]
        candidates = candidates.reshape(group)  # [B*(T-1), S, D]
    logits = jnp.einsum("gkd,gld->gkl", anchors, candidates) / temperature  # [G, K, K]
    positive_logits = jnp.diagonal(logits, axis1=-2, axis2=-1)  # [G, K]
    return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - positive_logits)
