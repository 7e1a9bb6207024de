"""SSync pseudo-labels: argmax labels, coverage IoU, transitive slot merging, the full labels."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse.csgraph

from ssync_jax.objectives import ssync

# Jitted once per module: op-by-op execution compiles every primitive and is slower on CPU.
pseudo_labels = jax.jit(ssync.pseudo_labels, static_argnums=2)
merge_redundant_slots = jax.jit(ssync.merge_redundant_slots)
slot_coverage_iou = jax.jit(ssync.slot_coverage_iou)


def _reference_targets(enc, dec, grid_shape, tau, n_bd=1, n_noise=1, n_nbd=1):
    """Loop-by-loop numpy reading of the issue's algorithm (BFS merging, clamped neighbours)."""
    batch, frames, patches, slots = enc.shape
    height, width = grid_shape
    enc_labels = enc.argmax(-1)
    dec_labels = dec.argmax(-1)
    merged_enc, merged_dec = enc_labels.copy(), dec_labels.copy()
    merge_target = np.tile(np.arange(slots), (batch, 1))
    for b in range(batch):
        coverage = enc[b] > enc[b].mean(axis=(0, 1))
        iou = np.zeros((slots, slots))
        for i, j in itertools.product(range(slots), repeat=2):
            for t in range(frames):
                inter = np.sum(coverage[t, :, i] & coverage[t, :, j])
                union = coverage[t, :, i].sum() + coverage[t, :, j].sum() - inter + 2e-6
                iou[i, j] += inter / union / frames
        counts = np.bincount(enc_labels[b].ravel(), minlength=slots)
        seen = set()
        for start in range(slots):
            if start in seen:
                continue
            component, stack = [], [start]
            while stack:
                node = stack.pop()
                if node in seen:
                    continue
                seen.add(node)
                component.append(node)
                stack += [k for k in range(slots) if k != node and iou[node, k] > tau]
            winner = min(component, key=lambda s: (-counts[s], s))
            for member in component:
                merge_target[b, member] = winner
        merged_enc[b] = merge_target[b][enc_labels[b]]
        merged_dec[b] = merge_target[b][dec_labels[b]]

    def differing(grid):
        out = np.zeros_like(grid)
        for b, t, i, j in np.ndindex(*grid.shape):
            neighbours = [(t, i + di, j + dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj]
            neighbours += [(t - 1, i, j), (t + 1, i, j)]
            for nt, ni, nj in neighbours:
                nt, ni, nj = min(max(nt, 0), frames - 1), min(max(ni, 0), height - 1), min(max(nj, 0), width - 1)
                out[b, t, i, j] += grid[b, nt, ni, nj] != grid[b, t, i, j]
        return out

    grid = (batch, frames, height, width)
    d_enc = differing(merged_enc.reshape(grid))
    d_dec = differing(merged_dec.reshape(grid))
    return {
        "enc_labels": merged_enc.reshape(grid),
        "dec_labels": merged_dec.reshape(grid),
        "boundary_mask": (d_enc >= n_bd) & (10 - d_enc >= n_noise),
        "interior_mask": d_dec < n_nbd,
        "merge_target": merge_target,
    }


def _random_maps_with_redundant_slots(seed, shape=(2, 3, 20, 6)):
    """Random maps where slot 4 copies slot 1 and slot 5 copies slot 2 (plus noise), so slots merge."""
    rng = np.random.default_rng(seed)
    enc = rng.normal(size=shape).astype(np.float32)
    enc[..., 4] = enc[..., 1] + 0.3 * rng.normal(size=shape[:-1])
    enc[..., 5] = enc[..., 2] + 0.3 * rng.normal(size=shape[:-1])
    dec = rng.normal(size=shape).astype(np.float32)
    return enc, dec


def test_labels_take_the_first_slot_on_ties():
    logits = jnp.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0], [0.0, 0.0, 3.0]])
    np.testing.assert_array_equal(ssync.labels(logits), [0, 1, 2])


def test_coverage_iou_of_identical_and_disjoint_slots():
    # One frame, four patches: slots 0 and 1 cover patches {0, 1}, slot 2 covers {2, 3}.
    enc = jnp.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    iou = slot_coverage_iou(enc[None, None])[0]
    np.testing.assert_allclose(iou, [[1, 1, 0], [1, 1, 0], [0, 0, 1]], atol=1e-5)


def test_coverage_iou_averages_per_frame_iou_over_time():
    # Slots 0 and 1 share one patch of two in frame 0 (IoU 1/3) and are identical in frame 1 (IoU 1).
    frame0 = [[1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    frame1 = [[1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    iou = slot_coverage_iou(jnp.array([[frame0, frame1]]))[0]
    np.testing.assert_allclose(iou[0, 1], (1 / 3 + 1) / 2, atol=1e-5)


def test_redundant_pair_merges_into_the_slot_with_more_patches():
    iou = jnp.eye(3).at[0, 2].set(0.9).at[2, 0].set(0.9)
    target = merge_redundant_slots(iou[None], jnp.array([[5, 7, 9]]), 0.7)
    np.testing.assert_array_equal(target[0], [2, 1, 2])


def test_chain_merges_transitively_although_its_ends_are_below_threshold():
    iou = np.eye(4)
    iou[0, 1] = iou[1, 0] = 0.8  # a–b
    iou[1, 2] = iou[2, 1] = 0.8  # b–c
    iou[0, 2] = iou[2, 0] = 0.5  # a–c alone would not merge
    target = merge_redundant_slots(jnp.array(iou)[None], jnp.array([[3, 1, 10, 4]]), 0.7)
    np.testing.assert_array_equal(target[0], [2, 2, 2, 3])


def test_a_path_through_all_eleven_slots_merges_into_one():
    iou = np.eye(11)
    for i in range(10):
        iou[i, i + 1] = iou[i + 1, i] = 0.9
    counts = np.arange(11) % 4  # the most patches at slots 3 and 7: the lower index wins.
    target = merge_redundant_slots(jnp.array(iou)[None], jnp.array(counts)[None], 0.7)
    np.testing.assert_array_equal(target[0], [3] * 11)


def test_merge_winner_ties_go_to_the_slot_the_authors_search_reaches_first():
    # Their search starts at slot 0, pushes 1 and 2, pops 2 first: slot 2 wins the 4-4 tie.
    iou = jnp.full((3, 3), 0.95)
    target = merge_redundant_slots(iou[None], jnp.array([[2, 4, 4]]), 0.7)
    np.testing.assert_array_equal(target[0], [2, 2, 2])


def authors_merge_loop(iou: np.ndarray, areas: np.ndarray, threshold: float) -> np.ndarray:
    """The authors' merge loop (SSync/models.py, `forward`), with torch replaced by numpy."""
    num_slots = len(areas)
    winner = np.arange(num_slots)
    redundant_pairs = (iou > threshold) & ~np.eye(num_slots, dtype=bool)
    redundant_pairs = redundant_pairs | redundant_pairs.T
    visited = np.zeros(num_slots, bool)
    for i in range(num_slots):
        if visited[i] or not redundant_pairs[i].any():
            continue
        stack, component = [i], []
        while stack:
            node = stack.pop()
            if visited[node]:
                continue
            visited[node] = True
            component.append(node)
            for n in np.nonzero(redundant_pairs[node])[0].tolist():
                if not visited[n]:
                    stack.append(int(n))
        if len(component) <= 1:
            continue
        comp = np.array(component)
        winner[comp] = comp[areas[comp].argmax()]
    return winner


def test_merge_equals_the_authors_loop_on_random_graphs_with_tied_areas():
    rng = np.random.default_rng(0)
    for _ in range(200):
        num_slots = int(rng.integers(2, 16))
        iou = rng.uniform(0, 1, (num_slots, num_slots))
        iou = np.where(rng.random((num_slots, num_slots)) < 0.7, 0.0, iou)  # sparse graphs
        iou = (iou + iou.T) / 2
        areas = rng.integers(0, 3, num_slots)  # many ties
        want = authors_merge_loop(iou, areas, 0.3)
        got = merge_redundant_slots(jnp.asarray(iou, jnp.float32)[None], jnp.asarray(areas)[None], 0.3)
        np.testing.assert_array_equal(got[0], want)


def test_iou_equal_to_the_threshold_does_not_merge():
    iou = jnp.eye(2).at[0, 1].set(0.7).at[1, 0].set(0.7)
    target = merge_redundant_slots(iou[None], jnp.array([[1, 2]]), 0.7)
    np.testing.assert_array_equal(target[0], [0, 1])


@pytest.mark.parametrize("seed", range(3))
def test_merged_components_match_scipy_connected_components(seed):
    rng = np.random.default_rng(seed)
    iou = rng.uniform(size=(4, 9, 9)) ** 6  # sparse random graphs above τ = 0.5
    iou = np.maximum(iou, np.swapaxes(iou, 1, 2))
    counts = rng.permutation(np.arange(9 * 4)).reshape(4, 9)  # distinct counts: one winner each
    target = np.asarray(merge_redundant_slots(jnp.array(iou), jnp.array(counts), 0.5))
    for b in range(4):
        graph = (iou[b] > 0.5) & ~np.eye(9, dtype=bool)
        _, component = scipy.sparse.csgraph.connected_components(graph, directed=False)
        for slot in range(9):
            members = np.flatnonzero(component == component[slot])
            assert target[b, slot] == members[np.argmax(counts[b, members])]


def test_targets_merge_a_chain_and_relabel_both_maps():
    # 4x4 grid, raster patches 0..15. Coverage: a = 0..9, b = 1..10, c = 2..11, d = 12..15.
    # IoU(a,b) = IoU(b,c) = 9/11 > 0.7 but IoU(a,c) = 8/12 < 0.7; c holds the most patches.
    enc = np.zeros((16, 4), np.float32)
    enc[0:10, 0] = 1.0
    enc[1:11, 1] = 1.1
    enc[2:12, 2] = 1.2
    enc[12:16, 3] = 1.0
    dec = np.zeros((16, 4), np.float32)
    dec[np.arange(16), np.arange(16) % 4] = 1.0  # decoder labels cycle a, b, c, d
    labels = pseudo_labels(jnp.array(enc)[None, None], jnp.array(dec)[None, None], (4, 4))

    np.testing.assert_array_equal(labels.merge_target[0], [2, 2, 2, 3])
    np.testing.assert_array_equal(
        labels.unmerged_enc_labels[0, 0], [[0, 1, 2, 2], [2, 2, 2, 2], [2, 2, 2, 2], [3, 3, 3, 3]]
    )
    np.testing.assert_array_equal(
        labels.enc_labels[0, 0], [[2, 2, 2, 2], [2, 2, 2, 2], [2, 2, 2, 2], [3, 3, 3, 3]]
    )
    np.testing.assert_array_equal(labels.unmerged_dec_labels[0, 0], [[0, 1, 2, 3]] * 4)
    np.testing.assert_array_equal(labels.dec_labels[0, 0], [[2, 2, 2, 3]] * 4)


@pytest.mark.parametrize("seed", range(3))
def test_targets_match_a_numpy_loop_reference(seed):
    enc, dec = _random_maps_with_redundant_slots(seed, shape=(2, 3, 20, 6))
    labels = pseudo_labels(jnp.array(enc), jnp.array(dec), (4, 5), merge_iou_threshold=0.5)
    reference = _reference_targets(enc, dec, (4, 5), tau=0.5)
    assert (reference["merge_target"] != np.arange(6)).any(), "the inputs must exercise merging"
    for field, expected in reference.items():
        np.testing.assert_array_equal(getattr(labels, field), expected, err_msg=field)


def test_neighbourhood_thresholds_match_the_reference():
    enc, dec = _random_maps_with_redundant_slots(7, shape=(1, 3, 20, 6))
    labels = pseudo_labels(
        jnp.array(enc), jnp.array(dec), (4, 5), 0.5, min_diff_boundary=3, min_same_boundary=4, max_diff_interior=2
    )
    reference = _reference_targets(enc, dec, (4, 5), tau=0.5, n_bd=3, n_noise=4, n_nbd=2)
    np.testing.assert_array_equal(labels.boundary_mask, reference["boundary_mask"])
    np.testing.assert_array_equal(labels.interior_mask, reference["interior_mask"])


def test_permuting_slots_permutes_labels_and_keeps_masks():
    enc, dec = _random_maps_with_redundant_slots(3, shape=(2, 3, 20, 6))
    permutation = np.array([3, 5, 0, 4, 1, 2])  # new slot k is old slot permutation[k]
    inverse = np.argsort(permutation)
    labels = pseudo_labels(jnp.array(enc), jnp.array(dec), (4, 5), 0.5)
    permuted = pseudo_labels(jnp.array(enc[..., permutation]), jnp.array(dec[..., permutation]), (4, 5), 0.5)
    assert (np.asarray(labels.merge_target) != np.arange(6)).any()
    np.testing.assert_array_equal(permuted.enc_labels, inverse[np.asarray(labels.enc_labels)])
    np.testing.assert_array_equal(permuted.dec_labels, inverse[np.asarray(labels.dec_labels)])
    np.testing.assert_array_equal(permuted.boundary_mask, labels.boundary_mask)
    np.testing.assert_array_equal(permuted.interior_mask, labels.interior_mask)


def test_targets_under_jit_equal_targets_without_jit():
    enc, dec = _random_maps_with_redundant_slots(1)
    eager = ssync.pseudo_labels(jnp.array(enc), jnp.array(dec), (4, 5), 0.5)
    jitted = pseudo_labels(jnp.array(enc), jnp.array(dec), (4, 5), 0.5)
    for field in eager._fields:
        np.testing.assert_array_equal(getattr(jitted, field), getattr(eager, field), err_msg=field)


def test_targets_reject_a_grid_that_does_not_match_the_patches():
    maps = jnp.zeros((1, 2, 20, 3))
    with pytest.raises(ValueError, match=r"grid_shape \(4, 4\) has 16 patches but the maps have N=20"):
        ssync.pseudo_labels(maps, maps, (4, 4))


def test_targets_reject_decoder_maps_of_another_shape():
    with pytest.raises(ValueError, match="area_resample_to_grid"):
        ssync.pseudo_labels(jnp.zeros((1, 2, 16, 3)), jnp.zeros((1, 2, 64, 3)), (4, 4))
