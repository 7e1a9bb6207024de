"""SRL-style dense alignment of encoder and decoder maps: the quadratic baseline SSync replaces.

This is OUR READING of the dense-alignment idea of SRL (the "SRL (dense alignment)" row of the
SSync paper), written for comparison in benchmarks and ablations; it is not a verified port of
SRL's code. Every patch of a group of frames is contrasted with every other patch of the group:
patches that the *other* module puts in the same slot are positives (a supervised-contrastive /
InfoNCE loss over patch-pair similarities of one module's slot maps). The patch embedding (the
L2-normalised softmax over slots), groups of 4 frames and τ = 0.1 are our choices. Cost and
memory grow with the square of the patches per group, (G·N)², where SSync's grow linearly.
"""

import jax
import jax.numpy as jnp

from ssync_jax.objectives import registry
from ssync_jax.objectives.slot_contrast import l2_normalize
from ssync_jax.objectives.ssync import labels

# Stands in for −∞ on the self-pair so that logsumexp stays finite and NaN-free.
_MASKED_LOGIT = -1e9


def dense_alignment_loss(
    logits: jax.Array, partner_labels: jax.Array, group_size: int = 4, temperature: float = 0.1
) -> jax.Array:
    """L = −mean_p mean_{q∈P(p)} log( exp(sim_pq/τ) / Σ_{r≠p} exp(sim_pr/τ) ), P(p) = {q ≠ p : y_q = y_p}.

    sim_pq is the cosine similarity of softmax_s(logits) at patches p and q of the same group of
    `group_size` consecutive frames of one video; y are the partner module's labels. Anchors
    without any positive in their group are left out of the mean.

    Args:
        logits: `[B, T, N, S]` slot logits of the module being trained.
        partner_labels: `[B, T, N]` int labels from the other module (no gradient).
        group_size: G, frames per contrast group; T must be a multiple of it.
        temperature: τ.

    Returns:
        Scalar float32; 0 when no anchor has a positive.
    """
    batch, frames, patches, num_slots = logits.shape
    if frames % group_size:
        raise ValueError(
            f"dense_alignment_loss groups frames by {group_size} but got T={frames}; pass a clip "
            f"length divisible by group_size or set group_size to a divisor of {frames}."
        )
    groups = frames // group_size
    members = group_size * patches
    maps = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)  # [B, T, N, S]
    maps = l2_normalize(maps).reshape(batch, groups, members, num_slots)  # [B, G', M, S]
    targets = jax.lax.stop_gradient(partner_labels).reshape(batch, groups, members)  # [B, G', M]

    not_self = ~jnp.eye(members, dtype=bool)  # [M, M]
    similarity = jnp.einsum("bgps,bgqs->bgpq", maps, maps) / temperature  # [B, G', M, M]
    similarity = jnp.where(not_self, similarity, _MASKED_LOGIT)  # [B, G', M, M]
    log_prob = similarity - jax.nn.logsumexp(similarity, axis=-1, keepdims=True)  # [B, G', M, M]
    positive = (targets[..., :, None] == targets[..., None, :]) & not_self  # [B, G', M, M]
    num_positive = jnp.sum(positive, axis=-1).astype(jnp.float32)  # [B, G', M]
    positive_log_prob = jnp.sum(jnp.where(positive, log_prob, 0.0), axis=-1)  # [B, G', M]
    per_anchor = -positive_log_prob / jnp.maximum(num_positive, 1.0)  # [B, G', M]
    has_positive = (num_positive > 0).astype(jnp.float32)  # [B, G', M]
    return jnp.sum(per_anchor * has_positive) / jnp.maximum(jnp.sum(has_positive), 1.0)


def srl_losses(
    enc_logits: jax.Array, dec_logits: jax.Array, group_size: int = 4, temperature: float = 0.1
) -> dict[str, jax.Array]:
    """Both directions of the dense alignment: each module's map aligned to the other's labels.

    Args:
        enc_logits: `[B, T, N, S]` encoder slot-attention logits.
        dec_logits: `[B, T, N, S]` decoder alpha logits on the same grid.
        group_size: frames per contrast group.
        temperature: τ.

    Returns:
        {"encoder": encoder map aligned to decoder labels, "decoder": the converse}; scalars.
    """
    if dec_logits.shape != enc_logits.shape:
        raise ValueError(
            f"dec_logits shape {dec_logits.shape} differs from enc_logits shape {enc_logits.shape}."
        )
    enc_labels = labels(jax.lax.stop_gradient(enc_logits))  # [B, T, N]
    dec_labels = labels(jax.lax.stop_gradient(dec_logits))  # [B, T, N]
    return {
        "encoder": dense_alignment_loss(enc_logits, dec_labels, group_size, temperature),
        "decoder": dense_alignment_loss(dec_logits, enc_labels, group_size, temperature),
    }


@registry.register("srl")
def srl_loss(enc_logits: jax.Array, dec_logits: jax.Array, group_size: int = 4, temperature: float = 0.1) -> jax.Array:
    """The sum of both directions of `srl_losses` (the "srl" entry of `config.losses`)."""
    directions = srl_losses(enc_logits, dec_logits, group_size, temperature)
    return directions["encoder"] + directions["decoder"]
