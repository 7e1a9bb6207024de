"""Slot initialisers: the slots given to the corrector on a video's first frame."""

import jax
import jax.numpy as jnp
from flax import linen as nn

from ssync_jax.models.layers import MLP


class FixedLearnedSlots(nn.Module):
    """The same learned slots for every video, initialised N(0, 1/D).

    Attributes:
        num_slots: S.
        slot_dim: D.
    """

    num_slots: int
    slot_dim: int

    @nn.compact
    def __call__(self, batch_size: int, conditioning: jax.Array | None = None) -> jax.Array:
        """Args: batch_size B; conditioning unused. Returns: [B, S, D]."""
        del conditioning
        slots = self.param("slots", nn.initializers.normal(self.slot_dim**-0.5), (self.num_slots, self.slot_dim))
        return jnp.broadcast_to(slots, (batch_size, self.num_slots, self.slot_dim))


class GaussianSlots(nn.Module):
    """Slots sampled i.i.d. from a Gaussian with learned mean and (log) standard deviation.

    Draws from the `slots` RNG stream: pass `rngs={"slots": key}` to `apply`.

    Attributes:
        num_slots: S.
        slot_dim: D.
    """

    num_slots: int
    slot_dim: int

    @nn.compact
    def __call__(self, batch_size: int, conditioning: jax.Array | None = None) -> jax.Array:
        """Args: batch_size B; conditioning unused. Returns: [B, S, D]."""
        del conditioning
        mean = self.param("mean", nn.initializers.normal(self.slot_dim**-0.5), (self.slot_dim,))
        log_std = self.param("log_std", nn.initializers.zeros, (self.slot_dim,))
        noise = jax.random.normal(self.make_rng("slots"), (batch_size, self.num_slots, self.slot_dim))
        return mean + jnp.exp(log_std) * noise  # [B, S, D]


class BoxConditionedSlots(nn.Module):
    """SAVi's first-frame conditioning: an MLP embeds each object's box; a background box comes first.

    The background slot is the MLP's embedding of the all-zero box, so S = K + 1.

    Attributes:
        num_slots: S (K objects + 1 background).
        slot_dim: D.
        hidden_size: MLP hidden width.
    """

    num_slots: int
    slot_dim: int
    hidden_size: int = 256

    @nn.compact
    def __call__(self, batch_size: int, conditioning: jax.Array | None = None) -> jax.Array:
        """Args:
            batch_size: B.
            conditioning: [B, K, 4] first-frame boxes (y_min, x_min, y_max, x_max) in [0, 1], K = S - 1;
                absent objects as all-zero boxes.

        Returns:
            [B, S, D].
        """
        expected = (batch_size, self.num_slots - 1, 4)
        if conditioning is None or conditioning.shape != expected:
            got = None if conditioning is None else conditioning.shape
            raise ValueError(f"box-conditioned slots need conditioning boxes of shape {expected}, got {got}")
        background = jnp.zeros((batch_size, 1, 4), conditioning.dtype)
        boxes = jnp.concatenate([background, conditioning], axis=1)  # [B, S, 4]
        return MLP((self.hidden_size,), self.slot_dim, name="mlp")(boxes)  # [B, S, D]
