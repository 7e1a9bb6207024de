"""A pixel decoder on the encoder grid: reconstructing p x p patches instead of full-resolution frames."""

import jax
import numpy as np
import pytest

from ssync_jax.models import build_model
from ssync_jax.models.video import pixel_patches
from tests import tiny_train_config


def test_pixel_patches_holds_each_cells_pixels_in_row_major_order():
    video = np.arange(2 * 3 * 4 * 6 * 2).reshape(2, 3, 4, 6, 2)  # [B, T, H, W, C]
    patches = np.asarray(pixel_patches(video, 2))  # [2, 3, 2, 3, 8]
    assert patches.shape == (2, 3, 2, 3, 8)
    for clip in range(2):
        for frame in range(3):
            for row in range(2):
                for col in range(3):
                    expected = video[clip, frame, 2 * row : 2 * row + 2, 2 * col : 2 * col + 2].reshape(-1)
                    np.testing.assert_array_equal(patches[clip, frame, row, col], expected)


def test_pixel_patches_of_size_one_is_the_video_itself():
    video = np.random.default_rng(0).uniform(size=(2, 3, 4, 4, 3))
    np.testing.assert_array_equal(pixel_patches(video, 1), video)


def test_pixel_patches_rejects_frames_that_do_not_split_evenly():
    with pytest.raises(ValueError, match="10x8 do not split into 4x4"):
        pixel_patches(np.zeros((1, 1, 10, 8, 3)), 4)


def test_patch_decoder_reconstructs_patches_on_the_encoder_grid():
    config = tiny_train_config.get_config()
    config.model.decoder.resolution = (8, 8)  # The CNN's grid for 16x16 frames at stride 2.
    config.model.decoder.upsample = (False, False)
    config.model.decoder.patch_size = 2
    model = build_model(config.model)
    video = np.random.default_rng(0).uniform(size=(1, 2, 16, 16, 3)).astype(np.float32)
    outputs, _ = model.init_with_output(jax.random.key(0), video)
    assert outputs["reconstruction"].shape == (1, 2, 8, 8, 12)
    np.testing.assert_array_equal(outputs["target"], pixel_patches(video, 2))
    assert outputs["dec_logits"].shape[2:4] == (8, 8)
