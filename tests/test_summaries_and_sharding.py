"""TensorBoard images and scalar averaging; where parameters are placed on the `data` mesh."""

import jax
import numpy as np
from jax.sharding import PartitionSpec

from ssync_jax import sharding, summaries


def test_a_dispatch_sums_each_named_scalar_over_its_steps_and_notes_the_first_non_finite_one():
    from ssync_jax import train_state

    def fake_step(state, batch):  # The update counts steps; the scalars come from the batch.
        return state.replace(step=state.step + 1), {"loss/total": batch["x"], "ssync/merged_slots": 2.0 * batch["x"]}

    dispatch = jax.jit(train_state.make_dispatch(fake_step))
    state = train_state.TrainState(np.int32(0), {}, {}, np.zeros(2, np.uint32))
    sums = train_state.ScalarSums.zeros(["loss/total", "ssync/merged_slots"])
    state, sums, _ = dispatch(state, sums, {"x": np.array([1.0, 3.0], np.float32)})
    state, sums, done = dispatch(state, sums, {"x": np.array([5.0], np.float32)})
    assert int(state.step) == int(done) == 3 and int(sums.count) == 3 and int(sums.first_nonfinite) == -1
    assert sums.averages() == {"loss/total": 3.0, "ssync/merged_slots": 6.0}
    _, sums, _ = dispatch(state, sums, {"x": np.array([2.0, np.inf, np.nan], np.float32)})
    assert int(sums.first_nonfinite) == 5  # After step 5's update: the step that saw the inf.


def test_images_put_frames_side_by_side_and_tint_each_slot_differently():
    video = np.zeros((2, 4, 4, 3), np.float32)
    video[1] = 1.0  # Second frame white, so the display stretch maps frame 0 to 0 and frame 1 to 1.
    ids = np.zeros((2, 2, 2), np.int32)
    ids[:, :, 1] = 1  # Right half of every frame: slot 1 (on a 2x2 grid, upsampled to 4x4).
    images = summaries.image_summaries(video, ids, ids, None)
    assert sorted(images) == ["images/decoder_masks", "images/encoder_attention", "images/input"]
    np.testing.assert_array_equal(images["images/input"][0, :, :4], 0.0)
    np.testing.assert_array_equal(images["images/input"][0, :, 4:], 1.0)
    masks = images["images/decoder_masks"][0]  # [4, 8, 3]
    assert masks.shape == (4, 8, 3)
    np.testing.assert_allclose(masks[0, 0], 0.6 * summaries.PALETTE[0])
    np.testing.assert_allclose(masks[0, 3], 0.6 * summaries.PALETTE[1])
    np.testing.assert_allclose(masks[0, 7], 0.4 + 0.6 * summaries.PALETTE[1])


def test_ssync_images_outline_the_selected_patches():
    video = np.zeros((1, 6, 6, 3), np.float32)
    labels = np.zeros((1, 6, 6), np.int32)
    selected = np.zeros((1, 6, 6), bool)
    selected[0, 1:5, 1:5] = True  # A 4x4 block: its 12 border pixels are drawn, the inner 2x2 not.
    targets = {"enc_labels": labels, "dec_labels": labels, "boundary_mask": selected, "interior_mask": selected}
    images = summaries.image_summaries(video, labels, labels, targets)
    boundary = images["images/ssync_encoder_labels_boundary"][0]
    white = np.all(boundary == 1.0, axis=-1)
    expected = selected[0].copy()
    expected[2:4, 2:4] = False
    np.testing.assert_array_equal(white, expected)
    interior = images["images/ssync_decoder_labels_interior"][0]
    np.testing.assert_array_equal(np.all(interior == 0.0, axis=-1), expected)


def test_shard_params_splits_the_largest_divisible_axis_of_large_arrays_only():
    mesh = sharding.make_mesh()
    devices = mesh.shape[sharding.DATA_AXIS]
    abstract = {
        "big": jax.ShapeDtypeStruct((devices * 512, 384), np.float32),
        "small": jax.ShapeDtypeStruct((devices * 4,), np.float32),
    }
    sharded = sharding.state_shardings(abstract, mesh, shard_params=True)
    expected_big = PartitionSpec("data", None) if devices > 1 else PartitionSpec()
    assert sharded["big"].spec == expected_big
    assert sharded["small"].spec == PartitionSpec()
    replicated = sharding.state_shardings(abstract, mesh, shard_params=False)
    assert replicated["big"].spec == PartitionSpec()


def test_param_spec_picks_the_largest_axis_the_device_count_divides():
    assert sharding._param_spec((384, 4096), 8) == PartitionSpec(None, "data")
    assert sharding._param_spec((4096, 384), 8) == PartitionSpec("data", None)
    assert sharding._param_spec((4099, 384), 8) == PartitionSpec(None, "data")
    assert sharding._param_spec((4099, 383), 8) == PartitionSpec()
