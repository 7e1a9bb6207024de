"""The companions of SSync: reconstruction MSE, SlotContrast, the SRL baseline, decoder resampling."""

import itertools

import jax
import numpy as np
import pytest

from ssync_jax.objectives import reconstruction, resample, slot_contrast, srl

slot_contrast_loss = jax.jit(slot_contrast.slot_contrast_loss, static_argnums=(2,))
dense_alignment_loss = jax.jit(srl.dense_alignment_loss, static_argnums=(2,))
area_resample_to_grid = jax.jit(resample.area_resample_to_grid, static_argnums=(1,))


def _reference_slot_contrast(slots, temperature, batch_contrast):
    """Anchor-by-anchor cross-entropy with Python loops: each slot at t+1 picks its slot at t."""
    batch, frames, num_slots, _ = slots.shape
    unit = slots / np.linalg.norm(slots, axis=-1, keepdims=True)
    losses = []
    for t, b, s in itertools.product(range(frames - 1), range(batch), range(num_slots)):
        videos = range(batch) if batch_contrast else [b]
        candidates = [(v, k) for v in videos for k in range(num_slots)]
        logits = np.array([unit[b, t + 1, s] @ unit[v, t, k] / temperature for v, k in candidates])
        positive = logits[candidates.index((b, s))]
        losses.append(np.log(np.sum(np.exp(logits))) - positive)
    return np.mean(losses)


def _reference_dense_alignment(logits, partner_labels, group_size, temperature):
    """Patch-by-patch supervised InfoNCE inside each group of frames, with Python loops."""
    batch, frames, patches, _ = logits.shape
    maps = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    maps /= np.linalg.norm(maps, axis=-1, keepdims=True)
    losses = []
    for b, start in itertools.product(range(batch), range(0, frames, group_size)):
        members = maps[b, start : start + group_size].reshape(-1, maps.shape[-1])
        labels = partner_labels[b, start : start + group_size].reshape(-1)
        for p in range(len(members)):
            others = [q for q in range(len(members)) if q != p]
            similarity = {q: members[p] @ members[q] / temperature for q in others}
            log_normaliser = np.log(sum(np.exp(v) for v in similarity.values()))
            positives = [q for q in others if labels[q] == labels[p]]
            if positives:
                losses.append(-np.mean([similarity[q] - log_normaliser for q in positives]))
    return np.mean(losses) if losses else 0.0


def test_reconstruction_loss_is_the_mean_squared_error_over_all_elements():
    prediction = np.array([[1.0, 2.0], [3.0, 4.0]])
    target = np.array([[1.0, 0.0], [3.0, 0.0]])
    np.testing.assert_allclose(reconstruction.reconstruction_loss(prediction, target), (4 + 16) / 4)


def test_reconstruction_target_carries_no_gradient():
    grad = jax.grad(reconstruction.reconstruction_loss, argnums=1)(np.ones((2, 3)), np.zeros((2, 3)))
    np.testing.assert_array_equal(grad, 0.0)


def test_reconstruction_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="differs from target shape"):
        reconstruction.reconstruction_loss(np.zeros((2, 3)), np.zeros((2, 4)))


@pytest.mark.parametrize("batch_contrast", [True, False])
def test_slot_contrast_matches_an_anchor_by_anchor_reference(batch_contrast):
    slots = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32)
    expected = _reference_slot_contrast(slots, 0.1, batch_contrast)
    np.testing.assert_allclose(slot_contrast_loss(slots, 0.1, batch_contrast), expected, rtol=1e-5)


@pytest.mark.parametrize("batch_contrast, candidates", [(True, 2 * 3), (False, 3)])
def test_slot_contrast_of_indistinguishable_slots_is_log_of_the_candidates(batch_contrast, candidates):
    slots = np.ones((2, 4, 3, 8), np.float32)
    loss = slot_contrast_loss(slots, 0.1, batch_contrast)
    np.testing.assert_allclose(loss, np.log(candidates), rtol=1e-6)


def test_slot_contrast_of_orthogonal_slots_that_keep_their_identity_is_near_zero():
    slots = np.tile(np.eye(6, dtype=np.float32)[None, None], (1, 3, 1, 1))  # [1, 3, 6, 6]
    assert slot_contrast_loss(slots, 0.01, True) < 1e-6


def test_slot_contrast_needs_two_frames():
    with pytest.raises(ValueError, match="at least 2 frames"):
        slot_contrast.slot_contrast_loss(np.ones((2, 1, 3, 4)))


def test_dense_alignment_matches_a_patch_by_patch_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 4, 6, 3)).astype(np.float32)
    partner_labels = rng.integers(0, 3, size=(2, 4, 6))
    expected = _reference_dense_alignment(logits, partner_labels, 2, 0.5)
    np.testing.assert_allclose(dense_alignment_loss(logits, partner_labels, 2, 0.5), expected, rtol=1e-5)


def test_dense_alignment_of_identical_patches_is_log_of_the_other_patches():
    # 4 frames x 4 patches form one group of 16: every pair looks alike and every pair is positive.
    loss = dense_alignment_loss(np.zeros((1, 4, 4, 3), np.float32), np.zeros((1, 4, 4), int), 4, 0.1)
    np.testing.assert_allclose(loss, np.log(15), rtol=1e-6)


def test_dense_alignment_without_any_positive_pair_is_zero():
    labels = np.arange(8).reshape(1, 4, 2)  # every patch of the group has its own label
    loss, grad = jax.value_and_grad(dense_alignment_loss)(np.ones((1, 4, 2, 3), np.float32), labels, 4, 0.1)
    assert loss == 0.0 and np.isfinite(grad).all()


def test_srl_trains_each_module_towards_the_other_modules_labels():
    rng = np.random.default_rng(1)
    enc_logits, dec_logits = rng.normal(size=(2, 1, 4, 9, 3)).astype(np.float32)
    losses = jax.jit(srl.srl_losses)(enc_logits, dec_logits)
    np.testing.assert_allclose(
        losses["encoder"], _reference_dense_alignment(enc_logits, dec_logits.argmax(-1), 4, 0.1), rtol=1e-5
    )
    np.testing.assert_allclose(
        losses["decoder"], _reference_dense_alignment(dec_logits, enc_logits.argmax(-1), 4, 0.1), rtol=1e-5
    )


def test_dense_alignment_rejects_a_clip_that_does_not_split_into_groups():
    with pytest.raises(ValueError, match="groups frames by 4 but got T=6"):
        srl.dense_alignment_loss(np.zeros((1, 6, 4, 3)), np.zeros((1, 6, 4), int))


def test_area_weights_rows_are_overlap_fractions_that_sum_to_one():
    # 5 cells onto 3: each target cell spans 5/3 source cells.
    expected = np.array([[3, 2, 0, 0, 0], [0, 1, 3, 1, 0], [0, 0, 0, 2, 3]]) / 5
    np.testing.assert_allclose(resample.area_weights(5, 3), expected, rtol=1e-6)


def test_resampling_by_an_integer_factor_averages_blocks():
    logits = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4, 1)
    resampled = area_resample_to_grid(logits, (2, 2))
    np.testing.assert_allclose(resampled[0, 0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_resampling_by_a_fractional_factor_is_the_exact_area_average():
    # Independent check: replicate each source cell 3x3 (5x10 -> 15x30), then average 5x5 blocks.
    logits = np.random.default_rng(0).normal(size=(2, 1, 5, 10, 3)).astype(np.float32)
    fine = logits.repeat(3, axis=2).repeat(3, axis=3)  # [2, 1, 15, 30, 3]
    expected = fine.reshape(2, 1, 3, 5, 6, 5, 3).mean(axis=(3, 5))  # [2, 1, 3, 6, 3]
    np.testing.assert_allclose(area_resample_to_grid(logits, (3, 6)), expected, rtol=1e-5, atol=1e-6)


def test_resampling_passes_gradients_to_the_decoder_map():
    grad = jax.grad(lambda x: area_resample_to_grid(x, (2, 2)).sum())(np.zeros((1, 1, 4, 4, 2), np.float32))
    np.testing.assert_allclose(grad, 0.25)


def test_resampling_rejects_flat_maps():
    with pytest.raises(ValueError, match=r"\[B, T, Hd, Wd, S\]"):
        resample.area_resample_to_grid(np.zeros((1, 2, 16, 3)), (2, 2))
