"""Per-frame decoders: each slot is decoded separately, then alpha logits mix the slots' outputs."""

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from ssync_jax.models import precision
from ssync_jax.models.encoders import GridPositionEmbedding
from ssync_jax.models.layers import MLP, Dense


class MLPDecoder(nn.Module):
    """Slot + learned patch position embedding -> MLP -> per-patch features and an alpha logit.

    The MLP's output layer is linear and the alpha masks sum to one over slots, so the mixture of
    the slots' outputs is the output layer applied once to the mixture of their last hidden states:
    Σ_s m_s (W h_s + b) = W (Σ_s m_s h_s) + b. Only the alpha logit (one column of W) is computed per
    slot; the features' columns run once per patch instead of once per slot and patch (1/S of that
    layer's cost, exact up to rounding; the parameters are the plain MLP's).

    Attributes:
        output_size: Width of the reconstructed features (the backbone's width).
        num_patches: N, the patches per frame.
        hidden_sizes: MLP hidden widths (ReLU).
        init_scheme: Initialisation of the MLP, "torch" or "flax" (`ssync_jax.models.layers`).
        dtype: Computation dtype.
    """

    output_size: int
    num_patches: int
    hidden_sizes: Sequence[int] = (1024, 1024, 1024)
    init_scheme: str = "flax"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, slots: jax.Array) -> dict[str, jax.Array]:
        """Args: slots [B, S, D].

        Returns:
            reconstruction [B, N, F]; masks [B, N, S] (softmax over slots); alpha_logits [B, N, S];
            hard_reconstruction [B, N, F]: each patch decoded by its argmax slot alone (what the
            slots carry when the masks are read as labels; no training loss reads it).
        """
        slot_dim = slots.shape[-1]
        pos_emb = self.param("pos_emb", nn.initializers.normal(slot_dim**-0.5), (self.num_patches, slot_dim))
        # Patch-major rows: the slots of a patch are adjacent, so the logits come out [B, N, S] and
        # the mixture is a sum over neighbouring rows (on a 2-core CPU half the time of slot-major).
        # The MLP's input is slots[:, None] + pos_emb[:, None] [B, N, S, D]; given as its two parts,
        # the first layer runs per slot and per patch (`MLP`).
        parts = (slots[:, None, :, :], pos_emb[:, None, :])  # [B, 1, S, D], [N, 1, D]
        mlp = MLP(self.hidden_sizes, self.output_size + 1, init_scheme=self.init_scheme, dtype=self.dtype, name="mlp")
        hidden, kernel, bias = mlp(parts, apply_output=False)  # [B, N, S, H], [H, F+1], [F+1]
        kernel = kernel.astype(self.dtype)
        # float32 logits whatever the compute dtype: they are SSync's decoder map.
        alpha_logits = jnp.einsum("bnsh,h->bns", hidden, kernel[:, -1], preferred_element_type=jnp.float32)
        alpha_logits = alpha_logits + bias[-1].astype(jnp.float32)  # [B, N, S]
        masks = jax.nn.softmax(alpha_logits, axis=-1)  # [B, N, S]
        mixed = jnp.einsum("bns,bnsh->bnh", masks.astype(hidden.dtype), hidden, preferred_element_type=jnp.float32)
        mixed = mixed.astype(hidden.dtype)  # [B, N, H]
        reconstruction = precision.dense(mixed, kernel[:, :-1], bias[:-1]).astype(jnp.float32)  # [B, N, F]
        winners = jax.nn.one_hot(jnp.argmax(alpha_logits, axis=-1), alpha_logits.shape[-1], dtype=hidden.dtype)
        hard = jnp.einsum("bns,bnsh->bnh", winners, hidden)  # [B, N, H]
        hard_reconstruction = precision.dense(hard, kernel[:, :-1], bias[:-1]).astype(jnp.float32)  # [B, N, F]
        return dict(
            reconstruction=reconstruction, masks=masks, alpha_logits=alpha_logits, hard_reconstruction=hard_reconstruction
        )


class SpatialBroadcastDecoder(nn.Module):
    """SAVi's spatial-broadcast CNN decoder for pixels, flow or depth.

    Each slot is tiled on a small grid, given a position embedding, and upsampled by nearest resize +
    5x5 convolution (on XLA:CPU several times faster than transposed convolution, same output size).

    Attributes:
        output_size: Channels to reconstruct (3 RGB, 2 flow, 1 depth).
        resolution: (h0, w0) of the broadcast grid.
        features: Channels of each convolution (ReLU after each).
        upsample: Whether each convolution is preceded by a 2x upsampling.
        kernel_size: Square kernel side.
        dtype: Computation dtype.
    """

    output_size: int = 3
    resolution: tuple[int, int] = (8, 8)
    features: Sequence[int] = (64, 64, 64, 64)
    upsample: Sequence[bool] = (True, True, True, False)
    kernel_size: int = 5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, slots: jax.Array) -> dict[str, jax.Array]:
        """Args: slots [B, S, D].

        Returns:
            reconstruction [B, H, W, C]; masks [B, H, W, S] (softmax over slots); alpha_logits [B, H, W, S];
            hard_reconstruction [B, H, W, C]: each pixel decoded by its argmax slot alone.
        """
        batch, num_slots, slot_dim = slots.shape
        x = jnp.broadcast_to(
            slots.reshape(batch * num_slots, 1, 1, slot_dim), (batch * num_slots, *self.resolution, slot_dim)
        )  # [B*S, h0, w0, D]
        x = GridPositionEmbedding(dtype=self.dtype, name="position_embedding")(x)
        for i, (width, up) in enumerate(zip(self.features, self.upsample, strict=True)):
            if up:
                height, width_px = x.shape[1:3]
                x = jax.image.resize(x, (x.shape[0], 2 * height, 2 * width_px, x.shape[-1]), method="nearest")
            x = nn.relu(nn.Conv(width, (self.kernel_size,) * 2, dtype=self.dtype, name=f"conv_{i}")(x))
        out = Dense(self.output_size + 1, dtype=self.dtype, name="readout")(x).astype(jnp.float32)
        out = out.reshape(batch, num_slots, *out.shape[1:])  # [B, S, H, W, C+1]
        values, alpha_logits = out[..., :-1], jnp.moveaxis(out[..., -1], 1, -1)  # [B, S, H, W, C], [B, H, W, S]
        masks = jax.nn.softmax(alpha_logits, axis=-1)  # [B, H, W, S]
        reconstruction = jnp.einsum("bhws,bshwc->bhwc", masks, values)  # [B, H, W, C]
        winners = jax.nn.one_hot(jnp.argmax(alpha_logits, axis=-1), num_slots, dtype=values.dtype)  # [B, H, W, S]
        hard_reconstruction = jnp.einsum("bhws,bshwc->bhwc", winners, values)  # [B, H, W, C]
        return dict(
            reconstruction=reconstruction, masks=masks, alpha_logits=alpha_logits, hard_reconstruction=hard_reconstruction
        )
