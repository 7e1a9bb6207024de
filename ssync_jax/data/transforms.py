"""Per-example transforms of the input pipeline: decoding, chunks, resizing, flips, normalisation.

Everything here is numpy (plus PIL for bicubic resizing) and never touches jax, so grain worker
processes stay light. Arrays are per video: `[T, H, W, C]` with C channels, or `[T, H, W]` for ids.
"""

from typing import Sequence

import numpy as np
from PIL import Image

from ssync_jax import errors

NORMALIZATIONS = ("imagenet", "zero_one", "minus_one_one")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
# Per-channel (scale, offset) of each normalisation as x * scale + offset on [0, 1] RGB.
_AFFINE = {
    "imagenet": (1.0 / IMAGENET_STD, -IMAGENET_MEAN / IMAGENET_STD),
    "zero_one": (np.ones(3, np.float32), np.zeros(3, np.float32)),
    "minus_one_one": (np.full(3, 2.0, np.float32), np.full(3, -1.0, np.float32)),
}

_UINT16_MAX = 65535.0


def decode_quantized(quantized: np.ndarray, value_range: Sequence[float]) -> np.ndarray:
    """Kubric's uint16 depth/flow decoding: x = q / 65535 * (max - min) + min.

    A constant field is stored with max == min; the formula then gives min everywhere, so no
    division is involved and no guard is needed on this side.

    Args:
        quantized: uint16 array of any shape.
        value_range: the per-video (min, max) from `metadata/*_range`.

    Returns:
        float32 array of the same shape.
    """
    low, high = (float(v) for v in np.asarray(value_range, np.float64).reshape(2))
    scale = np.float32((high - low) / _UINT16_MAX)
    return quantized.astype(np.float32) * scale + np.float32(low)


def aligned_chunk_start(num_frames: int, chunk_length: int, rng: np.random.Generator) -> int:
    """First frame of a random chunk among the non-overlapping windows [0, L), [L, 2L), ... .

    Frames past the last whole window (when L does not divide the video) are never used.

    Args:
        num_frames: frames in the video.
        chunk_length: frames per chunk L.
        rng: the per-example generator.

    Returns:
        k * L for k uniform in [0, num_frames // L).
    """
    if not 1 <= chunk_length <= num_frames:
        raise errors.ConfigError(
            f"chunk_length={chunk_length} must be between 1 and the video's {num_frames} frames; "
            "set config.data.chunk_length accordingly."
        )
    return int(rng.integers(num_frames // chunk_length)) * chunk_length


BICUBIC_KERNELS = ("pil", "torch")


def resize_bicubic(video: np.ndarray, size: tuple[int, int], kernel: str = "pil") -> np.ndarray:
    """Bicubic resize of uint8 frames to floats in [0, 1], clamped (bicubic overshoots at edges).

    kernel="pil": PIL's float ("F") path: Keys cubic with a = -0.5, half-pixel centres, kernel
    widened when shrinking (antialiasing) and weights renormalised at the borders — the same
    definition as `jax.image.resize(method="bicubic", antialias=True)`. The uint8 PIL path is
    avoided because it rounds and clips between its horizontal and vertical passes.

    kernel="torch": PyTorch's `F.interpolate(mode="bicubic", align_corners=False)`, which the
    authors' transforms use: a = -0.75, half-pixel centres, no antialiasing, out-of-range taps
    repeat the edge pixel.

    Args:
        video: uint8 [T, h, w, C].
        size: output (H, W).
        kernel: "pil" or "torch".

    Returns:
        float32 [T, H, W, C] in [0, 1].
    """
    if kernel not in BICUBIC_KERNELS:
        raise errors.ConfigError(f"Unknown bicubic kernel {kernel!r}; set config.data.bicubic to one of {BICUBIC_KERNELS}.")
    num_frames, height, width, channels = video.shape
    if (height, width) == tuple(size):
        return video.astype(np.float32) / np.float32(255.0)
    out_height, out_width = size
    if kernel == "torch":
        rows, cols = _torch_bicubic_matrix(height, out_height), _torch_bicubic_matrix(width, out_width)
        resized = np.einsum("oh,thwc,pw->topc", rows, video.astype(np.float32), cols, optimize=True)
    else:
        resized = np.empty((num_frames, out_height, out_width, channels), np.float32)
        for t in range(num_frames):
            for c in range(channels):
                plane = Image.fromarray(video[t, :, :, c].astype(np.float32))
                resized[t, :, :, c] = np.asarray(plane.resize((out_width, out_height), Image.Resampling.BICUBIC))
    np.clip(resized, 0.0, 255.0, out=resized)
    resized *= np.float32(1.0 / 255.0)
    return resized


def _torch_bicubic_matrix(in_size: int, out_size: int, a: float = -0.75) -> np.ndarray:
    """[out, in] float32 weights of PyTorch's bicubic interpolation along one axis (align_corners=False).

    Output i reads the 4 inputs around s = (i + 0.5) in/out - 0.5 with the Keys weights of the
    distances 1 + t, t, 1 - t, 2 - t (t = s - floor(s)); indices outside [0, in) are clamped.
    Positions and weights are computed in float32, as PyTorch computes them for float32 frames.
    """
    scale = np.float32(in_size / out_size)
    source = scale * (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
    first = np.floor(source)
    t = source - first
    near = lambda x: ((a + 2) * x - (a + 3)) * x * x + 1  # noqa: E731  |x| <= 1
    far = lambda x: ((a * x - 5 * a) * x + 8 * a) * x - 4 * a  # noqa: E731  1 < |x| < 2
    weights = np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1).astype(np.float32)  # [out, 4]
    taps = np.clip(first[:, None].astype(np.int64) + np.arange(-1, 3), 0, in_size - 1)  # [out, 4]
    matrix = np.zeros((out_size, in_size), np.float32)
    np.add.at(matrix, (np.repeat(np.arange(out_size), 4), taps.ravel()), weights.ravel())
    return matrix


def nearest_indices(in_size: int, out_size: int) -> np.ndarray:
    """Source index of each output pixel for nearest-neighbour resizing with half-pixel centres.

    floor((i + 0.5) * in / out), in exact integer arithmetic so no pixel lands on the wrong side of
    a rounding boundary.

    Args:
        in_size: input length.
        out_size: output length.

    Returns:
        int64 [out_size] indices into [0, in_size).
    """
    return (2 * np.arange(out_size) + 1) * in_size // (2 * out_size)


def resize_nearest(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of the two spatial axes: ids, depths and flows are never blended.

    Args:
        frames: [T, h, w, ...] of any dtype.
        size: output (H, W).

    Returns:
        [T, H, W, ...] with values taken from `frames`.
    """
    height, width = frames.shape[1:3]
    if (height, width) == tuple(size):
        return frames
    rows = nearest_indices(height, size[0])
    cols = nearest_indices(width, size[1])
    return np.take(np.take(frames, rows, axis=1), cols, axis=2)


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of optical flow, rescaling the displacements to output pixels.

    Args:
        flow: float32 [T, h, w, 2] of (d_row, d_col) in input pixels.
        size: output (H, W).

    Returns:
        float32 [T, H, W, 2] of (d_row, d_col) in output pixels.
    """
    height, width = flow.shape[1:3]
    scale = np.array([size[0] / height, size[1] / width], np.float32)
    return resize_nearest(flow, size) * scale


def first_frame_boxes(ids: np.ndarray, num_boxes: int) -> np.ndarray:
    """Bounding boxes of the objects 1..num_boxes in the first frame: SAVi's conditioning signal.

    Row k - 1 is object k's box (y_min, x_min, y_max, x_max) as fractions of the frame, from its
    pixels' extent (pixel edges: a lone pixel at (i, j) of an h x w frame is (i/h, j/w, (i+1)/h,
    (j+1)/w)); all zeros where object k is not in the first frame. Ids above `num_boxes` are left out.

    Args:
        ids: int `[T, h, w]` segmentation ids, 0 the background.
        num_boxes: K, rows to return.

    Returns:
        float32 `[K, 4]`.
    """
    frame = ids[0]  # [h, w]
    height, width = frame.shape
    present = frame[None] == np.arange(1, num_boxes + 1)[:, None, None]  # [K, h, w]
    rows, cols = present.any(axis=2), present.any(axis=1)  # [K, h], [K, w]
    visible = rows.any(axis=1)  # [K]
    top, left = rows.argmax(axis=1), cols.argmax(axis=1)
    bottom = height - rows[:, ::-1].argmax(axis=1)
    right = width - cols[:, ::-1].argmax(axis=1)
    boxes = np.stack([top / height, left / width, bottom / height, right / width], axis=1)  # [K, 4]
    return np.where(visible[:, None], boxes, 0.0).astype(np.float32)


def flip_horizontal(frames: np.ndarray) -> np.ndarray:
    """Mirror the column axis of [T, H, W, ...] frames (a view)."""
    return frames[:, :, ::-1]


def flip_flow_horizontal(flow: np.ndarray) -> np.ndarray:
    """Mirror a (d_row, d_col) flow field: columns reversed and d_col negated.

    Args:
        flow: float32 [T, H, W, 2].

    Returns:
        float32 [T, H, W, 2].
    """
    return flip_horizontal(flow) * np.array([1.0, -1.0], np.float32)


def normalize(video: np.ndarray, normalization: str) -> np.ndarray:
    """Map [0, 1] RGB to the encoder's input range.

    "imagenet": (x - mean) / std with ImageNet statistics (DINO/ViT encoders); "zero_one": x;
    "minus_one_one": 2x - 1 (CNN encoders as in SAVi). Applied as x * scale + offset with the
    per-channel constants tiled along the row, which vectorises better than broadcasting over a
    trailing axis of 3.

    Args:
        video: float32 [..., W, 3] in [0, 1].
        normalization: one of NORMALIZATIONS.

    Returns:
        float32 [..., W, 3], always a new contiguous array.
    """
    if normalization not in _AFFINE:
        raise errors.ConfigError(
            f"Unknown normalization {normalization!r}; set config.data.normalization to one of "
            f"{NORMALIZATIONS}."
        )
    scale, offset = _AFFINE[normalization]
    width = video.shape[-2]
    rows = np.ascontiguousarray(video, np.float32).reshape(-1, width * 3)  # [..., W * 3]
    out = rows * np.tile(scale, width)
    out += np.tile(offset, width)
    return out.reshape(video.shape)
