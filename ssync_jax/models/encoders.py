"""Per-frame encoders: a backbone (frozen DINOv2 ViT, SAVi CNN or ResNet-34) and the output transform."""

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import linen as nn

from ssync_jax.models.layers import MLP, Dense

TOKEN_NORMS = ("none", "layernorm")
# DINOv2's final LayerNorm's epsilon, so that "layernorm" tokens are scaled as DINOv2's.
TOKEN_NORM_EPSILON = 1e-6


class SaviCNN(nn.Module):
    """SAVi's plain CNN: 5x5 convolutions with ReLU between them (none after the last).

    SAVi-S: 4 x 32 channels, all stride 1, at 64²; SAVi-M: 64 channels, first stride 2, at 128².

    Attributes:
        features: Channels per layer.
        strides: Stride per layer.
        kernel_size: Square kernel side.
        dtype: Computation dtype.
    """

    features: Sequence[int] = (32, 32, 32, 32)
    strides: Sequence[int] = (1, 1, 1, 1)
    kernel_size: int = 5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        """Args: images [B, H, W, 3]. Returns: feature map [B, h, w, C]."""
        x = images
        for i, (width, stride) in enumerate(zip(self.features, self.strides, strict=True)):
            conv = nn.Conv(width, (self.kernel_size,) * 2, strides=stride, dtype=self.dtype, name=f"conv_{i}")
            x = conv(x)  # [B, h, w, C]
            if i < len(self.features) - 1:
                x = nn.relu(x)
        return x


class ResidualBlock(nn.Module):
    """ResNet basic block (two 3x3 convolutions) with GroupNorm, as in SAVi-L's ResNet-34."""

    features: int
    stride: int = 1
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Args: x [B, H, W, C_in]. Returns: [B, H/stride, W/stride, features]."""
        residual = x
        y = nn.Conv(self.features, (3, 3), self.stride, use_bias=False, dtype=self.dtype, name="conv1")(x)
        y = nn.relu(nn.GroupNorm(32, dtype=self.dtype, name="norm1")(y))
        y = nn.Conv(self.features, (3, 3), use_bias=False, dtype=self.dtype, name="conv2")(y)
        y = nn.GroupNorm(32, dtype=self.dtype, name="norm2")(y)
        if residual.shape != y.shape:
            residual = nn.Conv(self.features, (1, 1), self.stride, use_bias=False, dtype=self.dtype, name="proj")(x)
            residual = nn.GroupNorm(32, dtype=self.dtype, name="proj_norm")(residual)
        return nn.relu(y + residual)


class ResNet34(nn.Module):
    """ResNet-34 for small inputs (SAVi-L): 3x3 stride-1 stem, no max-pool, overall stride 8.

    Attributes:
        stage_sizes: Blocks per stage.
        width: Channels of the first stage (doubled per stage).
        dtype: Computation dtype.
    """

    stage_sizes: Sequence[int] = (3, 4, 6, 3)
    width: int = 64
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        """Args: images [B, H, W, 3]. Returns: feature map [B, H/8, W/8, 8·width]."""
        x = nn.Conv(self.width, (3, 3), use_bias=False, dtype=self.dtype, name="stem")(images)
        x = nn.relu(nn.GroupNorm(32, dtype=self.dtype, name="stem_norm")(x))
        for stage, num_blocks in enumerate(self.stage_sizes):
            for block in range(num_blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                x = ResidualBlock(self.width * 2**stage, stride, self.dtype, name=f"stage_{stage}_block_{block}")(x)
        return x


class GridPositionEmbedding(nn.Module):
    """SAVi's position embedding for CNN maps: a learned projection of [-1, 1] (y, x) coordinates, added."""

    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, feature_map: jax.Array) -> jax.Array:
        """Args: feature_map [B, h, w, C]. Returns: [B, h, w, C]."""
        _, height, width, channels = feature_map.shape
        ys, xs = jnp.meshgrid(jnp.linspace(-1.0, 1.0, height), jnp.linspace(-1.0, 1.0, width), indexing="ij")
        grid = jnp.stack([ys, xs], axis=-1)  # [h, w, 2]
        return feature_map + Dense(channels, dtype=self.dtype, name="dense")(grid)


class FrameEncoder(nn.Module):
    """Backbone features of each frame, then the output transform to the slot input width.

    Frames are folded into the batch (one big call is faster than a map over time on every backend).

    Attributes:
        backbone: Maps [B, H, W, 3] to tokens [B, N, C] (ViT) or a map [B, h, w, C] (CNN).
        output_size: Width of the transformed features (the slot dim).
        freeze_backbone: Stop gradients into the backbone (frozen DINOv2).
        token_norm: "none", or "layernorm": each backbone token standardised over its channels
            (zero mean, unit variance, no learned scale or offset), as DINOv2's tokens come out of
            its final LayerNorm; what the slots read and, for feature targets, what the decoder
            reconstructs (so a CNN's tokens meet the reconstruction loss at DINOv2's scale).
        position_embedding: Add `GridPositionEmbedding` to CNN maps before flattening.
        init_scheme: Initialisation of the output transform, "torch" or "flax" (`ssync_jax.models.layers`).
        dtype: Computation dtype of the output transform.
    """

    backbone: nn.Module
    output_size: int
    freeze_backbone: bool = False
    token_norm: str = "none"
    position_embedding: bool = False
    init_scheme: str = "flax"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, video: jax.Array | None = None, tokens: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        """Args (exactly one of them):
            video: [B, T, H, W, 3] frames.
            tokens: [B, T, N, C] the frozen backbone's tokens of the frames, extracted beforehand
                (`ssync_jax.tools.extract_features`); the backbone is skipped.

        Returns:
            features [B, T, N, output_size] for the corrector, and the backbone's tokens [B, T, N, C]
            (float32, after `token_norm`, before any position embedding; the target of
            feature-reconstruction models, which no gradient flows back through).
        """
        if (video is None) == (tokens is None):
            raise ValueError("FrameEncoder takes either video or pre-extracted tokens, not both or neither.")
        if tokens is None:
            batch, frames = video.shape[:2]
            tokens = self.backbone(video.reshape(batch * frames, *video.shape[2:]))  # [B*T, N, C] or [B*T, h, w, C]
        else:
            if not self.freeze_backbone:
                raise ValueError(
                    "Pre-extracted tokens stand in for a frozen backbone only; set "
                    "config.model.encoder.freeze_backbone=True or train on video."
                )
            batch, frames = tokens.shape[:2]
            tokens = tokens.reshape(batch * frames, *tokens.shape[2:])  # [B*T, N, C]
        if self.freeze_backbone:
            tokens = jax.lax.stop_gradient(tokens)
        tokens = tokens.astype(jnp.float32)
        if self.token_norm == "layernorm":
            tokens = nn.LayerNorm(TOKEN_NORM_EPSILON, use_bias=False, use_scale=False, name="token_norm")(tokens)
        elif self.token_norm != "none":
            raise ValueError(f"token_norm={self.token_norm!r} is unknown; choose one of {TOKEN_NORMS}")
        # A target, not a path to train the backbone by: moving the target to meet the decoder would
        # be a trivial way down for the reconstruction loss.
        target = jax.lax.stop_gradient(tokens.reshape(batch, frames, -1, tokens.shape[-1]))  # [B, T, N, C]
        if tokens.ndim == 4 and self.position_embedding:
            tokens = GridPositionEmbedding(dtype=self.dtype, name="position_embedding")(tokens)
        tokens = tokens.reshape(batch * frames, -1, tokens.shape[-1])  # [B*T, N, C]
        features = MLP(
            (2 * tokens.shape[-1],),
            self.output_size,
            input_norm=True,
            init_scheme=self.init_scheme,
            dtype=self.dtype,
            name="output_transform",
        )(tokens)  # [B*T, N, D]
        return features.reshape(batch, frames, *features.shape[1:]), target
