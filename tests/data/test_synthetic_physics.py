"""Specification of the generator's rigid-body simulation, against closed-form mechanics."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from ssync_jax.data.synthetic import SceneSpec
from ssync_jax.data.synthetic.geometry import CUBE, CYLINDER, SPHERE
from ssync_jax.data.synthetic.physics import GRAVITY, RigidBodies, simulate
from ssync_jax.data.synthetic.scene import sample_scene

FRAME_RATE, SUBSTEPS, FRAMES = 12.0, 4, 24
DT = 1 / (FRAME_RATE * SUBSTEPS)
# One padded size for all hand-made scenes, so the integrator compiles once.
PADDED = 4
# MOVi-E's largest object count; random scenes are padded to it (one more compile).
CROWDED = 23


def bodies(shapes, positions, velocities, friction=0.5, restitution=0.3, scale=0.5) -> RigidBodies:
    """Hand-made bodies of equal size and mass, upright and not spinning."""
    n = len(shapes)
    identity = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
    return RigidBodies(
        shapes=np.array(shapes),
        half_extents=np.full((n, 3), scale),
        mass=np.ones(n),
        friction=np.full(n, friction),
        restitution=np.full(n, restitution),
        positions=np.array(positions, float),
        velocities=np.array(velocities, float),
        quaternions=identity,
        angular_velocities=np.zeros((n, 3)),
    )


def test_free_fall_follows_half_g_t_squared():
    trajectories = simulate(bodies([SPHERE], [[0, 0, 3]], [[0, 0, 0]]), FRAMES, FRAME_RATE, SUBSTEPS, PADDED)
    time = np.arange(7) / FRAME_RATE  # it lands after 0.71 s
    np.testing.assert_allclose(trajectories.velocities[0, :7, 2], -GRAVITY * time, atol=1e-4)
    # Semi-implicit Euler runs ahead of the parabola by g * dt * t / 2.
    fallen = 3 - GRAVITY * time**2 / 2
    np.testing.assert_allclose(trajectories.positions[0, :7, 2], fallen, atol=GRAVITY * DT * time[-1] / 2 + 1e-4)


def test_dropped_cube_bounces_then_rests_on_its_face():
    trajectories = simulate(bodies([CUBE], [[0, 0, 2]], [[0, 0, 0]]), FRAMES, FRAME_RATE, SUBSTEPS, PADDED)
    heights = trajectories.positions[0, :, 2]
    assert heights.min() >= 0.5 - 1e-5
    assert np.any(np.diff(heights) > 0)  # it bounced
    assert heights[-1] == pytest.approx(0.5, abs=1e-4) and abs(trajectories.velocities[0, -1, 2]) < 1e-4


def test_sliding_box_stops_after_v_squared_over_two_mu_g():
    friction, speed = 0.5, 3.0
    trajectories = simulate(
        bodies([CUBE], [[0, 0, 0.5]], [[speed, 0, 0]], friction=friction), FRAMES, FRAME_RATE, SUBSTEPS, PADDED
    )
    stop_distance = speed**2 / (2 * friction * GRAVITY)
    assert trajectories.positions[0, -1, 0] == pytest.approx(stop_distance, abs=speed * DT)
    assert np.all(trajectories.velocities[0, -5:] == 0)


def test_rolling_sphere_turns_by_distance_over_radius_and_outrolls_a_sliding_box():
    sphere_and_box = bodies([SPHERE, CUBE], [[0, 0, 0.5], [0, 5, 0.5]], [[2, 0, 0], [2, 0, 0]])
    trajectories = simulate(sphere_and_box, FRAMES, FRAME_RATE, SUBSTEPS, PADDED)
    distance = trajectories.positions[0, -1, 0] - trajectories.positions[0, 0, 0]
    w, x, y, z = trajectories.quaternions[0, -1]
    rotation = Rotation.from_quat([x, y, z, w]).as_rotvec()
    # Rolling towards +x turns the sphere about +y by distance / radius (modulo 2 pi), up to the
    # one substep (v * dt / r) by which the spin, updated after the move, leads the position.
    assert np.allclose(rotation[[0, 2]], 0, atol=1e-3)
    lag = np.mod(rotation[1] - distance / 0.5 + np.pi, 2 * np.pi) - np.pi
    assert abs(lag) <= 2.0 * DT / 0.5
    assert distance > trajectories.positions[1, -1, 0] + 0.5


def test_head_on_collision_reverses_both_objects_without_interpenetration():
    approaching = bodies(
        [SPHERE, SPHERE], [[-1.5, 0, 0.5], [1.5, 0, 0.5]], [[3, 0, 0], [-3, 0, 0]], friction=0.1, restitution=0.9
    )
    trajectories = simulate(approaching, FRAMES, FRAME_RATE, SUBSTEPS, PADDED)
    gap = np.abs(trajectories.positions[1, :, 0] - trajectories.positions[0, :, 0]) - 1.0
    assert gap.min() > -0.05
    assert trajectories.velocities[0, -1, 0] < 0 < trajectories.velocities[1, -1, 0]
    # Equal masses and symmetric friction: the total momentum stays zero.
    np.testing.assert_allclose(trajectories.velocities[:, :, 0].sum(axis=0), 0, atol=1e-4)


@pytest.mark.parametrize("seed", [0, 1])
def test_crowded_random_scenes_settle_above_the_floor_without_overlaps(seed):
    spec = SceneSpec(height=8, width=8, min_objects=CROWDED, max_objects=CROWDED, camera_motion="linear")
    scene = sample_scene(spec, np.random.default_rng(seed))
    trajectories = simulate(scene.bodies, 24, spec.frame_rate, spec.physics_substeps, padded_count=CROWDED)
    lowest = trajectories.positions[..., 2] - scene.bodies.bottom_offset[:, None]  # [n, s]
    assert lowest.min() > -1e-4
    radius = scene.bodies.collision_radius
    centres = trajectories.positions[:, -1]
    overlap = radius[:, None] + radius[None] - np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    np.fill_diagonal(overlap, -np.inf)
    assert overlap.max() < 0.05


def test_gravity_pulls_every_airborne_object_down():
    spec = SceneSpec(height=8, width=8, min_objects=12, max_objects=12)
    scene = sample_scene(spec, np.random.default_rng(3))
    trajectories = simulate(scene.bodies, 24, spec.frame_rate, spec.physics_substeps, padded_count=CROWDED)
    airborne = trajectories.positions[:, :, 2] - scene.bodies.bottom_offset[:, None] > 0.3  # [n, s]
    falling = np.diff(trajectories.velocities[:, :, 2], axis=1) < -0.5 * GRAVITY / FRAME_RATE  # [n, s - 1]
    assert airborne[:, :2].all(axis=1).sum() >= 3
    assert np.all(falling[airborne[:, :2].all(axis=1)][:, 0])


def test_cubes_and_cylinders_stay_upright():
    spec = SceneSpec(height=8, width=8, min_objects=12, max_objects=12)
    scene = sample_scene(spec, np.random.default_rng(4))
    trajectories = simulate(scene.bodies, 24, spec.frame_rate, spec.physics_substeps, padded_count=CROWDED)
    upright = np.isin(scene.bodies.shapes, [CUBE, CYLINDER])
    assert upright.any()
    np.testing.assert_allclose(trajectories.quaternions[upright][..., 1:3], 0, atol=1e-6)
