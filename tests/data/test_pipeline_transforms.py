"""Per-example transforms of the input pipeline, checked against jax.image.resize and by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssync_jax.data import transforms


def _jax_bicubic(video: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Independent reference: jax's bicubic (Keys a=-0.5, antialiased) on [0, 1], unclamped."""
    frames, _, _, channels = video.shape
    shape = (frames, *size, channels)
    return np.asarray(
        jax.image.resize(jnp.asarray(video, jnp.float32) / 255.0, shape, "bicubic", antialias=True)
    )


@pytest.mark.parametrize("size", [(13, 10), (3, 5)], ids=["upsample", "downsample"])
def test_bicubic_resize_matches_jax_image_resize(size):
    video = np.random.default_rng(0).integers(0, 256, (2, 8, 7, 3), dtype=np.uint8)
    ours = transforms.resize_bicubic(video, size)
    expected = np.clip(_jax_bicubic(video, size), 0.0, 1.0)
    assert ours.shape == (2, *size, 3) and ours.dtype == np.float32
    # PIL and XLA both compute in float32 but sum the taps in different orders: 2e-5 is 1/200 of a
    # grey level, far below any kernel or centring mismatch (those differ by whole grey levels).
    np.testing.assert_allclose(ours, expected, atol=2e-5)


def test_bicubic_resize_clamps_overshoot_to_unit_interval():
    checkerboard = (np.indices((6, 6)).sum(0) % 2 * 255).astype(np.uint8)  # [6, 6]
    video = np.repeat(checkerboard[None, :, :, None], 3, axis=-1)  # [1, 6, 6, 3]
    unclamped = _jax_bicubic(video, (15, 15))
    assert unclamped.min() < -0.05 and unclamped.max() > 1.05  # The input really overshoots.
    ours = transforms.resize_bicubic(video, (15, 15))
    assert ours.min() == 0.0 and ours.max() == 1.0
    np.testing.assert_allclose(ours, np.clip(unclamped, 0.0, 1.0), atol=2e-5)


def test_bicubic_resize_to_the_same_size_is_exact():
    video = np.random.default_rng(1).integers(0, 256, (2, 5, 4, 3), dtype=np.uint8)
    np.testing.assert_array_equal(transforms.resize_bicubic(video, (5, 4)), video / np.float32(255))


@pytest.mark.parametrize("size", [(9, 14), (3, 2), (5, 5)])
def test_nearest_resize_matches_jax_and_keeps_only_source_ids(size):
    ids = np.random.default_rng(2).choice([0, 3, 7, 200], size=(2, 6, 5))  # [T, h, w]
    ours = transforms.resize_nearest(ids.astype(np.uint8), size)
    expected = jax.image.resize(jnp.asarray(ids, jnp.float32), (2, *size), "nearest")
    np.testing.assert_array_equal(ours, np.asarray(expected).astype(np.uint8))
    assert set(np.unique(ours)) <= {0, 3, 7, 200}


def test_nearest_resize_halving_takes_the_pixel_right_of_each_pair_centre():
    row = np.arange(8, dtype=np.uint8)[None, None, :]  # [1, 1, 8]
    # Output pixel j covers input [2j, 2j + 2); its centre 2j + 1 falls on pixel 2j + 1.
    np.testing.assert_array_equal(transforms.resize_nearest(row, (1, 4))[0, 0], [1, 3, 5, 7])


def test_decode_quantized_inverts_kubric_quantization():
    quantized = np.array([0, 65535, 32768, 13107], np.uint16)
    decoded = transforms.decode_quantized(quantized, np.array([1.0, 3.0], np.float32))
    np.testing.assert_allclose(decoded, [1.0, 3.0, 1.0 + 2.0 * 32768 / 65535, 1.4], rtol=1e-6)
    assert decoded.dtype == np.float32


def test_decode_quantized_constant_field_is_its_value():
    decoded = transforms.decode_quantized(np.zeros((2, 2), np.uint16), [2.5, 2.5])
    np.testing.assert_array_equal(decoded, np.full((2, 2), 2.5, np.float32))


def test_flow_resize_rescales_displacements_to_output_pixels():
    flow = np.broadcast_to(np.array([1.0, 2.0], np.float32), (1, 4, 4, 2))  # (d_row, d_col)
    resized = transforms.resize_flow(flow, (8, 2))  # Rows doubled, columns halved.
    np.testing.assert_array_equal(resized, np.broadcast_to([2.0, 1.0], (1, 8, 2, 2)))


def test_flow_flip_reverses_columns_and_negates_d_col_only():
    flow = np.zeros((1, 1, 3, 2), np.float32)
    flow[0, 0, :, 0] = [5, 6, 7]  # d_row
    flow[0, 0, :, 1] = [1, 2, 3]  # d_col
    flipped = transforms.flip_flow_horizontal(flow)
    np.testing.assert_array_equal(flipped[0, 0, :, 0], [7, 6, 5])
    np.testing.assert_array_equal(flipped[0, 0, :, 1], [-3, -2, -1])


def test_normalizations_follow_their_formulas():
    video = np.array([0.0, 0.2, 1.0], np.float32)[:, None] * np.ones(3, np.float32)  # [3, 3]
    np.testing.assert_allclose(transforms.normalize(video, "zero_one"), video)
    np.testing.assert_allclose(
        transforms.normalize(video, "minus_one_one"), [[-1.0] * 3, [-0.6] * 3, [1.0] * 3], atol=1e-6
    )
    imagenet = transforms.normalize(video, "imagenet")
    black = [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]
    white = [0.515 / 0.229, 0.544 / 0.224, 0.594 / 0.225]
    np.testing.assert_allclose(imagenet[0], black, rtol=1e-6)
    np.testing.assert_allclose(imagenet[2], white, rtol=1e-6)


def test_unknown_normalization_names_the_choices():
    with pytest.raises(ValueError, match="minus_one_one"):
        transforms.normalize(np.zeros((1, 3), np.float32), "imagenet_inception")


def test_chunk_starts_are_window_starts_and_every_window_occurs():
    rng = np.random.default_rng(3)
    starts = {transforms.aligned_chunk_start(24, 4, rng) for _ in range(200)}
    assert starts == {0, 4, 8, 12, 16, 20}
    # 10 does not divide 24: frames 20..23 are never part of a chunk.
    assert {transforms.aligned_chunk_start(24, 10, rng) for _ in range(100)} == {0, 10}


def test_chunk_longer_than_video_is_rejected():
    with pytest.raises(ValueError, match="chunk_length=30"):
        transforms.aligned_chunk_start(24, 30, np.random.default_rng(0))
