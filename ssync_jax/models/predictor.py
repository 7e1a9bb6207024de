"""Transformer predictor: slots of frame t attend to each other to predict the slots of frame t+1."""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from ssync_jax.models.layers import TORCH_LAYER_NORM_EPS, Dense, MultiHeadSelfAttention


class TransformerPredictor(nn.Module):
    """Pre-norm transformer encoder over slots (PyTorch's TransformerEncoderLayer, norm_first=True).

    Attributes:
        num_blocks: Transformer blocks.
        num_heads: Attention heads.
        mlp_multiplier: MLP hidden width / slot dim (ReLU).
        attention_logit_scale: "sqrt_head_dim" (the authors' predictor, see
            `ssync_jax.models.layers.MultiHeadSelfAttention`) or "rsqrt_head_dim" (standard).
        init_scheme: Parameter initialisation, "torch" or "flax" (`ssync_jax.models.layers`).
        dtype: Computation dtype.
    """

    num_blocks: int = 1
    num_heads: int = 4
    mlp_multiplier: int = 4
    attention_logit_scale: str = "sqrt_head_dim"
    init_scheme: str = "torch"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, slots: jax.Array) -> jax.Array:
        """Args: slots [B, S, D]. Returns: predicted slots [B, S, D]."""
        slot_dim = slots.shape[-1]
        hidden = self.mlp_multiplier * slot_dim
        for i in range(self.num_blocks):
            y = nn.LayerNorm(epsilon=TORCH_LAYER_NORM_EPS, dtype=self.dtype, name=f"block_{i}_norm1")(slots)
            attention = MultiHeadSelfAttention(
                self.num_heads, self.attention_logit_scale, self.init_scheme, dtype=self.dtype, name=f"block_{i}_attn"
            )
            slots = slots + attention(y)
            y = nn.LayerNorm(epsilon=TORCH_LAYER_NORM_EPS, dtype=self.dtype, name=f"block_{i}_norm2")(slots)
            y = nn.relu(Dense(hidden, self.init_scheme, dtype=self.dtype, name=f"block_{i}_linear1")(y))
            slots = slots + Dense(slot_dim, self.init_scheme, dtype=self.dtype, name=f"block_{i}_linear2")(y)
        return slots
