"""FG-ARI, mBO, Hungarian mIoU against sklearn and numpy loops; masks -> ids; ValidAverage."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from clu import metrics as clu_metrics
from sklearn.metrics import adjusted_rand_score

from ssync_jax import metrics

_STATIC = ("num_true", "num_pred", "per_frame")
fg_ari = jax.jit(metrics.fg_ari, static_argnames=_STATIC)
mbo = jax.jit(metrics.mbo, static_argnames=_STATIC)
masks_to_ids = jax.jit(metrics.masks_to_ids, static_argnames=("label_size",))


def _random_ids(seed, shape=(2, 3, 8, 8), num_true=4, num_pred=5):
    """Random true ids with about a third background, random predicted ids."""
    rng = np.random.default_rng(seed)
    true_ids = rng.integers(0, num_true, shape) * (rng.random(shape) > 0.3)
    return true_ids.astype(np.int32), rng.integers(0, num_pred, shape).astype(np.int32)


def _groups(ids, per_frame):
    """[B, T, H, W] -> list over videos (or frames) of flat pixel arrays, in output order."""
    if per_frame:
        return [frame.ravel() for video in ids for frame in video]
    return [video.ravel() for video in ids]


def _reference_fg_ari(true_ids, pred_ids, per_frame):
    """sklearn ARI on the foreground pixels of each video (or frame); None where there are none."""
    scores = []
    for true, pred in zip(_groups(true_ids, per_frame), _groups(pred_ids, per_frame)):
        foreground = true > 0
        if foreground.any():
            scores.append(adjusted_rand_score(true[foreground], pred[foreground]))
        else:
            scores.append(None)
    return scores


def _reference_ious(true, pred, num_pred):
    """{object id: [IoU with segment k for k < num_pred]} for the objects present, via masks."""
    return {
        j: [
            np.sum((true == j) & (pred == k)) / np.sum((true == j) | (pred == k))
            for k in range(num_pred)
        ]
        for j in np.unique(true[true > 0])
    }


def _reference_mbo(true_ids, pred_ids, num_pred, per_frame):
    """Mean over present objects of their best IoU, per video (or frame); None without objects."""
    scores = []
    for true, pred in zip(_groups(true_ids, per_frame), _groups(pred_ids, per_frame)):
        ious = _reference_ious(true, pred, num_pred)
        scores.append(np.mean([max(row) for row in ious.values()]) if ious else None)
    return scores


def _reference_miou(true_ids, pred_ids, num_pred, per_frame):
    """Brute force over every one-to-one assignment of objects to segments (unmatched count 0)."""
    scores = []
    for true, pred in zip(_groups(true_ids, per_frame), _groups(pred_ids, per_frame)):
        ious = list(_reference_ious(true, pred, num_pred).values())
        if not ious:
            scores.append(None)
            continue
        padded = [row + [0.0] * len(ious) for row in ious]  # dummy segments for unmatched objects
        best = max(
            sum(row[k] for row, k in zip(padded, chosen))
            for chosen in itertools.permutations(range(num_pred + len(ious)), len(ious))
        )
        scores.append(best / len(ious))
    return scores


def _assert_matches(values, valid, reference):
    values, valid = np.asarray(values).ravel(), np.asarray(valid).ravel()
    np.testing.assert_array_equal(valid, [score is not None for score in reference])
    np.testing.assert_allclose(values[valid], [s for s in reference if s is not None], atol=1e-6)


@pytest.mark.parametrize("per_frame", [False, True])
def test_fg_ari_matches_sklearn_on_random_ids(per_frame):
    true_ids, pred_ids = _random_ids(0)
    true_ids[1, 1] = 0  # a frame without objects: skipped per frame, still counted per video
    values, valid = fg_ari(true_ids, pred_ids, num_true=4, num_pred=5, per_frame=per_frame)
    assert values.shape == valid.shape == ((2, 3) if per_frame else (2,))
    _assert_matches(values, valid, _reference_fg_ari(true_ids, pred_ids, per_frame))


def test_fg_ari_ignores_background_pixels():
    true_ids = np.zeros((1, 1, 4, 4), np.int32)
    true_ids[0, 0, :2, :2], true_ids[0, 0, 2:, 2:] = 1, 2
    pred_ids = np.arange(16, dtype=np.int32).reshape(1, 1, 4, 4) % 3  # background scrambled
    pred_ids[0, 0, :2, :2], pred_ids[0, 0, 2:, 2:] = 2, 0  # objects segmented perfectly
    values, valid = fg_ari(true_ids, pred_ids, num_true=3, num_pred=3)
    assert valid[0] and values[0] == pytest.approx(1.0)


def test_fg_ari_pools_frames_so_swapped_segment_ids_across_frames_score_below_one():
    true_ids = np.zeros((1, 2, 2, 4), np.int32)
    true_ids[:, :, :, :2], true_ids[:, :, :, 2:] = 1, 2
    pred_ids = np.zeros((1, 2, 2, 4), np.int32)
    pred_ids[0, 0, :, 2:] = 1
    pred_ids[0, 1, :, :2] = 1  # frame 1 swaps which segment holds which object
    video, _ = fg_ari(true_ids, pred_ids, num_true=3, num_pred=2)
    image, _ = fg_ari(true_ids, pred_ids, num_true=3, num_pred=2, per_frame=True)
    np.testing.assert_allclose(image, [[1.0, 1.0]])
    expected = adjusted_rand_score(true_ids.ravel(), pred_ids.ravel())
    assert video[0] == pytest.approx(expected, abs=1e-6) and expected < 0.0


@pytest.mark.parametrize(
    "true_foreground, pred_foreground, expected",
    [
        ([1, 1, 1, 1], [2, 2, 2, 2], 1.0),  # one object, one segment: sklearn's "full agreement"
        ([1, 1, 1, 1], [0, 0, 1, 2], 0.0),  # one object split over segments
        ([3], [1], 1.0),  # a single foreground pixel
        ([1, 2, 3], [0, 1, 2], 1.0),  # all singletons in both
        ([1, 2, 3], [0, 0, 0], 0.0),  # all singletons merged into one segment
    ],
)
def test_fg_ari_degenerate_cases_follow_sklearn(true_foreground, pred_foreground, expected):
    assert adjusted_rand_score(true_foreground, pred_foreground) == expected
    size = len(true_foreground)
    true_ids = np.zeros((1, 1, 1, size + 2), np.int32)  # plus two background pixels
    pred_ids = np.full((1, 1, 1, size + 2), 1, np.int32)
    true_ids[0, 0, 0, :size], pred_ids[0, 0, 0, :size] = true_foreground, pred_foreground
    values, valid = fg_ari(true_ids, pred_ids, num_true=4, num_pred=3)
    assert valid[0] and values[0] == expected


def test_fg_ari_is_exact_on_a_large_near_degenerate_video():
    # All but 10 of 24·64·64 pixels in one object, all but 1 in one segment: float32 cancellation
    # puts the textbook (index − expected) / (max − expected) 3e-5 off; pair counts stay exact.
    true_ids = np.ones((1, 24, 64, 64), np.int32)
    pred_ids = np.zeros((1, 24, 64, 64), np.int32)
    true_ids[0, 0, 0, :10] = 2
    pred_ids[0, 0, 0, :1] = 1
    values, _ = fg_ari(true_ids, pred_ids, num_true=3, num_pred=2)
    expected = adjusted_rand_score(true_ids.ravel(), pred_ids.ravel())  # 0.18179
    assert values[0] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("metric", [fg_ari, mbo, metrics.miou])
def test_videos_and_frames_without_objects_are_invalid(metric):
    true_ids = np.zeros((2, 2, 4, 4), np.int32)  # video 1 is evaluation padding: all zeros
    true_ids[0, 1, 0, 0] = 1  # video 0 has one object pixel, in frame 1 only
    pred_ids = np.zeros((2, 2, 4, 4), np.int32)
    _, video_valid = metric(true_ids, pred_ids, num_true=2, num_pred=2)
    _, frame_valid = metric(true_ids, pred_ids, num_true=2, num_pred=2, per_frame=True)
    np.testing.assert_array_equal(video_valid, [True, False])
    np.testing.assert_array_equal(frame_valid, [[False, True], [False, False]])


@pytest.mark.parametrize("per_frame", [False, True])
def test_mbo_matches_numpy_loops_on_random_ids(per_frame):
    true_ids, pred_ids = _random_ids(1, num_true=6, num_pred=3)
    true_ids[0, 2] = 0
    true_ids[1][true_ids[1] == 4] = 0  # an object absent from a whole video
    values, valid = mbo(true_ids, pred_ids, num_true=6, num_pred=3, per_frame=per_frame)
    assert values.shape == valid.shape == ((2, 3) if per_frame else (2,))
    _assert_matches(values, valid, _reference_mbo(true_ids, pred_ids, 3, per_frame))


def test_mbo_counts_background_pixels_of_a_segment_in_the_union():
    true_ids = np.array([[[[1, 1, 0, 0], [2, 2, 2, 2]]]], np.int32)
    pred_ids = np.array([[[[0, 0, 0, 0], [1, 1, 1, 2]]]], np.int32)
    # object 1: best segment 0, IoU 2/4; object 2: best segment 1, IoU 3/4.
    values, valid = mbo(true_ids, pred_ids, num_true=3, num_pred=3)
    assert valid[0] and values[0] == pytest.approx((0.5 + 0.75) / 2)


def test_video_mbo_penalises_an_object_changing_segment_between_frames():
    true_ids = np.array([[[[1, 1, 0, 0]], [[1, 1, 0, 0]]]], np.int32)  # [1, 2, 1, 4]
    pred_ids = np.array([[[[0, 0, 1, 1]], [[1, 1, 0, 0]]]], np.int32)
    image, _ = mbo(true_ids, pred_ids, num_true=2, num_pred=2, per_frame=True)
    video, _ = mbo(true_ids, pred_ids, num_true=2, num_pred=2)
    np.testing.assert_allclose(image, [[1.0, 1.0]])
    np.testing.assert_allclose(video, [2 / 6])  # 2 shared pixels of the 6 in object ∪ segment


def test_iou_matrix_is_jittable_and_zero_for_absent_objects():
    true_ids = np.array([[[[1, 1, 3, 0]]]], np.int32)
    pred_ids = np.array([[[[0, 0, 0, 1]]]], np.int32)
    iou, present = jax.jit(metrics.iou_matrix, static_argnames=_STATIC)(true_ids, pred_ids, 4, 2)
    np.testing.assert_allclose(iou, [[[2 / 3, 0.0], [0.0, 0.0], [1 / 3, 0.0]]], rtol=1e-6)
    np.testing.assert_array_equal(present, [[True, False, True]])


@pytest.mark.parametrize("per_frame", [False, True])
def test_miou_matches_brute_force_assignment_on_random_ids(per_frame):
    true_ids, pred_ids = _random_ids(2, shape=(2, 2, 6, 6), num_true=5, num_pred=3)  # 4 objects > 3
    values, valid = metrics.miou(true_ids, pred_ids, num_true=5, num_pred=3, per_frame=per_frame)
    _assert_matches(values, valid, _reference_miou(true_ids, pred_ids, 3, per_frame))


def test_miou_matches_each_segment_once_where_mbo_reuses_it():
    true_ids = np.array([[[[1, 1, 2, 2, 0, 0]]]], np.int32)
    pred_ids = np.array([[[[0, 0, 0, 0, 1, 2]]]], np.int32)
    best, _ = mbo(true_ids, pred_ids, num_true=3, num_pred=3)
    matched, _ = metrics.miou(true_ids, pred_ids, num_true=3, num_pred=3)
    assert best[0] == pytest.approx(0.5)  # both objects pick segment 0 (IoU 2/4 each)
    assert matched[0] == pytest.approx(0.25)  # only one may have it; the other gets IoU 0


def test_masks_to_ids_upsamples_a_two_by_two_grid_into_quadrants():
    masks = np.eye(4, dtype=np.float32).reshape(1, 1, 2, 2, 4)  # [1, 1, 2, 2, S=4]: patch n is slot n
    ids = masks_to_ids(masks, label_size=(4, 4))
    np.testing.assert_array_equal(
        ids[0, 0], [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    )
    assert ids.dtype == jnp.int32


def _reference_bilinear(masks, size):
    """torch's bilinear, align_corners=False: half-pixel source coordinates clamped to the grid."""

    def weights(source, target):
        coords = np.maximum((np.arange(target) + 0.5) * source / target - 0.5, 0.0)
        low = np.floor(coords).astype(int)
        high = np.minimum(low + 1, source - 1)
        matrix = np.zeros((target, source))
        np.add.at(matrix, (np.arange(target), low), 1 - (coords - low))
        np.add.at(matrix, (np.arange(target), high), coords - low)
        return matrix

    rows = weights(masks.shape[2], size[0])  # [H, h]
    cols = weights(masks.shape[3], size[1])  # [W, w]
    return np.einsum("Hh,Ww,bthws->btHWs", rows, cols, masks)


@pytest.mark.parametrize("label_size", [(13, 10), (3, 4)])
def test_masks_to_ids_is_argmax_of_torch_style_bilinear_resize(label_size):
    masks = np.random.default_rng(3).random((2, 2, 5, 7, 3)).astype(np.float32)  # [B, T, h, w, S]
    expected = _reference_bilinear(masks, label_size).argmax(-1)
    np.testing.assert_array_equal(masks_to_ids(masks, label_size=label_size), expected)


def test_bad_inputs_raise_errors_naming_the_fix():
    ids = np.zeros((1, 2, 4, 4), np.int32)
    with pytest.raises(ValueError, match="masks_to_ids"):
        metrics.fg_ari(ids, ids[:, :1], num_true=2, num_pred=2)
    with pytest.raises(ValueError, match="argmax"):
        metrics.mbo(ids, ids.astype(np.float32), num_true=2, num_pred=2)
    with pytest.raises(ValueError, match=r"masks must be \[B, T, h, w, S\] on their grid"):
        metrics.masks_to_ids(np.zeros((1, 2, 16, 3)), label_size=(8, 8))


def test_valid_average_merges_batches_into_the_mean_of_valid_entries():
    first = metrics.ValidAverage.from_model_output(jnp.array([0.2, 99.0]), jnp.array([True, False]))
    second = metrics.ValidAverage.from_model_output(
        jnp.array([[0.4, 0.6], [99.0, 99.0]]), jnp.array([[True, True], [False, False]])
    )
    assert float(first.merge(second).compute()) == pytest.approx(np.mean([0.2, 0.4, 0.6]))
    assert np.isnan(metrics.ValidAverage.empty().compute())


def test_valid_average_from_outputs_reads_named_values_and_validity_in_a_collection():
    collection = clu_metrics.Collection.create(
        fg_ari=metrics.ValidAverage.from_outputs("fg_ari", "fg_ari_valid")
    )
    batches = [
        dict(fg_ari=jnp.array([1.0, 0.5]), fg_ari_valid=jnp.array([True, True])),
        dict(fg_ari=jnp.array([0.0, 0.9]), fg_ari_valid=jnp.array([False, True])),
    ]
    merged = collection.empty()
    for batch in batches:
        merged = merged.merge(collection.single_from_model_output(**batch))
    assert float(merged.compute()["fg_ari"]) == pytest.approx(0.8)
