"""DINOv2 ViT (timm/Hugging Face layout) returning the last block's patch tokens before the final norm.

These are the `vit_block12` features of the SSync/VideoSAUR code: the slot encoder's input and the
decoder's reconstruction target. Load pretrained weights with

    from ssync_jax.models import dinov2_weights
    model, params = dinov2_weights.from_pretrained("facebook/dinov2-small", image_size=336)
    features = model.apply({"params": params}, images)  # [B, 576, 384]

`images` are ImageNet-normalised [B, H, W, 3] with H and W multiples of 14. The final LayerNorm is
not part of the module (its output is never used), which is why ViT-S/14 has 22,055,424 parameters.
"""

from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from ssync_jax.models.layers import Dense, MultiHeadSelfAttention

DINOV2_LAYER_NORM_EPS = 1e-6

# (embed_dim, depth, num_heads) of the released DINOv2 backbones; all use 14-pixel patches and a
# 37x37 pretrained position grid (518-pixel images).
VARIANTS = {
    "vit_s14": (384, 12, 6),
    "vit_b14": (768, 12, 12),
    "vit_l14": (1024, 24, 16),
}


def resize_position_embedding(pos_embed: jax.Array, grid: tuple[int, int], pretrained_grid: int) -> jax.Array:
    """Resizes absolute position embeddings to a new patch grid, as timm's dynamic_img_size does.

    timm interpolates the patch part bicubically with antialiasing (PyTorch's antialiased bicubic uses
    the a=-0.5 kernel, which is jax.image.resize's); the class token's embedding is kept.

    Args:
        pos_embed: [1, 1 + G*G, D] embeddings for the class token and the pretrained G x G grid.
        grid: (h, w) patch grid of the current input.
        pretrained_grid: G.

    Returns:
        [1, 1 + h*w, D] embeddings.
    """
    if tuple(grid) == (pretrained_grid, pretrained_grid):
        return pos_embed
    width = pos_embed.shape[-1]
    cls_pos, patch_pos = pos_embed[:, :1], pos_embed[:, 1:]  # [1, 1, D], [1, G*G, D]
    patch_pos = patch_pos.reshape(1, pretrained_grid, pretrained_grid, width).astype(jnp.float32)
    patch_pos = jax.image.resize(patch_pos, (1, *grid, width), method="bicubic", antialias=True)  # [1, h, w, D]
    patch_pos = patch_pos.reshape(1, grid[0] * grid[1], width).astype(pos_embed.dtype)
    return jnp.concatenate([cls_pos, patch_pos], axis=1)


class LayerScale(nn.Module):
    """Per-channel learned scale of a residual branch (DINOv2's `ls1`/`ls2`)."""

    init_value: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x [..., D]. Returns: [..., D]."""
        gamma = self.param("gamma", nn.initializers.constant(self.init_value), (x.shape[-1],))
        return x * gamma.astype(x.dtype)


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale and an exact-GELU MLP."""

    num_heads: int
    mlp_ratio: float = 4.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x [B, L, D]. Returns: [B, L, D]."""
        width = x.shape[-1]
        y = nn.LayerNorm(epsilon=DINOV2_LAYER_NORM_EPS, dtype=self.dtype, name="norm1")(x)
        y = MultiHeadSelfAttention(self.num_heads, dtype=self.dtype, name="attn")(y)
        x = x + LayerScale(name="ls1")(y)
        y = nn.LayerNorm(epsilon=DINOV2_LAYER_NORM_EPS, dtype=self.dtype, name="norm2")(x)
        y = Dense(int(width * self.mlp_ratio), dtype=self.dtype, name="fc1")(y)
        y = Dense(width, dtype=self.dtype, name="fc2")(nn.gelu(y, approximate=False))
        return x + LayerScale(name="ls2")(y)


class DinoV2ViT(nn.Module):
    """DINOv2 vision transformer up to the last block (no final norm, no register tokens).

    Attributes:
        embed_dim: Token width D.
        depth: Number of blocks.
        num_heads: Attention heads per block.
        patch_size: Patch side in pixels.
        pretrained_grid: Side G of the G x G grid the position embeddings were trained at.
        mlp_ratio: MLP hidden width / D.
        dtype: Computation dtype (under bfloat16 the products accumulate in float32: `layers.Dense`).
    """

    embed_dim: int = 384
    depth: int = 12
    num_heads: int = 6
    patch_size: int = 14
    pretrained_grid: int = 37
    mlp_ratio: float = 4.0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        """Args: images [B, H, W, 3], ImageNet-normalised, H and W multiples of patch_size.

        Returns:
            [B, (H/p)*(W/p), D] patch tokens of the last block, row-major over the patch grid.
        """
        batch, height, width, _ = images.shape
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"DINOv2 input size {height}x{width} is not a multiple of the patch size {self.patch_size}; "
                "resize the frames (config.data.image_size) to a multiple of it, e.g. 224 or 336"
            )
        grid = (height // self.patch_size, width // self.patch_size)
        x = nn.Conv(
            self.embed_dim,
            (self.patch_size, self.patch_size),
            strides=(self.patch_size, self.patch_size),
            padding="VALID",
            dtype=self.dtype,
            name="patch_embed",
        )(images)  # [B, h, w, D]
        x = x.reshape(batch, grid[0] * grid[1], self.embed_dim)  # [B, N, D]
        cls_token = self.param("cls_token", nn.initializers.normal(1e-6), (1, 1, self.embed_dim))
        pos_embed = self.param(
            "pos_embed", nn.initializers.normal(0.02), (1, 1 + self.pretrained_grid**2, self.embed_dim)
        )
        cls_tokens = jnp.broadcast_to(cls_token, (batch, 1, self.embed_dim)).astype(x.dtype)  # [B, 1, D]
        x = jnp.concatenate([cls_tokens, x], axis=1)  # [B, 1 + N, D]
        x = x + resize_position_embedding(pos_embed, grid, self.pretrained_grid).astype(x.dtype)
        for i in range(self.depth):
            x = Block(self.num_heads, self.mlp_ratio, dtype=self.dtype, name=f"block_{i}")(x)
        return x[:, 1:]  # [B, N, D]
