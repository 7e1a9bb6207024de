"""What the evaluation reports beside the segmentation metrics: what the objective sees, per video,
checked on hand-made maps whose SSync selections are counted by hand."""

import jax
import numpy as np

from ssync_jax import evaluate

GRID = 6  # The encoder's grid; the decoder's is twice as fine (area-averaged onto it).
SETTINGS = dict(merge_iou_threshold=0.7, min_diff_boundary=1, min_same_boundary=1, max_diff_interior=1)


def logits_of(labels: np.ndarray, num_slots: int = 3) -> np.ndarray:
    """Peaked logits [..., S] whose argmax is `labels`: +5 on the label's slot, -5 elsewhere."""
    return np.where(np.arange(num_slots) == labels[..., None], 5.0, -5.0).astype(np.float32)


def test_selections_are_counted_on_training_length_clips_and_averaged_per_video():
    # Video 0: a 2x2 object (slot 1) on background (slot 0) in frames 0-1, background only in frames
    # 2-3; slot 2 duplicates slot 1 exactly (a redundant slot, merged where the object is seen).
    # Video 1: the same object in all four frames, slot 2 unused.
    labels = np.zeros((2, 4, GRID, GRID), np.int64)
    labels[0, :2, 1:3, 1:3] = 1
    labels[1, :, 1:3, 1:3] = 1
    enc = logits_of(labels)
    enc[0, ..., 2] = enc[0, ..., 1]
    dec = np.repeat(np.repeat(enc, 2, axis=2), 2, axis=3)  # [2, 4, 12, 12, 3]: the same map, finer.
    rng = np.random.default_rng(0)
    reconstruction = rng.normal(size=(2, 4, 12, 12, 12)).astype(np.float32)
    target = rng.normal(size=(2, 4, 12, 12, 12)).astype(np.float32)
    outputs = dict(enc_logits=enc, dec_logits=dec, reconstruction=reconstruction, target=target)

    got = jax.device_get(evaluate.objective_statistics(outputs, clip_length=2, ssync_settings=SETTINGS))

    # A frame with the object: the 16 patches whose 3x3 neighbourhood (edges replicated) touches it are
    # boundary patches, the 20 others interior; a frame of background alone: no boundary, all interior.
    with_object, without = (16 / 36, 20 / 36), (0.0, 1.0)
    # Clips of 2 frames: video 0 = one clip with the object, one without (no frame of one clip is a
    # neighbour of the other's); video 1 = two clips with it.
    np.testing.assert_allclose(got["ssync_boundary_fraction"], [(with_object[0] + without[0]) / 2, with_object[0]])
    np.testing.assert_allclose(got["ssync_interior_fraction"], [(with_object[1] + without[1]) / 2, with_object[1]])
    np.testing.assert_allclose(got["ssync_merged_slots"], [0.5, 0.0])  # Video 0: merged in 1 clip of 2.
    expected_mse = np.square(reconstruction - target).reshape(2, -1).mean(axis=1)
    np.testing.assert_allclose(got["reconstruction_mse"], expected_mse, rtol=1e-6)

    # Over the whole 4-frame chunk, frame 2 of video 0 would see the object in frame 1 (a temporal
    # neighbour): its 4 patches under the object would be boundary patches, not interior ones.
    whole = jax.device_get(evaluate.objective_statistics(outputs, clip_length=4, ssync_settings=SETTINGS))
    np.testing.assert_allclose(whole["ssync_boundary_fraction"][0], (16 + 16 + 4) / (4 * 36))


def test_a_model_without_its_target_reports_no_reconstruction_error():
    labels = np.zeros((1, 2, GRID, GRID), np.int64)
    outputs = dict(enc_logits=logits_of(labels), dec_logits=logits_of(labels), reconstruction=np.zeros((1, 2, 3)))
    got = jax.device_get(evaluate.objective_statistics(outputs, clip_length=2, ssync_settings=SETTINGS))
    assert np.isnan(got["reconstruction_mse"]).all()
    np.testing.assert_allclose(got["ssync_interior_fraction"], [1.0])


def test_map_entropy_is_a_fraction_of_log_s_per_position_averaged_per_video():
    # Video 0: every position's softmax is one-hot-like (entropy ~0); video 1: half the positions
    # uniform over the 4 slots (entropy log 4 = 1 after normalising), half two slots at 1/2 (log 2 = 0.5).
    logits = np.full((2, 1, 2, 2, 4), -30.0, np.float32)
    logits[0, ..., 1] = 30.0
    logits[1, :, 0] = 0.0
    logits[1, :, 1, :, :2] = 0.0
    np.testing.assert_allclose(jax.device_get(evaluate.map_entropy(logits)), [0.0, (1.0 + 0.5) / 2], atol=1e-6)
    np.testing.assert_array_equal(jax.device_get(evaluate.map_entropy(logits[..., :1])), [0.0, 0.0])  # One slot.


def test_slots_used_counts_each_frames_argmax_winners():
    labels = np.zeros((2, 2, GRID, GRID), np.int64)
    labels[0, 0, :3] = 2  # Frame 0 of video 0: slots 0 and 2; frame 1: slot 0 alone.
    labels[1, :, :, :2] = 1  # Video 1: slots 0 and 1 in both frames.
    got = jax.device_get(evaluate.slots_used(logits_of(labels)))
    np.testing.assert_array_equal(got, [1.5, 2.0])


def test_the_hard_reconstruction_error_is_reported_beside_the_soft_one():
    labels = np.zeros((1, 2, GRID, GRID), np.int64)
    rng = np.random.default_rng(1)
    target, soft, hard = (rng.normal(size=(1, 2, GRID * GRID, 5)).astype(np.float32) for _ in range(3))
    outputs = dict(enc_logits=logits_of(labels), dec_logits=logits_of(labels), reconstruction=soft,
                   hard_reconstruction=hard, target=target)
    got = jax.device_get(evaluate.objective_statistics(outputs, clip_length=2, ssync_settings=SETTINGS))
    np.testing.assert_allclose(got["reconstruction_mse"], [np.square(soft - target).mean()], rtol=1e-6)
    np.testing.assert_allclose(got["hard_reconstruction_mse"], [np.square(hard - target).mean()], rtol=1e-6)
    np.testing.assert_array_equal(got["dec_slots_used"], [1.0])
