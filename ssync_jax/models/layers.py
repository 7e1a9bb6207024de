"""Small building blocks shared by the encoders, corrector, predictor and decoders."""

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

# PyTorch's LayerNorm default; the slot modules follow the authors' PyTorch code.
TORCH_LAYER_NORM_EPS = 1e-5


class MLP(nn.Module):
    """Dense layers with ReLU between them, optionally preceded by a LayerNorm.

    Attributes:
        hidden_sizes: Widths of the hidden layers (ReLU after each).
        output_size: Width of the last (linear) layer.
        input_norm: Apply LayerNorm to the input first (SAVi/VideoSAUR "initial_layer_norm").
        dtype: Computation dtype.
    """

    hidden_sizes: Sequence[int]
    output_size: int
    input_norm: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x [..., D_in]. Returns: [..., output_size]."""
        if self.input_norm:
            x = nn.LayerNorm(epsilon=TORCH_LAYER_NORM_EPS, dtype=self.dtype, name="norm")(x)
        for i, width in enumerate(self.hidden_sizes):
            x = nn.relu(nn.Dense(width, dtype=self.dtype, name=f"dense_{i}")(x))
        return nn.Dense(self.output_size, dtype=self.dtype, name=f"dense_{len(self.hidden_sizes)}")(x)


class MultiHeadSelfAttention(nn.Module):
    """Self-attention with one fused q/k/v projection, laid out like timm's and torch's.

    The fused kernel's output axis is ordered (q|k|v, head, head_dim), so a PyTorch
    `qkv.weight` / `in_proj_weight` [3D, D] maps to our kernel by a plain transpose.

    Attributes:
        num_heads: Number of heads; the width must be divisible by it.
        dtype: Computation dtype (softmax runs in float32).
    """

    num_heads: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x [B, L, D]. Returns: [B, L, D]."""
        batch, length, width = x.shape
        if width % self.num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads={self.num_heads}")
        head_dim = width // self.num_heads
        qkv = nn.Dense(3 * width, dtype=self.dtype, name="qkv")(x)  # [B, L, 3D]
        qkv = qkv.reshape(batch, length, 3, self.num_heads, head_dim)  # [B, L, 3, H, Dh]
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # [B, L, H, Dh]
        logits = jnp.einsum("blhd,bmhd->bhlm", q, k) * head_dim**-0.5  # [B, H, L, L]
        weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(v.dtype)
        out = jnp.einsum("bhlm,bmhd->blhd", weights, v).reshape(batch, length, width)  # [B, L, D]
        return nn.Dense(width, dtype=self.dtype, name="proj")(out)
