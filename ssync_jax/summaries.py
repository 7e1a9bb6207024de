"""What goes to TensorBoard besides the train step's scalars (averaged on the devices between two
writes, `ssync_jax.train_state.ScalarSums`): images of masks and SSync labels, and the hparams.

Images show the first example of a batch, its frames side by
side: the input, the decoder's and the encoder's slot masks, and the merged SSync pseudo-labels
with the patches each loss uses outlined (white: boundary patches, where the encoder teaches the
decoder; black: interior patches, where the decoder teaches the encoder).
"""

from collections.abc import Mapping
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ssync_jax.objectives import ssync

# Distinct colours for up to 24 slots (repeats beyond), RGB in [0, 1].
PALETTE = np.array(
    [
        [0.90, 0.10, 0.29], [0.24, 0.71, 0.29], [1.00, 0.88, 0.10], [0.00, 0.51, 0.78],
        [0.96, 0.51, 0.19], [0.57, 0.12, 0.71], [0.27, 0.94, 0.94], [0.94, 0.20, 0.90],
        [0.82, 0.96, 0.24], [0.98, 0.75, 0.83], [0.00, 0.50, 0.50], [0.86, 0.75, 1.00],
        [0.67, 0.43, 0.16], [1.00, 0.98, 0.78], [0.50, 0.00, 0.00], [0.67, 1.00, 0.76],
        [0.50, 0.50, 0.00], [1.00, 0.84, 0.71], [0.00, 0.00, 0.50], [0.50, 0.50, 0.50],
        [0.40, 0.20, 0.60], [0.20, 0.60, 0.40], [0.60, 0.40, 0.20], [0.20, 0.40, 0.60],
    ],
    np.float32,
)  # fmt: skip
_MASK_OPACITY = 0.6
SSYNC_PANELS = ("enc_labels", "dec_labels", "boundary_mask", "interior_mask")


def _display(video: np.ndarray) -> np.ndarray:
    """Frames [T, H, W, 3] in any normalisation -> [0, 1], stretched per video."""
    low, high = video.min(), video.max()
    return (video - low) / max(high - low, 1e-6)


def upsample_nearest(grid: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[T, h, w, ...] -> [T, H, W, ...] by repeating each cell (H, W multiples of h, w or not)."""
    rows = np.arange(size[0]) * grid.shape[1] // size[0]
    cols = np.arange(size[1]) * grid.shape[2] // size[1]
    return grid[:, rows][:, :, cols]


def overlay(frames: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Frames [T, H, W, 3] in [0, 1] tinted by the colour of each pixel's id [T, H, W]."""
    colours = PALETTE[ids % len(PALETTE)]  # [T, H, W, 3]
    return (1 - _MASK_OPACITY) * frames + _MASK_OPACITY * colours


def _side_by_side(frames: np.ndarray) -> np.ndarray:
    """[T, H, W, 3] -> one image [1, H, T*W, 3] for TensorBoard."""
    return np.concatenate(list(frames), axis=1)[None]


def image_summaries(
    video: np.ndarray,
    dec_ids: np.ndarray,
    enc_ids: np.ndarray,
    pseudo_labels: Mapping[str, np.ndarray] | None,
) -> dict[str, np.ndarray]:
    """TensorBoard images of one example.

    Args:
        video: [T, H, W, 3] model input (any normalisation).
        dec_ids: [T, h, w] argmax of the decoder masks (any grid; upsampled by repetition).
        enc_ids: [T, h, w] argmax of the encoder attention.
        pseudo_labels: `enc_labels`, `dec_labels`, `boundary_mask`, `interior_mask`, each [T, h, w]
            (see `ssync_jax.objectives.ssync.PseudoLabels`), or None without SSync.

    Returns:
        {name: [1, H, T*W, 3] float image in [0, 1]}.
    """
    frames = _display(np.asarray(video, np.float32))
    size = frames.shape[1:3]
    images = {
        "images/input": frames,
        "images/decoder_masks": overlay(frames, upsample_nearest(dec_ids, size)),
        "images/encoder_attention": overlay(frames, upsample_nearest(enc_ids, size)),
    }
    if pseudo_labels is not None:
        for labels, mask, colour, name in (
            ("enc_labels", "boundary_mask", 1.0, "images/ssync_encoder_labels_boundary"),
            ("dec_labels", "interior_mask", 0.0, "images/ssync_decoder_labels_interior"),
        ):
            tinted = overlay(frames, upsample_nearest(pseudo_labels[labels], size))
            selected = upsample_nearest(pseudo_labels[mask], size)[..., None]  # [T, H, W, 1]
            images[name] = np.where(outline(selected), colour, tinted)
    return {name: _side_by_side(np.clip(image, 0.0, 1.0)) for name, image in images.items()}


def outline(mask: np.ndarray) -> np.ndarray:
    """The pixels of `mask` [T, H, W, 1] on the border of its regions, so the tint stays visible."""
    padded = np.pad(mask, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    inner = padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1] & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:]
    return mask & ~inner


def first_example_maps(outputs: Mapping[str, jax.Array], ssync_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The slot argmaxes (and SSync's pseudo-labels) of the first example of a chunk's outputs (jit-able).

    Args:
        outputs: the video model's outputs for a chunk, maps on their grids.
        ssync_config: `config.ssync` to add the merged pseudo-labels and selections; None: none.

    Returns:
        dec_ids [T, h', w'] (the decoder's grid) and enc_ids [T, h, w], int32; with `ssync_config`,
        "ssync": enc_labels, dec_labels, boundary_mask, interior_mask, each [T, h, w].
    """
    maps: dict[str, Any] = {
        "dec_ids": jnp.argmax(outputs["dec_masks"][0], -1).astype(jnp.int32),
        "enc_ids": jnp.argmax(outputs["enc_attn"][0], -1).astype(jnp.int32),
    }
    if ssync_config is not None:
        labels, _, _ = ssync.labels_of_maps(outputs["enc_logits"][:1], outputs["dec_logits"][:1], **ssync_config)
        maps["ssync"] = {name: getattr(labels, name)[0] for name in SSYNC_PANELS}
    return maps


def hparams(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """The config flattened to TensorBoard hparams ("model.num_slots": 11); sequences as strings."""
    flat = flax.traverse_util.flatten_dict(config.to_dict(), sep=".")
    return {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in flat.items()}
