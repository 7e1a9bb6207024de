"""SSync's boundary and interior losses: values by hand, pooling, empty selections, gradients, jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssync_jax.objectives import ssync

# Jitted once per test module: op-by-op execution compiles every primitive and is slower here.
boundary_loss = jax.jit(ssync.boundary_loss)
interior_loss = jax.jit(ssync.interior_loss)
pseudo_labels = jax.jit(ssync.pseudo_labels, static_argnums=2)

# Uniform prediction over 4 slots against a one-hot target: (1 - 1/4)^2 + 3 (1/4)^2 = 0.75 per patch.
UNIFORM_ERROR = 0.75


def _confident(labels, num_slots=4):
    """Logits whose softmax is (numerically) the one-hot of `labels`."""
    return 100.0 * np.eye(num_slots, dtype=np.float32)[np.asarray(labels)]


def _random_maps(seed, shape=(2, 2, 16, 4)):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape).astype(np.float32), rng.normal(size=shape).astype(np.float32)


def _two_object_maps(seed):
    """Noisy but confident maps of two objects side by side (columns 0-1 and 2-3), 2 frames of 4x4."""
    rng = np.random.default_rng(seed)
    scene = 3.0 * np.eye(4, dtype=np.float32)[np.tile([0, 0, 1, 1], (2, 2, 4))]  # [2, 2, 16, 4]
    return (
        scene + 0.5 * rng.normal(size=scene.shape).astype(np.float32),
        scene + 0.5 * rng.normal(size=scene.shape).astype(np.float32),
    )


@jax.jit
def _ssync_total(enc_logits, dec_logits):
    labels = ssync.pseudo_labels(enc_logits, dec_logits, (4, 4))
    return ssync.ssync_losses(enc_logits, dec_logits, labels)


_ssync_total_grads = jax.jit(jax.grad(lambda e, d: sum(_ssync_total(e, d).values()), argnums=(0, 1)))


def test_boundary_loss_is_mean_squared_error_over_selected_patches_and_slots():
    # Patch 0: uniform prediction (error 0.75); patch 1: exact; patch 2: wrong but not selected.
    dec_logits = np.stack([np.zeros(4), _confident(2), _confident(3)])[None, None]  # [1, 1, 3, 4]
    enc_labels = jnp.array([[[0, 2, 0]]])
    mask = jnp.array([[[True, True, False]]])
    loss = boundary_loss(dec_logits, enc_labels, mask)
    np.testing.assert_allclose(loss, UNIFORM_ERROR / (2 * 4), rtol=1e-6)


def test_interior_loss_compares_encoder_softmax_with_decoder_labels():
    enc_logits = np.stack([np.zeros(4), _confident(1)])[None, None]  # [1, 1, 2, 4]
    loss = interior_loss(enc_logits, jnp.array([[[3, 1]]]), jnp.array([[[True, True]]]))
    np.testing.assert_allclose(loss, UNIFORM_ERROR / (2 * 4), rtol=1e-6)


def test_losses_pool_patches_over_the_batch_rather_than_averaging_videos():
    # Video 0: one selected patch with error 0.75; video 1: three exact selected patches.
    dec_logits = np.stack([np.zeros((3, 4)), _confident([0, 1, 2])])[:, None]  # [2, 1, 3, 4]
    enc_labels = jnp.array([[[0, 0, 0]], [[0, 1, 2]]])
    mask = jnp.array([[[True, False, False]], [[True, True, True]]])
    loss = boundary_loss(dec_logits, enc_labels, mask)
    np.testing.assert_allclose(loss, UNIFORM_ERROR / (4 * 4), rtol=1e-6)  # not (0.1875 + 0) / 2


def test_temperature_divides_the_logits_before_the_softmax():
    logits = jnp.array([[[[2.0, 0.0]]]])
    probability = 1 / (1 + np.exp(-1.0))  # softmax([1, 0])[0] at temperature 2
    expected = ((probability - 1) ** 2 + (1 - probability) ** 2) / 2
    loss = boundary_loss(logits, jnp.array([[[0]]]), jnp.array([[[True]]]), temperature=2.0)
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_masks_and_labels_may_come_on_the_patch_grid():
    dec_logits, _ = _random_maps(0)
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, size=(2, 2, 16))
    mask = rng.uniform(size=(2, 2, 16)) < 0.5
    flat = boundary_loss(dec_logits, labels, mask)
    grid = boundary_loss(dec_logits, labels.reshape(2, 2, 4, 4), mask.reshape(2, 2, 4, 4))
    np.testing.assert_allclose(grid, flat, rtol=1e-6)


def test_an_empty_selection_gives_zero_loss_and_zero_gradient():
    dec_logits, _ = _random_maps(0)
    no_patch = np.zeros((2, 2, 16), bool)
    labels = np.zeros((2, 2, 16), np.int32)
    loss, grad = jax.value_and_grad(boundary_loss)(dec_logits, labels, no_patch)
    assert loss == 0.0
    np.testing.assert_array_equal(grad, 0.0)


@pytest.mark.parametrize(
    "enc_grid",
    [np.zeros((4, 4), int), np.indices((4, 4)).sum(0) % 2],
    ids=["uniform_clip_no_boundary", "checkerboard_all_boundary"],
)
def test_no_nan_when_every_or_no_patch_is_a_boundary(enc_grid):
    enc_logits = _confident(np.broadcast_to(enc_grid.reshape(16), (2, 2, 16)))
    dec_logits = enc_logits
    labels = pseudo_labels(enc_logits, dec_logits, (4, 4))
    assert labels.boundary_mask.all() or not labels.boundary_mask.any()
    assert labels.interior_mask.all() or not labels.interior_mask.any()
    grads = _ssync_total_grads(enc_logits, dec_logits)
    for value in [*_ssync_total(enc_logits, dec_logits).values(), *grads]:
        assert np.isfinite(np.asarray(value)).all()


def test_boundary_loss_trains_only_the_decoder_and_interior_loss_only_the_encoder():
    enc_logits, dec_logits = _two_object_maps(3)
    labels = pseudo_labels(enc_logits, dec_logits, (4, 4))
    assert labels.boundary_mask.any() and labels.interior_mask.any()
    for name, trained, frozen in [("boundary", 1, 0), ("interior", 0, 1)]:
        grads = jax.grad(lambda e, d, n=name: _ssync_total(e, d)[n], argnums=(0, 1))(enc_logits, dec_logits)
        assert np.abs(grads[trained]).sum() > 0, name
        np.testing.assert_array_equal(grads[frozen], 0.0, err_msg=name)


def test_losses_are_invariant_to_slot_permutation():
    enc_logits, dec_logits = _random_maps(4)
    permutation = np.array([2, 0, 3, 1])
    losses = _ssync_total(enc_logits, dec_logits)
    permuted = _ssync_total(enc_logits[..., permutation], dec_logits[..., permutation])
    for name in losses:
        np.testing.assert_allclose(permuted[name], losses[name], rtol=1e-6)


def test_losses_under_jit_equal_losses_without_jit():
    enc_logits, dec_logits = _random_maps(5)
    # The pseudo-labels themselves are compared with and without jit in test_objectives_ssync_pseudo_labels.py.
    eager = ssync.ssync_losses(enc_logits, dec_logits, pseudo_labels(enc_logits, dec_logits, (4, 4)))
    jitted = _ssync_total(enc_logits, dec_logits)
    for name in eager:
        np.testing.assert_allclose(jitted[name], eager[name], rtol=1e-6)


def test_statistics_report_selected_fractions_and_merged_slots():
    # One clip: every patch of slot 0 (uniform map) with a copy in slot 1 that merges into it.
    logits = np.zeros((1, 2, 16, 3), np.float32)
    logits[..., 0] = np.random.default_rng(0).normal(size=(1, 2, 16)) + 5
    logits[..., 1] = logits[..., 0] - 1
    stats = ssync.ssync_statistics(pseudo_labels(logits, logits, (4, 4)))
    assert stats == {"boundary_fraction": 0.0, "interior_fraction": 1.0, "merged_slots": 1.0}


def test_a_non_positive_temperature_is_rejected():
    with pytest.raises(ValueError, match="temperature must be positive"):
        ssync.boundary_loss(jnp.zeros((1, 1, 1, 2)), jnp.zeros((1, 1, 1), int), jnp.ones((1, 1, 1), bool), 0.0)
