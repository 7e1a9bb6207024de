"""SSync's 10-neighbourhood and the boundary / interior patch selections, on grids read by eye."""

import jax
import jax.numpy as jnp
import numpy as np

from ssync_jax.objectives import ssync

# Jitted once per module: op-by-op execution compiles every primitive and is slower on CPU.
count_differing_neighbours = jax.jit(ssync.count_differing_neighbours)
boundary_mask = jax.jit(ssync.boundary_mask)
interior_mask = jax.jit(ssync.interior_mask)


def _two_objects(frames=2):
    """A 5x6 clip, object 0 in columns 0-2 and object 1 in columns 3-5 in every frame."""
    grid = np.zeros((1, frames, 5, 6), np.int32)
    grid[..., 3:] = 1
    return jnp.array(grid)


def _noise_patch():
    """A 3-frame 5x5 clip of object 0 with one patch of slot 1 in the middle of frame 1."""
    grid = np.zeros((1, 3, 5, 5), np.int32)
    grid[0, 1, 2, 2] = 1
    return jnp.array(grid)


def _ten_neighbours_of_the_noise_patch():
    """[3, 5, 5] bool: the 8 spatial neighbours of (1, 2, 2) and the same patch in frames 0 and 2."""
    mask = np.zeros((3, 5, 5), bool)
    mask[1, 1:4, 1:4] = True
    mask[1, 2, 2] = False
    mask[0, 2, 2] = mask[2, 2, 2] = True
    return mask


def test_neighbourhood_is_eight_spatial_plus_previous_and_next_frame():
    assert len(ssync.NEIGHBOUR_OFFSETS) == 10
    assert sorted(ssync.NEIGHBOUR_OFFSETS) == sorted(
        [(0, di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj] + [(-1, 0, 0), (1, 0, 0)]
    )


def test_clean_two_object_scene_counts_three_differing_neighbours_along_the_seam():
    differing = count_differing_neighbours(_two_objects())
    expected = np.array([[0, 0, 3, 3, 0, 0]] * 5)
    np.testing.assert_array_equal(differing[0, 0], expected)
    np.testing.assert_array_equal(differing[0, 1], expected)


def test_clean_two_object_scene_splits_into_seam_boundary_and_interior():
    grid = _two_objects()
    seam = np.array([[False, False, True, True, False, False]] * 5)
    np.testing.assert_array_equal(boundary_mask(grid)[0, 0], seam)
    np.testing.assert_array_equal(interior_mask(grid)[0, 0], ~seam)


def test_a_uniform_clip_has_no_differing_neighbour_even_at_its_borders():
    # Edge replication: a missing neighbour never looks like another object.
    differing = count_differing_neighbours(jnp.full((1, 2, 3, 4), 5, jnp.int32))
    np.testing.assert_array_equal(differing, 0)


def test_missing_diagonal_neighbours_replicate_the_patch_beside_them():
    grid = jnp.array([[[[0, 1, 0], [0, 0, 0], [0, 0, 0]]]], jnp.int32)
    # (0,0): its up-right neighbour clamps onto (0,1), so it sees the 1 twice.
    expected = [[2, 7, 2], [1, 1, 1], [0, 0, 0]]
    np.testing.assert_array_equal(count_differing_neighbours(grid)[0, 0], expected)


def test_first_and_last_frames_are_their_own_missing_temporal_neighbours():
    # Frame 0 all 0, frame 1 all 1: each patch differs from one temporal neighbour, not two.
    grid = jnp.zeros((1, 2, 3, 3), jnp.int32).at[:, 1].set(1)
    np.testing.assert_array_equal(count_differing_neighbours(grid), 1)


def test_noise_patch_whose_ten_neighbours_all_differ_is_not_a_boundary():
    grid = _noise_patch()
    differing = count_differing_neighbours(grid)
    assert differing[0, 1, 2, 2] == 10
    # Only its neighbours, which each see one differing patch, are boundaries.
    np.testing.assert_array_equal(boundary_mask(grid)[0], _ten_neighbours_of_the_noise_patch())


def test_noise_patch_becomes_a_boundary_when_no_agreeing_neighbour_is_required():
    assert boundary_mask(_noise_patch(), min_diff=1, min_same=0)[0, 1, 2, 2]


def test_interior_requires_all_ten_neighbours_equal():
    expected = ~_ten_neighbours_of_the_noise_patch()
    expected[1, 2, 2] = False
    np.testing.assert_array_equal(interior_mask(_noise_patch())[0], expected)


def test_interior_with_a_looser_threshold_admits_patches_with_one_differing_neighbour():
    interior = np.asarray(interior_mask(_noise_patch(), max_diff=2))
    assert interior.sum() == 3 * 25 - 1
    assert not interior[0, 1, 2, 2]


def test_boundary_min_diff_excludes_patches_with_fewer_differing_neighbours():
    grid = _two_objects()
    assert not boundary_mask(grid, min_diff=4).any()
    assert boundary_mask(grid, min_diff=3).sum() == 2 * 5 * 2
