"""Bring a decoder's alpha logits onto the encoder's patch grid before SSync pseudo-labelling.

A pixel decoder (SAVi's CNN decoder) predicts alpha logits at image resolution while slot
attention works on the encoder's patch grid; SSync compares the two maps patch by patch, so the
decoder map is area-averaged onto the encoder grid first.
"""

import jax
import jax.numpy as jnp
import numpy as np


def area_weights(source_size: int, target_size: int) -> np.ndarray:
    """w_ik = |[i·s/t, (i+1)·s/t) ∩ [k, k+1)| / (s/t): share of target cell i lying over source cell k.

    Args:
        source_size: s, number of source cells along the axis.
        target_size: t, number of target cells along the same extent.

    Returns:
        `[t, s]` float32 weights; every row sums to 1.
    """
    if source_size < 1 or target_size < 1:
        raise ValueError(f"grid sizes must be positive, got {source_size} -> {target_size}.")
    cell = source_size / target_size
    starts = np.arange(target_size)[:, None] * cell  # [t, 1]
    source_cells = np.arange(source_size)[None, :]  # [1, s]
    ends = np.minimum(starts + cell, source_cells + 1)  # [t, s]
    overlap = ends - np.maximum(starts, source_cells)  # [t, s]
    return (np.clip(overlap, 0.0, None) / cell).astype(np.float32)


def area_resample_to_grid(logits: jax.Array, grid_shape: tuple[int, int]) -> jax.Array:
    """out_ij = Σ_kl w_ik w_jl logits_kl: the area average of a [Hd, Wd] map over an [H, W] grid.

    When Hd/H and Wd/W are integers this is the plain mean of each (Hd/H)×(Wd/W) block. Otherwise
    each output cell averages the source cells it overlaps, weighted by the overlapped area (like
    OpenCV's INTER_AREA), which is still the exact area average of the map read as piecewise
    constant over its cells. Upsampling (Hd < H) repeats source values, weighted where an output
    cell straddles two source cells.

    Args:
        logits: `[B, T, Hd, Wd, S]` decoder alpha logits on the decoder's grid.
        grid_shape: (H, W), the encoder's patch grid.

    Returns:
        `[B, T, H, W, S]` logits on the encoder grid (float32, gradient flows through).
    """
    if logits.ndim != 5:
        raise ValueError(
            f"logits must be [B, T, Hd, Wd, S], got shape {logits.shape}; reshape flat decoder "
            "maps [B, T, Hd*Wd, S] to their grid first."
        )
    height, width = grid_shape
    row_weights = jnp.asarray(area_weights(logits.shape[2], height))  # [H, Hd]
    col_weights = jnp.asarray(area_weights(logits.shape[3], width))  # [W, Wd]
    # Full precision: on TPU the default bf16 matmul would blur logits that feed a loss.
    return jnp.einsum(
        "ik,jl,btkls->btijs",
        row_weights,
        col_weights,
        logits.astype(jnp.float32),
        precision=jax.lax.Precision.HIGHEST,
    )  # [B, T, H, W, S]


def maps_on_encoder_grid(enc_logits: jax.Array, dec_logits: jax.Array) -> tuple[jax.Array, jax.Array, tuple[int, int]]:
    """The encoder's and the decoder's maps patch by patch, as SSync compares them.

    Args:
        enc_logits: `[B, T, H, W, S]` slot-attention logits on the encoder's patch grid.
        dec_logits: `[B, T, Hd, Wd, S]` decoder alpha logits on the decoder's grid (area-averaged
            onto the encoder's when the grids differ).

    Returns:
        enc_logits and dec_logits flattened to `[B, T, H*W, S]`, and (H, W).
    """
    if enc_logits.ndim != 5 or dec_logits.ndim != 5:
        raise ValueError(
            f"maps must be [B, T, H, W, S] on their grids, got {enc_logits.shape} and {dec_logits.shape}."
        )
    grid = tuple(enc_logits.shape[2:4])
    if tuple(dec_logits.shape[2:4]) != grid:
        dec_logits = area_resample_to_grid(dec_logits, grid)  # [B, T, H, W, S]
    flat = (*enc_logits.shape[:2], grid[0] * grid[1], enc_logits.shape[-1])
    return enc_logits.reshape(flat), dec_logits.reshape(flat), grid
